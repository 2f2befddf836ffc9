package ps

import (
	"math"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// golden is splitmix64's increment, 2^64 divided by the golden ratio.
const golden = 0x9e3779b97f4a7c15

// mix64 is splitmix64's output function (a bijective 64-bit finaliser).
func mix64(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// InitRow fills dst with the INIT_UNIFORM start values of one row: each element uniform in
// [-0.5/dim, 0.5/dim) with dim = len(dst), as word2vec starts its input vectors.
//
// The values depend only on seed, table and row, never on the shard layout. The generator is
// a splitmix64 stream: with key = uint64(table)<<32 | uint64(row),
//
//	state = mix64(seed ^ mix64(key))
//	for each element i: state += 0x9e3779b97f4a7c15; u = mix64(state)
//	                    dst[i] = (float32(u>>40)/2^24 - 0.5) / float32(dim)
//
// where mix64 is splitmix64's finaliser (xor-shift 30, multiply 0xbf58476d1ce4e5b9, xor-shift
// 27, multiply 0x94d049bb133111eb, xor-shift 31). The float32 division can round up to
// 0.5/dim itself; such a value is replaced by the next float32 towards zero, so the interval
// stays half-open.
func InitRow(seed uint64, table skipgridpb.Table, row uint32, dst []float32) {
	if len(dst) == 0 {
		return
	}
	dim := float32(len(dst))
	hi := 0.5 / dim
	state := mix64(seed ^ mix64(uint64(table)<<32|uint64(row)))
	for i := range dst {
		state += golden
		u := mix64(state)
		v := (float32(u>>40)*0x1p-24 - 0.5) / dim
		if v >= hi {
			v = math.Nextafter32(hi, 0)
		}
		dst[i] = v
	}
}
