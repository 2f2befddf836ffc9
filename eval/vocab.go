package eval

import (
	"math"
	"strings"

	"github.com/skipgrid/skipgrid/vectors"
)

// lowered is the case-folded vocabulary of the first rows of some vectors:
// one entry per distinct lower-cased word, the earliest row winning.
type lowered struct {
	used  int              // rows of the vectors considered
	rows  []int            // original row of each kept word
	index map[string]int32 // lower-cased word -> kept word
}

// newLowered folds the first restrict rows of v (all when restrict is 0 or
// beyond the vectors).
func newLowered(v *vectors.Vectors, restrict int) *lowered {
	n := len(v.Words)
	if restrict > 0 && restrict < n {
		n = restrict
	}
	l := &lowered{used: n, index: make(map[string]int32, n)}
	for i, w := range v.Words[:n] {
		w = strings.ToLower(w)
		if _, dup := l.index[w]; dup {
			continue // a later, rarer spelling of a word already kept
		}
		l.index[w] = int32(len(l.rows))
		l.rows = append(l.rows, i)
	}
	return l
}

// lookup returns the kept word for w, ignoring case.
func (l *lowered) lookup(w string) (int32, bool) {
	id, ok := l.index[strings.ToLower(w)]
	return id, ok
}

// unitRows returns the kept rows of v scaled to unit length, row-major. A
// zero row stays zero.
func (l *lowered) unitRows(v *vectors.Vectors) []float32 {
	m := make([]float32, len(l.rows)*v.Dim)
	for k, i := range l.rows {
		row := v.Row(i)
		out := m[k*v.Dim : (k+1)*v.Dim]
		var ss float64
		for _, x := range row {
			ss += float64(x) * float64(x)
		}
		if ss == 0 {
			continue
		}
		inv := 1 / math.Sqrt(ss)
		for j, x := range row {
			out[j] = float32(float64(x) * inv)
		}
	}
	return m
}
