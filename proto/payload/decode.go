package payload

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
)

// maxIDBytes is the longest uvarint of a value below 2^32.
const maxIDBytes = 5

// header is the part of a payload before the body.
type header struct {
	hasIDs   bool
	codec    ValueCodec
	compress Compression
	n, dim   int
	// minBody and maxBody bound the body's (decompressed) length: its values take exactly
	// valBytes, and each id takes 1 to 5 bytes.
	valBytes, minBody, maxBody int
}

// Decode decodes payload b into blk, reusing blk.IDs and blk.Values when their capacity is
// large enough. It checks the version and flags, every length, that ids are strictly ascending
// and below 2^32, and that nothing trails the body; sizes announced by the header are checked
// against lim before anything is allocated. Errors wrap ErrVersion, ErrFlags, ErrCorrupt or
// ErrLimit and give the byte offset where the problem was found. Decode never panics, whatever
// b holds; blk must not be nil. On error blk's contents are unspecified.
func Decode(b []byte, lim Limits, blk *Block) error {
	if err := lim.Validate(); err != nil {
		return fmt.Errorf("payload: decode: %w", err)
	}
	h, off, err := decodeHeader(b, lim)
	if err != nil {
		return err
	}

	body := b[off:]
	if h.compress != CompressNone {
		bp := bodyPool.Get().(*[]byte)
		defer bodyPool.Put(bp)
		body, err = inflate(b, off, h, lim, *bp)
		if err != nil {
			return err
		}
		*bp = body
	} else if len(body) < h.minBody || len(body) > h.maxBody {
		return fmt.Errorf("%w: body at byte %d has %d bytes; %d rows of dim %d need %d to %d",
			ErrCorrupt, off, len(body), h.n, h.dim, h.minBody, h.maxBody)
	}

	return decodeBody(body, h, blk)
}

// decodeHeader reads the fixed header and checks it against lim. off is where the rest
// (length prefix or body) starts.
func decodeHeader(b []byte, lim Limits) (h header, off int, err error) {
	if len(b) < 2 {
		return h, 0, fmt.Errorf("%w: %d bytes, shorter than the 2-byte header", ErrCorrupt, len(b))
	}
	if b[0] != Version {
		return h, 0, fmt.Errorf("%w: byte 0 says version %d; this build reads version %d "+
			"(upgrade the reading node)", ErrVersion, b[0], Version)
	}
	flags := b[1]
	h.hasIDs = flags&flagHasIDs != 0
	h.codec = ValueCodec(flags & codecMask >> codecShift)
	h.compress = Compression(flags & compressMask >> compressShift)
	if flags&flagsUnassigned != 0 || !h.codec.Valid() || !h.compress.Valid() {
		return h, 0, fmt.Errorf("%w: byte 1 is %#02x (value codec %d, compression %d, "+
			"unassigned bits %#02x); upgrade the reading node", ErrFlags, flags,
			uint32(h.codec), uint32(h.compress), flags&flagsUnassigned)
	}

	off = 2
	n, off, err := readCount(b, off, "n", lim.MaxRows, "MaxRows")
	if err != nil {
		return h, 0, err
	}
	dim, off, err := readCount(b, off, "dim", lim.MaxDim, "MaxDim")
	if err != nil {
		return h, 0, err
	}
	if !h.hasIDs && dim == 0 && n != 0 {
		return h, 0, fmt.Errorf("%w: %d rows with neither ids nor values", ErrCorrupt, n)
	}
	h.n, h.dim = n, dim
	return h, off, sizeBody(&h, lim)
}

// readCount reads a uvarint at b[off:] that must not exceed max.
func readCount(b []byte, off int, field string, max int, limit string) (int, int, error) {
	v, k := binary.Uvarint(b[off:])
	if k <= 0 {
		return 0, 0, fmt.Errorf("%w: %s at byte %d is truncated or overflows", ErrCorrupt,
			field, off)
	}
	if v > uint64(max) {
		return 0, 0, fmt.Errorf("%w: %s at byte %d is %d, above %s %d", ErrLimit, field, off,
			v, limit, max)
	}
	return int(v), off + k, nil
}

