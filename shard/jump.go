package shard

import (
	"fmt"
	"math"
)

// JumpHash is Lamping & Veach's jump consistent hash ("A Fast, Minimal
// Memory, Consistent Hash Algorithm", 2014) of key into [0, buckets).
//
// It returns the same bucket as the paper's reference code for every key and
// bucket count. When buckets grows by one, a key either keeps its bucket or
// moves to the new bucket (buckets-1). Like the paper's code it takes a
// 32-bit bucket count: it panics when buckets is not in [1, 2^31), which is a
// caller's error (NewMap checks its shard count first).
func JumpHash(key uint64, buckets int) int {
	if buckets < 1 || buckets > math.MaxInt32 {
		panic(fmt.Sprintf("shard: JumpHash bucket count %d is not in [1, 2^31)", buckets))
	}

	// The key drives a 64-bit linear congruential generator. Each step draws
	// the next bucket count at which the key jumps; the last jump below
	// buckets is the answer. The expected number of steps is ln(buckets)+1.
	n := int64(buckets)
	var b, j int64 = -1, 0
	for j < n {
		b = j
		key = key*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(1<<31) / float64(key>>33+1)))
	}
	return int(b)
}

// mix64 is the splitmix64 output function applied to the state x: add the
// golden-ratio increment, then finalise. mix64(0) is therefore the first
// output of a splitmix64 generator seeded with 0.
func mix64(x uint64) uint64 {
	z := x + 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}
