package eval

import (
	"bufio"
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
)

// FuzzAnalogy feeds arbitrary bytes as a questions file. Whatever the input, Analogy must
// return either a result whose counts add up or an error naming the file with one of the
// documented causes; never panic.
func FuzzAnalogy(f *testing.F) {
	f.Add([]byte(analogyQuestions))
	f.Add([]byte(": only a header\n"))
	f.Add([]byte(":\nman king woman queen\n"))
	f.Add([]byte("man king woman\n# comment\n"))
	f.Add([]byte("MAN\tKing WOMAN Queen\r\n: gram\nwoman queen man king"))
	f.Fuzz(func(t *testing.T, in []byte) {
		res, err := Analogy(analogyVectors(), bytes.NewReader(in), "fuzz.txt",
			AnalogyOptions{Restrict: 7})
		if err != nil {
			checkFileError(t, err, ErrMalformed, ErrNoQuestions)
			return
		}

		// Seen questions are scored once, in their section and in one half.
		secQuestions, secTotal := 0, 0
		for _, s := range res.Sections {
			secQuestions += s.Questions
			secTotal += s.Total
			checkScore(t, "section "+s.Name, s.Score)
		}
		if res.Questions < 1 || secQuestions != res.Questions || res.Seen > res.Questions ||
			res.Total.Total != res.Seen || secTotal != res.Seen ||
			res.Semantic.Total+res.Syntactic.Total != res.Seen {
			t.Fatalf("counts do not add up: %+v", res)
		}
		checkScore(t, "total", res.Total)
		checkScore(t, "semantic", res.Semantic)
		checkScore(t, "syntactic", res.Syntactic)
	})
}

// FuzzSimilarity feeds arbitrary bytes as a pairs file. Whatever the input, Similarity
// must return either a finite correlation over consistent counts or an error naming the
// file with one of the documented causes; never panic.
func FuzzSimilarity(f *testing.F) {
	f.Add([]byte("cat dog 7.5\nCAT car 1.0\r\ndog car\t5\n"))
	f.Add([]byte("# header\ncat dog 1\ndog car 1\n"))
	f.Add([]byte("cat dog NaN\n"))
	f.Add([]byte("cat dog 1e308\ndog car -1e308\ncar cat 0x1p-3"))
	f.Fuzz(func(t *testing.T, in []byte) {
		res, err := Similarity(similarityVectors(), bytes.NewReader(in), "fuzz.txt")
		if err != nil {
			checkFileError(t, err, ErrMalformed, ErrTooFewPairs, ErrConstant)
			return
		}
		if res.Covered < 2 || res.Covered > res.Pairs ||
			res.Coverage != float64(res.Covered)/float64(res.Pairs) {
			t.Fatalf("counts do not add up: %+v", res)
		}
		if math.IsNaN(res.Rho) || res.Rho < -1-1e-9 || res.Rho > 1+1e-9 {
			t.Fatalf("rho %v outside [-1, 1]", res.Rho)
		}
	})
}

// checkFileError fails unless err names the file and wraps one of causes, or is a line
// longer than the reader's limit.
func checkFileError(t *testing.T, err error, causes ...error) {
	t.Helper()
	if !strings.HasPrefix(err.Error(), "fuzz.txt: ") {
		t.Fatalf("error %q does not start with the file name", err)
	}
	if errors.Is(err, bufio.ErrTooLong) {
		return
	}
	for _, c := range causes {
		if errors.Is(err, c) {
			return
		}
	}
	t.Fatalf("error %v wraps none of %v", err, causes)
}

func checkScore(t *testing.T, what string, s Score) {
	t.Helper()
	want := 0.0
	if s.Total > 0 {
		want = float64(s.Correct) / float64(s.Total)
	}
	if s.Correct < 0 || s.Correct > s.Total || s.Accuracy != want {
		t.Fatalf("%s: score %+v; accuracy should be %v", what, s, want)
	}
}
