package payload

import (
	"errors"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzDecode feeds arbitrary bytes to Decode. It must never panic, and whatever it accepts must
// be a consistent block that encodes and decodes back to itself.
func FuzzDecode(f *testing.F) {
	for _, opt := range allOptions() {
		f.Add(mustEncode(f, []uint32{0, 7, 300}, 2, []float32{1, -2.5, 0.1, 0, 3, 65504}, opt))
		f.Add(mustEncode(f, nil, 3, []float32{1, 2, 3, 4, 5, 6}, opt))
		f.Add(mustEncode(f, []uint32{math.MaxUint32}, 0, nil, opt))
	}
	f.Add([]byte{1, 0, 0, 0})
	f.Add([]byte{2, 0, 0, 0})

	f.Fuzz(func(t *testing.T, b []byte) {
		var blk Block
		if err := Decode(b, testLimits, &blk); err != nil {
			return
		}
		checkBlock(t, &blk)

		// Re-encode with the payload's own options and decode again.
		opt := Options{
			Values:   ValueCodec(b[1] & codecMask >> codecShift),
			Compress: Compression(b[1] & compressMask >> compressShift),
		}
		again, err := Encode(nil, blk.IDs, blk.Dim, blk.Values, opt)
		if errors.Is(err, ErrRange) && opt.Values == ValuesFloat16 {
			return // a half infinity or NaN decodes, but Encode refuses to write one
		}
		if err != nil {
			t.Fatalf("Encode of a decoded block: %v", err)
		}
		var blk2 Block
		if err := Decode(again, testLimits, &blk2); err != nil {
			t.Fatalf("Decode of a re-encoded block: %v", err)
		}
		if diff := cmp.Diff(blk, blk2, cmpBlock); diff != "" {
			t.Fatalf("re-encoded block differs (-first +second):\n%s", diff)
		}
	})
}

func checkBlock(t *testing.T, blk *Block) {
	t.Helper()
	if blk.N > testLimits.MaxRows || blk.Dim > testLimits.MaxDim {
		t.Fatalf("accepted n=%d dim=%d beyond %+v", blk.N, blk.Dim, testLimits)
	}
	if len(blk.Values) != blk.N*blk.Dim {
		t.Fatalf("%d values for n=%d dim=%d", len(blk.Values), blk.N, blk.Dim)
	}
	if blk.IDs != nil && len(blk.IDs) != blk.N {
		t.Fatalf("%d ids for n=%d", len(blk.IDs), blk.N)
	}
	for i := 1; i < len(blk.IDs); i++ {
		if blk.IDs[i] <= blk.IDs[i-1] {
			t.Fatalf("ids not ascending at %d: %d after %d", i, blk.IDs[i], blk.IDs[i-1])
		}
	}
}
