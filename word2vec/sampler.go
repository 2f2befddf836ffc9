package word2vec

import (
	"errors"
	"fmt"
	"math"
)

// UnigramPower is the exponent word2vec raises counts to for negative sampling.
const UnigramPower = 0.75

// Sampler draws row ids with probability proportional to count^power, in constant time per
// draw, with Walker's alias method. It is read-only after construction and safe for concurrent
// use.
type Sampler struct {
	prob  []uint32 // acceptance threshold of each bucket, scaled to 2^32
	alias []int32
}

// NewSampler builds the alias tables for counts (indexed by row id) raised to power.
func NewSampler(counts []uint64, power float64) (*Sampler, error) {
	n := len(counts)
	if n == 0 {
		return nil, errors.New("word2vec: sampler needs at least one word")
	}
	if n > math.MaxInt32 {
		return nil, fmt.Errorf("word2vec: sampler over %d words exceeds %d", n, math.MaxInt32)
	}

	// Scale the weights so that they average 1: a bucket holds one unit of mass.
	weights := make([]float64, n)
	var total float64
	for i, c := range counts {
		weights[i] = math.Pow(float64(c), power)
		total += weights[i]
	}
	if total == 0 || math.IsInf(total, 0) {
		return nil, errors.New("word2vec: sampler weights sum to zero or overflow")
	}
	for i := range weights {
		weights[i] *= float64(n) / total
	}

	// Vose's construction: pair each under-full bucket with an over-full one.
	s := &Sampler{prob: make([]uint32, n), alias: make([]int32, n)}
	small := make([]int32, 0, n)
	large := make([]int32, 0, n)
	for i, w := range weights {
		if w < 1 {
			small = append(small, int32(i))
		} else {
			large = append(large, int32(i))
		}
	}
	for len(small) > 0 && len(large) > 0 {
		l := small[len(small)-1]
		small = small[:len(small)-1]
		g := large[len(large)-1]

		s.prob[l] = scaleProb(weights[l])
		s.alias[l] = g
		weights[g] -= 1 - weights[l]
		if weights[g] < 1 {
			large = large[:len(large)-1]
			small = append(small, g)
		}
	}

	// What remains is full up to rounding error.
	for _, rest := range [][]int32{small, large} {
		for _, i := range rest {
			s.prob[i] = math.MaxUint32
			s.alias[i] = i
		}
	}
	return s, nil
}

func scaleProb(p float64) uint32 {
	v := p * (1 << 32)
	if v >= math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(v)
}

// Len is the number of rows the sampler draws from.
func (s *Sampler) Len() int { return len(s.prob) }

// Draw maps 64 random bits to a row id: the high half picks a bucket, the low half decides
// between the bucket and its alias.
func (s *Sampler) Draw(r uint64) int32 {
	i := int32((r >> 32) * uint64(len(s.prob)) >> 32)
	if uint32(r) < s.prob[i] {
		return i
	}
	return s.alias[i]
}

// Subsampler holds word2vec's keep probability of each row for frequent-word subsampling:
// a word of count c among n training words, with threshold t, is kept with probability
// min(1, (sqrt(c/(t*n)) + 1) * (t*n)/c).
type Subsampler struct {
	keep []uint32 // keep probability scaled to 2^32; MaxUint32 keeps always
}

// NewSubsampler builds the keep table; sample <= 0 keeps every word.
func NewSubsampler(counts []uint64, sample float64) *Subsampler {
	var n float64
	for _, c := range counts {
		n += float64(c)
	}
	s := &Subsampler{keep: make([]uint32, len(counts))}
	for i, c := range counts {
		s.keep[i] = scaleProb(KeepProbability(c, n, sample))
	}
	return s
}

// KeepProbability is word2vec's subsampling formula for a word of count c among n words.
func KeepProbability(c uint64, n, sample float64) float64 {
	if sample <= 0 || c == 0 {
		return 1
	}
	tn := sample * n
	p := (math.Sqrt(float64(c)/tn) + 1) * tn / float64(c)
	return min(p, 1)
}

// Keep reports whether row id survives subsampling for 32 random bits r.
func (s *Subsampler) Keep(id int32, r uint32) bool {
	k := s.keep[id]
	return k == math.MaxUint32 || r < k
}