// sizeBody works out the body's length bounds and checks them against lim.MaxBytes. n and dim
// are at most the limits, but limits may be large, so products are checked for overflow.
func sizeBody(h *header, lim Limits) error {
	hi, vals := bits.Mul64(uint64(h.n), uint64(h.dim)*uint64(h.codec.size()))
	idMin, idMax := uint64(0), uint64(0)
	if h.hasIDs {
		idMin, idMax = uint64(h.n), uint64(h.n)*maxIDBytes
	}
	if hi != 0 || vals > math.MaxInt64/2 || vals+idMin > uint64(lim.MaxBytes) {
		return fmt.Errorf("%w: %d rows of dim %d (%s) need more than MaxBytes %d", ErrLimit,
			h.n, h.dim, h.codec, lim.MaxBytes)
	}
	if h.hasIDs && h.n > math.MaxInt64/maxIDBytes {
		idMax = math.MaxInt64 // only with absurd limits; the min below applies
	}
	h.valBytes = int(vals)
	h.minBody = int(vals + idMin)
	h.maxBody = int(min(vals+idMax, uint64(lim.MaxBytes)))
	return nil
}

// inflate reads the decompressed length at b[off:], checks it, and decompresses the rest of b
// into buf (reused when large enough).
func inflate(b []byte, off int, h header, lim Limits, buf []byte) ([]byte, error) {
	size, k := binary.Uvarint(b[off:])
	if k <= 0 {
		return nil, fmt.Errorf("%w: body length at byte %d is truncated or overflows",
			ErrCorrupt, off)
	}
	if size > uint64(lim.MaxBytes) {
		return nil, fmt.Errorf("%w: body length at byte %d is %d, above MaxBytes %d",
			ErrLimit, off, size, lim.MaxBytes)
	}
	if size < uint64(h.minBody) || size > uint64(h.maxBody) {
		return nil, fmt.Errorf("%w: body length at byte %d is %d; %d rows of dim %d need %d "+
			"to %d", ErrCorrupt, off, size, h.n, h.dim, h.minBody, h.maxBody)
	}

	body, err := decompress(buf, b[off+k:], int(size), h.compress, lim)
	if err != nil {
		return nil, fmt.Errorf("compressed body at byte %d: %w", off+k, err)
	}
	return body, nil
}

// decodeBody reads ids and values from a body whose length is within h's bounds.
func decodeBody(body []byte, h header, blk *Block) error {
	blk.N, blk.Dim = h.n, h.dim
	off := 0
	if h.hasIDs {
		var err error
		if blk.IDs, off, err = decodeIDs(body, h.n, blk.IDs); err != nil {
			return err
		}
	} else {
		blk.IDs = nil
	}

	if rest := len(body) - off; rest != h.valBytes {
		return fmt.Errorf("%w: body byte %d: %d bytes of values follow the ids; %d rows of "+
			"dim %d (%s) take %d", ErrCorrupt, off, rest, h.n, h.dim, h.codec, h.valBytes)
	}
	blk.Values = decodeValues(body[off:], h.n*h.dim, h.codec, blk.Values)
	return nil
}

// decodeIDs reads n delta-coded ids from body into ids (reused when large enough) and returns
// the body offset after them.
func decodeIDs(body []byte, n int, ids []uint32) ([]uint32, int, error) {
	if cap(ids) < n {
		ids = make([]uint32, n)
	}
	ids = ids[:n]

	off := 0
	next := uint64(0) // the smallest id the next gap can give
	for i := range ids {
		gap, k := binary.Uvarint(body[off:])
		if k <= 0 {
			return nil, 0, fmt.Errorf("%w: id %d at body byte %d is truncated or overflows",
				ErrCorrupt, i, off)
		}
		id := next + gap
		if gap > math.MaxUint32 || id > math.MaxUint32 {
			return nil, 0, fmt.Errorf("%w: id %d at body byte %d exceeds 2^32-1", ErrCorrupt,
				i, off)
		}
		ids[i] = uint32(id)
		next = id + 1
		off += k
	}
	return ids, off, nil
}

// decodeValues reads count values of codec c from src (exactly their length) into dst.
func decodeValues(src []byte, count int, c ValueCodec, dst []float32) []float32 {
	if cap(dst) < count {
		dst = make([]float32, count)
	}
	dst = dst[:count]
	if c == ValuesFloat32 {
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
		return dst
	}
	for i := range dst {
		dst[i] = fromHalf(binary.LittleEndian.Uint16(src[2*i:]))
	}
	return dst
}
