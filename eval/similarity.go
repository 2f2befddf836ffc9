package eval

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/skipgrid/skipgrid/vectors"
)

// SimilarityResult is the outcome of Similarity.
type SimilarityResult struct {
	File     string  `json:"file"`
	Pairs    int     `json:"pairs"`    // pairs in the file
	Covered  int     `json:"covered"`  // pairs with both words in the vectors
	Coverage float64 `json:"coverage"` // Covered/Pairs
	Rho      float64 `json:"rho"`      // Spearman's rho over the covered pairs
}

// Similarity reads word pairs with human scores from r (named name in
// errors) and correlates the scores with the cosines of the pairs' vectors,
// as the package doc describes. A malformed line is an error naming the file
// and line; so is a result without a correlation (ErrTooFewPairs,
// ErrConstant), rather than a NaN.
func Similarity(v *vectors.Vectors, r io.Reader, name string) (*SimilarityResult, error) {
	if err := checkVectors(v); err != nil {
		return nil, fmt.Errorf("similarity: %w", err)
	}
	voc := newLowered(v, 0)
	res := &SimilarityResult{File: name}

	var cosines, scores []float64
	err := eachLine(r, name, func(line string, n int) error {
		f := strings.Fields(line)
		if len(f) != 3 {
			return fmt.Errorf("%s: line %d: %w: %d fields where a pair has 3 (word, word, "+
				"score); fix the line, or start it with '#' to skip it", name, n,
				ErrMalformed, len(f))
		}
		score, err := strconv.ParseFloat(f[2], 64)
		if err != nil || math.IsNaN(score) || math.IsInf(score, 0) {
			return fmt.Errorf("%s: line %d: %w: the score %q is not a finite number; fix "+
				"the line, or start it with '#' to skip it", name, n, ErrMalformed, f[2])
		}
		res.Pairs++

		a, okA := voc.lookup(f[0])
		b, okB := voc.lookup(f[1])
		if okA && okB {
			cosines = append(cosines, cosine(v.Row(voc.rows[a]), v.Row(voc.rows[b])))
			scores = append(scores, score)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	res.Covered = len(cosines)
	if res.Pairs > 0 {
		res.Coverage = float64(res.Covered) / float64(res.Pairs)
	}
	if res.Covered < 2 {
		return nil, fmt.Errorf("%s: %w: %d of %d pairs have both words in the vectors, and "+
			"a rank correlation needs 2", name, ErrTooFewPairs, res.Covered, res.Pairs)
	}
	res.Rho = Spearman(cosines, scores)
	if math.IsNaN(res.Rho) {
		return nil, fmt.Errorf("%s: %w: over the %d pairs covered, all cosines or all "+
			"scores are equal", name, ErrConstant, res.Covered)
	}
	return res, nil
}

// cosine returns the cosine of x and y, computed in float64; 0 when either
// is the zero vector, which has no direction.
func cosine(x, y []float32) float64 {
	var xy, xx, yy float64
	for i := range x {
		a, b := float64(x[i]), float64(y[i])
		xy += a * b
		xx += a * a
		yy += b * b
	}
	if xx == 0 || yy == 0 {
		return 0
	}
	return xy / math.Sqrt(xx*yy)
}

// Spearman returns Spearman's rank correlation of x and y: Pearson's
// correlation of their ranks, where tied values share the average of the
// ranks they span. It is NaN when the lengths differ, when there are fewer
// than two values, or when either side is constant. Values must not be NaN.
func Spearman(x, y []float64) float64 {
	if len(x) != len(y) || len(x) < 2 {
		return math.NaN()
	}
	return pearson(ranks(x), ranks(y))
}

// ranks returns the 1-based rank of each value, ties averaged.
func ranks(x []float64) []float64 {
	order := make([]int, len(x))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(x[a], x[b]) })

	r := make([]float64, len(x))
	for i := 0; i < len(order); {
		j := i
		for j+1 < len(order) && x[order[j+1]] == x[order[i]] {
			j++
		}
		avg := float64(i+j)/2 + 1 // the mean of ranks i+1 .. j+1
		for k := i; k <= j; k++ {
			r[order[k]] = avg
		}
		i = j + 1
	}
	return r
}

// pearson returns the correlation of x and y, NaN when either is constant.
func pearson(x, y []float64) float64 {
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx /= float64(len(x))
	my /= float64(len(y))

	var sxy, sxx, syy float64
	for i := range x {
		dx, dy := x[i]-mx, y[i]-my
		sxy += dx * dy
		sxx += dx * dx
		syy += dy * dy
	}
	if sxx == 0 || syy == 0 {
		return math.NaN()
	}
	return sxy / math.Sqrt(sxx*syy)
}
