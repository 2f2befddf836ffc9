package payload

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Compressors are costly to create (zstd allocates tables and history per encoder), so the
// package keeps one zstd encoder and a few zstd decoders and shares them. Their EncodeAll and
// DecodeAll may run concurrently. S2 block compression is a stateless function.

var zstdEnc = sync.OnceValues(func() (*zstd.Encoder, error) {
	return zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
})

// maxZstdDecoders bounds the decoder cache. Decoders are kept per Limits.MaxBytes, and a
// process uses one or two limits; past the bound a decoder is made for the call and closed.
const maxZstdDecoders = 8

var zstdDecs struct {
	mu   sync.Mutex
	byMB map[int]*zstd.Decoder // by Limits.MaxBytes
}

// zstdDecoder returns a decoder whose output is capped at maxBytes. release must be called
// once the decoder is no longer used.
func zstdDecoder(maxBytes int) (dec *zstd.Decoder, release func(), err error) {
	zstdDecs.mu.Lock()
	defer zstdDecs.mu.Unlock()

	if d, ok := zstdDecs.byMB[maxBytes]; ok {
		return d, func() {}, nil
	}

	// The cap-limit option stops DecodeAll at cap(dst), which Decode sets to the announced
	// length; MaxMemory and MaxWindow bound it by the limit even before that.
	window := min(max(uint64(maxBytes), zstd.MinWindowSize), zstd.MaxWindowSize)
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(0),
		zstd.WithDecoderMaxMemory(uint64(maxBytes)),
		zstd.WithDecoderMaxWindow(window),
		zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		return nil, nil, fmt.Errorf("payload: creating zstd decoder: %w", err)
	}
	if len(zstdDecs.byMB) >= maxZstdDecoders {
		return d, d.Close, nil
	}
	if zstdDecs.byMB == nil {
		zstdDecs.byMB = make(map[int]*zstd.Decoder)
	}
	zstdDecs.byMB[maxBytes] = d
	return d, func() {}, nil
}

// compress appends the length of body and body compressed with c to dst.
func compress(dst, body []byte, c Compression) ([]byte, error) {
	dst = appendUvarint(dst, uint64(len(body)))
	switch c {
	case CompressS2:
		bound := s2.MaxEncodedLen(len(body))
		if bound < 0 {
			return nil, fmt.Errorf("%w: body of %d bytes is too large for s2", ErrArgs, len(body))
		}
		start := len(dst)
		dst = growLen(dst, bound)
		out := s2.Encode(dst[start:], body)
		return dst[:start+len(out)], nil
	case CompressZstd:
		enc, err := zstdEnc()
		if err != nil {
			return nil, fmt.Errorf("payload: creating zstd encoder: %w", err)
		}
		return enc.EncodeAll(body, dst), nil
	}
	return nil, fmt.Errorf("%w: compression %d", ErrOptions, uint32(c))
}

// decompress decodes src, which must inflate to exactly n bytes, into buf (reused when its
// capacity allows). n has been checked against lim.MaxBytes.
func decompress(buf, src []byte, n int, c Compression, lim Limits) ([]byte, error) {
	if cap(buf) < n {
		buf = make([]byte, 0, n)
	}
	buf = buf[:0:n]

	switch c {
	case CompressS2:
		got, err := s2.DecodedLen(src)
		if err != nil {
			return nil, fmt.Errorf("%w: s2 header: %v", ErrCorrupt, err)
		}
		if got != n {
			return nil, fmt.Errorf("%w: s2 block inflates to %d bytes, header says %d",
				ErrCorrupt, got, n)
		}
		out, err := s2.Decode(buf[:n], src)
		if err != nil {
			return nil, fmt.Errorf("%w: s2: %v", ErrCorrupt, err)
		}
		return out, nil
	case CompressZstd:
		dec, release, err := zstdDecoder(lim.MaxBytes)
		if err != nil {
			return nil, err
		}
		defer release()
		out, err := dec.DecodeAll(src, buf)
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %v", ErrCorrupt, err)
		}
		if len(out) != n {
			return nil, fmt.Errorf("%w: zstd body inflates to %d bytes, header says %d",
				ErrCorrupt, len(out), n)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: compression %d", ErrFlags, uint32(c))
}
