package eval

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skipgrid/skipgrid/vectors"
)

// structured returns n words of dimension dim in which word 2i+1 is word 2i
// plus a shared offset and some noise, so that "w0 w1 w2 w3" analogies are
// mostly right, and a few upper-case doubles of earlier words.
func structured(seed uint64, n, dim int) *vectors.Vectors {
	r := rand.New(rand.NewPCG(seed, 3))
	offset := make([]float32, dim)
	for j := range offset {
		offset[j] = float32(r.NormFloat64())
	}
	v := &vectors.Vectors{Dim: dim, Data: make([]float32, n*dim)}
	for i := range n {
		word := fmt.Sprintf("w%d", i)
		if i%37 == 36 {
			word = fmt.Sprintf("W%d", i/2) // a later spelling of an earlier word
		}
		v.Words = append(v.Words, word)
		row := v.Row(i)
		for j := range row {
			row[j] = float32(r.NormFloat64())
			if i%2 == 1 {
				row[j] = v.Row(i - 1)[j] + offset[j] + float32(0.4*r.NormFloat64())
			}
		}
	}
	return v
}

// questionsFor writes count questions over pairs of words, one section per
// question so that results show question by question; some name words the
// vectors lack.
func questionsFor(seed uint64, n, count int) string {
	r := rand.New(rand.NewPCG(seed, 4))
	var b strings.Builder
	for q := range count {
		i, j := 2*r.IntN(n/2+5), 2*r.IntN(n/2+5) // beyond n/2: unknown words
		fmt.Fprintf(&b, ": gram-%d\nw%d W%d w%d w%d\n", q, i, i+1, j, j+1)
	}
	return b.String()
}

// reference answers each question with float64 arithmetic and plain loops,
// following the rules of the package doc independently of the scorer.
func reference(v *vectors.Vectors, restrict int, questions string) []Score {
	n := len(v.Words)
	if restrict > 0 {
		n = min(n, restrict)
	}
	var kept []int
	var names []string
	find := func(w string) int {
		for k, name := range names {
			if name == strings.ToLower(w) {
				return k
			}
		}
		return -1
	}
	for i := range n {
		if find(v.Words[i]) < 0 {
			kept = append(kept, i)
			names = append(names, strings.ToLower(v.Words[i]))
		}
	}
	unit := func(k int) []float64 { return unit64(v.Row(kept[k])) }

	var scores []Score
	for _, line := range strings.Split(questions, "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			continue
		}
		a, b, c, d := find(f[0]), find(f[1]), find(f[2]), find(f[3])
		if a < 0 || b < 0 || c < 0 || d < 0 {
			scores = append(scores, Score{})
			continue
		}
		ua, ub, uc := unit(a), unit(b), unit(c)
		top, at := math.Inf(-1), -1
		for k := range kept {
			if k == a || k == b || k == c {
				continue
			}
			uk := unit(k)
			var s float64
			for j := range uk {
				s += (ub[j] - ua[j] + uc[j]) * uk[j]
			}
			if s > top {
				top, at = s, k
			}
		}
		scores = append(scores, score(map[bool]int{true: 1}[at == d], 1))
	}
	return scores
}

// unit64 returns row scaled to unit length, in float64.
func unit64(row []float32) []float64 {
	var ss float64
	for _, x := range row {
		ss += float64(x) * float64(x)
	}
	out := make([]float64, len(row))
	for j, x := range row {
		out[j] = float64(x) / math.Sqrt(ss)
	}
	return out
}

// TestScorerAgainstReference checks both ways of scoring (a product per
// distinct word, and per question when the budget allows only one question
// at a time) against the reference, question by question.
func TestScorerAgainstReference(t *testing.T) {
	const n, dim, count = 300, 8, 400
	v := structured(1, n, dim)
	questions := questionsFor(2, n, count)

	for _, tt := range []struct {
		name     string
		budget   int
		restrict int
	}{
		{"by word", 1 << 25, 0},
		{"by question", 3 * n, 0},
		{"by word restricted", 1 << 25, 200},
		{"mixed batches", 40 * n, 250},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func(b int) { scoreBudget = b }(scoreBudget)
			scoreBudget = tt.budget

			res, err := Analogy(v, strings.NewReader(questions), "q",
				AnalogyOptions{Restrict: tt.restrict})
			if err != nil {
				t.Fatal(err)
			}
			var got []Score
			for _, s := range res.Sections {
				got = append(got, s.Score)
			}
			want := reference(v, tt.restrict, questions)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("per question (-reference +scorer):\n%s", diff)
			}
			if res.Total.Correct == 0 || res.Total.Correct == res.Total.Total {
				t.Errorf("%d of %d correct: the check needs both outcomes",
					res.Total.Correct, res.Total.Total)
			}
		})
	}
}

// BenchmarkAnalogy answers questions-words.txt (the shared copy, or a
// synthetic file of the same shape when absent) over 30000 × 100 vectors
// that know every question word.
func BenchmarkAnalogy(b *testing.B) {
	questions, err := os.ReadFile("../../shared/data/eval/questions-words.txt")
	if err != nil {
		questions = []byte(questionsFor(5, 2000, 19544))
	}
	words := map[string]bool{}
	for _, f := range strings.Fields(string(questions)) {
		if f != ":" {
			words[strings.ToLower(f)] = true
		}
	}

	const n, dim = 30000, 100
	r := rand.New(rand.NewPCG(6, 6))
	v := &vectors.Vectors{Dim: dim, Data: make([]float32, n*dim)}
	for w := range words {
		v.Words = append(v.Words, w)
	}
	for i := len(v.Words); i < n; i++ {
		v.Words = append(v.Words, fmt.Sprintf("filler%d", i))
	}
	for i := range v.Data {
		v.Data[i] = float32(r.NormFloat64())
	}

	b.ResetTimer()
	for b.Loop() {
		res, err := Analogy(v, bytes.NewReader(questions), "q", DefaultAnalogyOptions())
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(res.Seen), "questions")
	}
}
