package classify

import (
	"math"
	"math/bits"
)

// The random streams of this package are splitmix64 streams, written out here rather than
// taken from math/rand so that every process of every build draws the same numbers.

// golden is splitmix64's increment.
const golden = 0x9e3779b97f4a7c15

// Stream domains, so that the initial rows and the permutations of one seed differ.
const (
	domainInit = 1 << 40
	domainPerm = 2 << 40
)

// mix64 is splitmix64's finaliser.
func mix64(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// stream is a splitmix64 generator.
type stream uint64

func newStream(seed, key uint64) stream { return stream(mix64(seed ^ mix64(key))) }

func (s *stream) next() uint64 {
	*s += golden
	return mix64(uint64(*s))
}

// InitRow fills dst with the start values of input row row: each value uniform in
// [-1/dim, 1/dim) with dim = len(dst), the range of fastText's uniform(1.0 / dim), from the
// stream of seed and the row alone:
//
//	state = mix64(seed ^ mix64(2^40 + row))
//	per value: state += 0x9e3779b97f4a7c15; u = mix64(state)
//	           value = (float32(u>>40) / 2^23 - 1) / dim
//
// with mix64 splitmix64's finaliser. A value that rounds up to 1/dim becomes the next float32
// towards zero.
func InitRow(seed uint64, row uint32, dst []float32) {
	if len(dst) == 0 {
		return
	}
	dim := float32(len(dst))
	hi := 1 / dim
	s := newStream(seed, domainInit+uint64(row))
	for i := range dst {
		v := (float32(s.next()>>40)*0x1p-23 - 1) / dim
		if v >= hi {
			v = math.Nextafter32(hi, 0)
		}
		dst[i] = v
	}
}

// Permutation returns the order in which epoch visits n examples: a Fisher-Yates shuffle of
// 0..n-1 driven by the stream of seed and epoch (key 2*2^40 + epoch), each swap index drawn
// as the high word of next() * (i+1). Every node computes the same order from the same seed.
func Permutation(n int, seed uint64, epoch int) []int32 {
	p := make([]int32, n)
	for i := range p {
		p[i] = int32(i)
	}
	s := newStream(seed, domainPerm+uint64(epoch))
	for i := n - 1; i > 0; i-- {
		j, _ := bits.Mul64(s.next(), uint64(i+1))
		p[i], p[j] = p[j], p[i]
	}
	return p
}
