package eval

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/skipgrid/skipgrid/vectors"
)

func TestSpearman(t *testing.T) {
	tests := []struct {
		name string
		x, y []float64
		want float64
	}{
		// Worked by hand. x = 3 1 4 1 5: the two 1s share ranks 1 and 2, so
		// ranks are 3 1.5 4 1.5 5. y = 2 7 1 8 2: the two 2s share ranks 2
		// and 3, so ranks are 2.5 4 1 5 2.5. Both rank lists have mean 3;
		// deviations dx = 0 -1.5 1 -1.5 2, dy = -0.5 1 -2 2 -0.5.
		// Σdx·dy = 0 - 1.5 - 2 - 3 - 1 = -7.5; Σdx² = Σdy² = 9.5.
		// rho = -7.5 / 9.5 = -15/19.
		{"ties", []float64{3, 1, 4, 1, 5}, []float64{2, 7, 1, 8, 2}, -15.0 / 19},
		// Any increasing map of x has the same ranks: rho = 1.
		{"monotone", []float64{1, 2, 3, 10}, []float64{-5, 0, 0.5, 100}, 1},
		// Reversed ranks: rho = -1.
		{"reversed", []float64{1, 2, 3}, []float64{3, 2, 1}, -1},
	}
	for _, tt := range tests {
		if got := Spearman(tt.x, tt.y); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("%s: Spearman = %v, want %v", tt.name, got, tt.want)
		}
	}

	// No correlation exists for these.
	for _, xy := range [][2][]float64{
		{{1, 1, 1}, {1, 2, 3}}, // constant x
		{{1}, {2}},             // one value
		{{1, 2}, {1, 2, 3}},    // lengths differ
	} {
		if got := Spearman(xy[0], xy[1]); !math.IsNaN(got) {
			t.Errorf("Spearman(%v, %v) = %v, want NaN", xy[0], xy[1], got)
		}
	}
}

// analogyVectors are built so that 3CosAdd's answers can be worked out by
// hand. Every row but KING and berlin has unit length:
//
//	0 man    (1, 0, 0)       3 queen  (0, 0.6, 0.8)    6 KING   (-0.4, 1, 0.8)
//	1 woman  (0, 1, 0)       4 apple  (0, 0, 1)        7 berlin (-0.4, 1, 0.8)
//	2 king   (0.6, 0, 0.8)   5 prince (0.8, 0.6, 0)
//
// KING lower-cases to "king", a word row 2 already holds: it is dropped.
// berlin is row 7, outside a restriction to 7 rows.
func analogyVectors() *vectors.Vectors {
	return &vectors.Vectors{
		Words: []string{"man", "woman", "king", "queen", "apple", "prince", "KING", "berlin"},
		Dim:   3,
		Data: []float32{
			1, 0, 0,
			0, 1, 0,
			0.6, 0, 0.8,
			0, 0.6, 0.8,
			0, 0, 1,
			0.8, 0.6, 0,
			-0.4, 1, 0.8,
			-0.4, 1, 0.8,
		},
	}
}

// The scores below are dot products of q = b - a + c with the unit rows;
// |(-0.4, 1, 0.8)| = sqrt(1.8) = 1.342, so KING and berlin score q·that/1.342.
const analogyQuestions = `: family
man king woman queen
MAN King WOMAN Queen
apple king man prince
apple king man man
man king woman berlin
man king woman unicorn
: gram-test
king man queen woman
woman queen man king
`

// Line by line, restricted to 7 rows (KING dropped, berlin outside):
//
//	man king woman queen: q = (-0.4, 1, 0.8); queen 0.6+0.64 = 1.24,
//	  apple 0.8, prince -0.32+0.6 = 0.28; man, king, woman excluded.
//	  Correct. (KING, if kept, would score |q| = 1.342 and win.)
//	MAN King WOMAN Queen: the same question after lower-casing. Correct.
//	apple king man prince: q = (1.6, 0, -0.2); man 1.6 and king 0.8 are
//	  excluded, prince scores 1.28, woman 0, queen -0.16. Correct only
//	  because question words are excluded.
//	apple king man man: the answer is a question word, never given. Wrong.
//	man king woman berlin, ... unicorn: skipped (not in the vocabulary).
//	king man queen woman: q = (0.4, 0.6, 0); prince 0.32+0.36 = 0.68 beats
//	  woman 0.6. Wrong.
//	woman queen man king: q = (1, -0.4, 0.8); king 0.6+0.64 = 1.24 beats
//	  apple 0.8 and prince 0.8-0.24 = 0.56. Correct.
func TestAnalogyRestricted(t *testing.T) {
	res, err := Analogy(analogyVectors(), strings.NewReader(analogyQuestions), "q.txt",
		AnalogyOptions{Restrict: 7})
	if err != nil {
		t.Fatal(err)
	}
	want := &AnalogyResult{
		File: "q.txt", Restrict: 7, Vocab: 6,
		Sections: []Section{
			{Name: "family", Score: score(3, 4), Questions: 6},
			{Name: "gram-test", Syntactic: true, Score: score(1, 2), Questions: 2},
		},
		Semantic: score(3, 4), Syntactic: score(1, 2), Total: score(4, 6),
		Seen: 6, Questions: 8,
	}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
}

