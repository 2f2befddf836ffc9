package payload

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
)

// bodyPool recycles the scratch buffers that hold a body before compression or after
// decompression.
var bodyPool = sync.Pool{New: func() any { return new([]byte) }}

// Encode appends the encoding of one block to dst and returns the extended slice.
//
// ids may be nil (the block carries no ids; its rows are known by position) or must be strictly
// ascending. values holds the rows row-major: len(ids)*dim values when ids is not nil, else a
// multiple of dim (nil when dim is 0). Encode refuses unordered ids and lengths that disagree
// (ErrArgs), unknown options (ErrOptions), and for ValuesFloat16 any value that is NaN,
// infinite or beyond ±65504 once rounded (ErrRange). On error dst's contents past its original
// length are unspecified.
func Encode(dst []byte, ids []uint32, dim int, values []float32, opt Options) ([]byte, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	n, err := blockRows(ids, dim, values)
	if err != nil {
		return nil, err
	}

	flags := byte(opt.Values)<<codecShift | byte(opt.Compress)<<compressShift
	if ids != nil {
		flags |= flagHasIDs
	}
	dst = append(dst, Version, flags)
	dst = appendUvarint(dst, uint64(n))
	dst = appendUvarint(dst, uint64(dim))

	if opt.Compress == CompressNone {
		return appendBody(dst, ids, values, opt.Values)
	}

	bp := bodyPool.Get().(*[]byte)
	defer bodyPool.Put(bp)
	body, err := appendBody((*bp)[:0], ids, values, opt.Values)
	*bp = body
	if err != nil {
		return nil, err
	}
	return compress(dst, body, opt.Compress)
}

// blockRows checks that ids, dim and values agree and returns the number of rows.
func blockRows(ids []uint32, dim int, values []float32) (int, error) {
	if dim < 0 {
		return 0, fmt.Errorf("%w: dim is %d", ErrArgs, dim)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			return 0, fmt.Errorf("%w: ids[%d]=%d follows ids[%d]=%d; ids must be strictly "+
				"ascending", ErrArgs, i, ids[i], i-1, ids[i-1])
		}
	}

	if ids != nil {
		if len(values) != len(ids)*dim {
			return 0, fmt.Errorf("%w: %d values for %d ids of dim %d (want %d)",
				ErrArgs, len(values), len(ids), dim, len(ids)*dim)
		}
		return len(ids), nil
	}
	if dim == 0 {
		if len(values) != 0 {
			return 0, fmt.Errorf("%w: %d values with dim 0", ErrArgs, len(values))
		}
		return 0, nil
	}
	if len(values)%dim != 0 {
		return 0, fmt.Errorf("%w: %d values is not a multiple of dim %d",
			ErrArgs, len(values), dim)
	}
	return len(values) / dim, nil
}

// appendBody appends the delta-coded ids and the encoded values to dst.
func appendBody(dst []byte, ids []uint32, values []float32, c ValueCodec) ([]byte, error) {
	dst = appendIDs(dst, ids)

	start := len(dst)
	dst = growLen(dst, len(values)*c.size())
	out := dst[start:]
	if c == ValuesFloat32 {
		for i, v := range values {
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
		}
		return dst, nil
	}
	for i, v := range values {
		h, ok := toHalf(v)
		if !ok {
			return nil, fmt.Errorf("%w: value %d (%g) does not fit float16 (finite, |v| <= 65504)",
				ErrRange, i, v)
		}
		binary.LittleEndian.PutUint16(out[2*i:], h)
	}
	return dst, nil
}

// appendIDs appends ids as uvarint gaps: ids[0], then ids[i]-ids[i-1]-1.
func appendIDs(dst []byte, ids []uint32) []byte {
	prev := uint32(0)
	for i, id := range ids {
		gap := id
		if i > 0 {
			gap = id - prev - 1
		}
		dst = appendUvarint(dst, uint64(gap))
		prev = id
	}
	return dst
}

func appendUvarint(dst []byte, v uint64) []byte {
	return binary.AppendUvarint(dst, v)
}

// growLen extends dst by n bytes (contents unspecified), reallocating at most once.
func growLen(dst []byte, n int) []byte {
	if cap(dst)-len(dst) < n {
		grown := make([]byte, len(dst), len(dst)+n+len(dst)/4)
		copy(grown, dst)
		dst = grown
	}
	return dst[:len(dst)+n]
}
