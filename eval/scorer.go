package eval

import (
	"math"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// scoreBudget bounds the float32 scores held at once (128 MiB); tests
// lower it to exercise both ways of scoring.
var scoreBudget = 1 << 25

// scorer answers analogy questions over n unit rows of dimension dim.
type scorer struct {
	m       blas32.General // n × dim, the candidates
	n, dim  int
	workers int
}

func newScorer(unit []float32, dim int) *scorer {
	n := len(unit) / dim
	return &scorer{
		m:       blas32.General{Rows: n, Cols: dim, Stride: dim, Data: unit},
		n:       n,
		dim:     dim,
		workers: runtime.GOMAXPROCS(0),
	}
}

// answer reports for each question whether its best answer is its d.
func (s *scorer) answer(qs []question) []bool {
	got := make([]bool, len(qs))
	if s.n == 0 {
		return got
	}
	maxWords := max(3, scoreBudget/s.n)
	for start := 0; start < len(qs); {
		end, slots := batch(qs, start, maxWords)
		if len(slots) < end-start {
			s.byWord(qs[start:end], slots, got[start:end])
		} else {
			s.byQuestion(qs[start:end], got[start:end])
		}
		start = end
	}
	return got
}

// batch takes questions from start on while their distinct a, b and c words
// number at most maxWords (at least one question), and numbers those words.
func batch(qs []question, start, maxWords int) (end int, slots map[int32]int32) {
	slots = make(map[int32]int32)
	for end = start; end < len(qs); end++ {
		fresh := 0
		for k, w := range qs[end].w[:3] {
			if _, ok := slots[w]; !ok && !repeats(qs[end].w[:k], w) {
				fresh++
			}
		}
		if end > start && len(slots)+fresh > maxWords {
			break
		}
		for _, w := range qs[end].w[:3] {
			if _, ok := slots[w]; !ok {
				slots[w] = int32(len(slots))
			}
		}
	}
	return end, slots
}

func repeats(ws []int32, w int32) bool {
	for _, x := range ws {
		if x == w {
			return true
		}
	}
	return false
}

// byWord scores each distinct word against every candidate with one matrix
// product, then answers each question from s(b) - s(a) + s(c).
func (s *scorer) byWord(qs []question, slots map[int32]int32, got []bool) {
	u := len(slots)
	w := make([]float32, u*s.dim)
	for word, slot := range slots {
		copy(w[int(slot)*s.dim:], s.m.Data[int(word)*s.dim:int(word+1)*s.dim])
	}
	t := s.product(w, u)

	row := func(word int32) []float32 {
		k := int(slots[word])
		return t[k*s.n : (k+1)*s.n]
	}
	s.parallel(len(qs), func(i int) {
		q := qs[i].w
		got[i] = bestOfSum(row(q[0]), row(q[1]), row(q[2]), q) == q[3]
	})
}

// byQuestion scores each question's b - a + c against every candidate with
// one matrix product.
func (s *scorer) byQuestion(qs []question, got []bool) {
	w := make([]float32, len(qs)*s.dim)
	for i, q := range qs {
		a, b, c := s.unit(q.w[0]), s.unit(q.w[1]), s.unit(q.w[2])
		out := w[i*s.dim : (i+1)*s.dim]
		for j := range out {
			out[j] = (b[j] - a[j]) + c[j]
		}
	}
	t := s.product(w, len(qs))

	s.parallel(len(qs), func(i int) {
		q := qs[i].w
		got[i] = best(t[i*s.n:(i+1)*s.n], q) == q[3]
	})
}

func (s *scorer) unit(word int32) []float32 {
	return s.m.Data[int(word)*s.dim : int(word+1)*s.dim]
}

// product returns the rows × n scores w · mᵀ, w being rows × dim.
func (s *scorer) product(w []float32, rows int) []float32 {
	t := make([]float32, rows*s.n)
	a := blas32.General{Rows: rows, Cols: s.dim, Stride: s.dim, Data: w}
	c := blas32.General{Rows: rows, Cols: s.n, Stride: s.n, Data: t}
	blas32.Gemm(blas.NoTrans, blas.Trans, 1, a, s.m, 0, c)
	return t
}

// parallel calls fn(0..n-1) on the scorer's workers.
func (s *scorer) parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	for w := range min(s.workers, n) {
		wg.Go(func() {
			for i := w; i < n; i += s.workers {
				fn(i)
			}
		})
	}
	wg.Wait()
}

// best returns the candidate with the highest score, other than the
// question's a, b and c; the lowest index wins a tie; -1 if none.
func best(scores []float32, q [4]int32) int32 {
	top, at := float32(math.Inf(-1)), int32(-1)
	for j, x := range scores {
		if x > top && int32(j) != q[0] && int32(j) != q[1] && int32(j) != q[2] {
			top, at = x, int32(j)
		}
	}
	return at
}

// bestOfSum is best over the scores (sb - sa) + sc.
func bestOfSum(sa, sb, sc []float32, q [4]int32) int32 {
	sa, sc = sa[:len(sb)], sc[:len(sb)]
	top, at := float32(math.Inf(-1)), int32(-1)
	for j := range sb {
		x := (sb[j] - sa[j]) + sc[j]
		if x > top && int32(j) != q[0] && int32(j) != q[1] && int32(j) != q[2] {
			top, at = x, int32(j)
		}
	}
	return at
}