// With all 8 rows, berlin (-0.4, 1, 0.8) joins the candidates:
//
//	man king woman queen (twice): berlin scores |q| = 1.342 > queen 1.24.
//	  Wrong, both.
//	apple king man prince: berlin scores (-0.64-0.16)/1.342 < 0. Correct.
//	apple king man man: wrong.
//	man king woman berlin: now seen, and berlin wins as above. Correct.
//	man king woman unicorn: skipped.
//	king man queen woman: berlin (-0.16+0.6)/1.342 = 0.33 < prince 0.68.
//	  Wrong.
//	woman queen man king: berlin (-0.4-0.4+0.64)/1.342 < 0. Correct.
func TestAnalogyAllRows(t *testing.T) {
	res, err := Analogy(analogyVectors(), strings.NewReader(analogyQuestions), "q.txt",
		AnalogyOptions{Restrict: 0})
	if err != nil {
		t.Fatal(err)
	}
	want := &AnalogyResult{
		File: "q.txt", Restrict: 8, Vocab: 7,
		Sections: []Section{
			{Name: "family", Score: score(2, 5), Questions: 6},
			{Name: "gram-test", Syntactic: true, Score: score(1, 2), Questions: 2},
		},
		Semantic: score(2, 5), Syntactic: score(1, 2), Total: score(3, 7),
		Seen: 7, Questions: 8,
	}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
}

func score(correct, total int) Score {
	return Score{Correct: correct, Total: total, Accuracy: float64(correct) / float64(total)}
}

func TestAnalogyErrors(t *testing.T) {
	tests := []struct {
		name, in string
		opt      AnalogyOptions
		sentinel error
		fragment string
	}{
		{"three words", ": s\nman king woman\n", AnalogyOptions{}, ErrMalformed,
			"q.txt: line 2: malformed line: 3 words"},
		{"nameless section", "\n:\nman king woman queen\n", AnalogyOptions{}, ErrMalformed,
			"q.txt: line 2"},
		{"no questions", "# nothing\n: s\n", AnalogyOptions{}, ErrNoQuestions, "q.txt"},
		{"negative restrict", ": s\n", AnalogyOptions{Restrict: -1}, nil, "negative"},
	}
	for _, tt := range tests {
		_, err := Analogy(analogyVectors(), strings.NewReader(tt.in), "q.txt", tt.opt)
		if err == nil || !strings.Contains(err.Error(), tt.fragment) ||
			(tt.sentinel != nil && !errors.Is(err, tt.sentinel)) {
			t.Errorf("%s: error %v, want %v holding %q", tt.name, err, tt.sentinel, tt.fragment)
		}
	}
	if got := DefaultAnalogyOptions().Restrict; got != 30000 {
		t.Errorf("default restrict %d, want 30000", got)
	}
}

// similarityVectors: cat (1, 0), Dog (0.6, 0.8), car (0, 1), then CAT
// (0, 1), which lower-cases to a word row 0 holds and is ignored.
func similarityVectors() *vectors.Vectors {
	return &vectors.Vectors{
		Words: []string{"cat", "Dog", "car", "CAT"},
		Dim:   2,
		Data:  []float32{1, 0, 0.6, 0.8, 0, 1, 0, 1},
	}
}

// TestSimilarity: 5 pairs, 3 covered. Cosines: cat-dog 0.6, CAT-car 0 (cat's
// row, not CAT's, whose cosine with car would be 1), dog-car 0.8: ranks
// 2 1 3. Scores 7.5 1 5: ranks 3 1 2. Rank deviations from the mean 2:
// 0 -1 1 and 1 -1 0; Σdx·dy = 1, Σdx² = Σdy² = 2; rho = 1/2.
func TestSimilarity(t *testing.T) {
	in := "# word1\tword2\tscore\n" +
		"cat\tdog\t7.5\n" +
		"CAT car 1.0\r\n" +
		"\n" +
		"dog   car\t5\n" +
		"cat unknown 3\n" +
		"zebra dog 2" // no final newline
	res, err := Similarity(similarityVectors(), strings.NewReader(in), "pairs.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := &SimilarityResult{File: "pairs.txt", Pairs: 5, Covered: 3, Coverage: 0.6, Rho: 0.5}
	if diff := cmp.Diff(want, res, cmpopts.EquateApprox(0, 1e-12)); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
}

func TestSimilarityErrors(t *testing.T) {
	tests := []struct {
		name, in string
		sentinel error
		fragment string
	}{
		{"two fields", "cat dog 1\ncat dog\n", ErrMalformed,
			"pairs.txt: line 2: malformed line: 2 fields"},
		{"bad score", "cat dog high\n", ErrMalformed,
			`pairs.txt: line 1: malformed line: the score "high"`},
		{"nan score", "cat dog NaN\n", ErrMalformed, "line 1"},
		{"header line", "word1 word2 score\n", ErrMalformed, "start it with '#'"},
		{"one covered", "cat dog 1\ncat zebra 2\n", ErrTooFewPairs, "1 of 2 pairs"},
		{"constant scores", "cat dog 1\ndog car 1\n", ErrConstant, "2 pairs covered"},
	}
	for _, tt := range tests {
		_, err := Similarity(similarityVectors(), strings.NewReader(tt.in), "pairs.txt")
		if !errors.Is(err, tt.sentinel) || !strings.Contains(err.Error(), tt.fragment) {
			t.Errorf("%s: error %v, want %v holding %q", tt.name, err, tt.sentinel, tt.fragment)
		}
	}
}
