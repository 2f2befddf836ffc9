package payload

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchRows and benchDim are a large minibatch: 20,000 unique rows of 100 values.
const benchRows, benchDim = 20_000, 100

// benchBlock draws the rows a minibatch touches in a 1M-word vocabulary (sorted unique ids)
// and values shaped like embedding deltas.
func benchBlock() Block {
	rng := rand.New(rand.NewPCG(3, 4))
	seen := make(map[uint32]bool, benchRows)
	for len(seen) < benchRows {
		seen[uint32(rng.IntN(1<<20))] = true
	}
	b := randomBlock(rng, 0, benchDim, false)
	for id := range 1 << 20 {
		if seen[uint32(id)] {
			b.IDs = append(b.IDs, uint32(id))
		}
	}
	b.N = benchRows
	b.Values = make([]float32, benchRows*benchDim)
	for i := range b.Values {
		b.Values[i] = float32(rng.NormFloat64() * 0.01)
	}
	return b
}

func BenchmarkEncode(b *testing.B) {
	blk := benchBlock()
	for _, opt := range allOptions() {
		b.Run(fmt.Sprintf("%s/%s", opt.Values, opt.Compress), func(b *testing.B) {
			var buf []byte
			b.SetBytes(int64(benchRows * benchDim * 4))
			for b.Loop() {
				var err error
				buf, err = Encode(buf[:0], blk.IDs, benchDim, blk.Values, opt)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(buf))/benchRows, "bytes/row")
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	blk := benchBlock()
	lim := DefaultLimits()
	for _, opt := range allOptions() {
		b.Run(fmt.Sprintf("%s/%s", opt.Values, opt.Compress), func(b *testing.B) {
			enc, err := Encode(nil, blk.IDs, benchDim, blk.Values, opt)
			if err != nil {
				b.Fatal(err)
			}
			var out Block
			b.SetBytes(int64(benchRows * benchDim * 4))
			for b.Loop() {
				if err := Decode(enc, lim, &out); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(enc))/benchRows, "bytes/row")
		})
	}
}

// BenchmarkKeys measures the id list alone, as a pull request sends it.
func BenchmarkKeys(b *testing.B) {
	blk := benchBlock()
	for _, c := range []Compression{CompressNone, CompressS2, CompressZstd} {
		b.Run(c.String(), func(b *testing.B) {
			var buf []byte
			for b.Loop() {
				var err error
				buf, err = Encode(buf[:0], blk.IDs, 0, nil, Options{Compress: c})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(buf))/benchRows, "bytes/row")
		})
	}
}
