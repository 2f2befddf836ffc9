package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skipgrid/skipgrid/eval"
	"github.com/skipgrid/skipgrid/vectors"
)

// runCLI runs the skipgrid command line with args and returns its output.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"--log-level", "error"}, args...))
	err := root.Execute()
	return out.String(), err
}

// writeFiles writes name -> content under a new directory and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// analogyDir holds vectors.bin and questions.txt. The vectors are unit
// rows man (1,0,0), woman (0,1,0), king (0.6,0,0.8), queen (0,0.6,0.8),
// apple (0,0,1); the questions, by hand, with q = b - a + c:
//
//	man king woman queen: q = (-0.4,1,0.8); queen 1.24, apple 0.8. Correct.
//	man king woman zebra: skipped, zebra is unknown.
//	woman queen man apple: q = (1,-0.4,0.8); king 1.24 beats apple 0.8. Wrong.
//	KING QUEEN MAN WOMAN (gram): q = (0.4,0.6,0); woman 0.6, apple 0. Correct.
func analogyDir(t *testing.T) string {
	t.Helper()
	dir := writeFiles(t, map[string]string{"questions.txt": ": royal\n" +
		"man king woman queen\nman king woman zebra\nwoman queen man apple\n" +
		": gram-case\nKING QUEEN MAN WOMAN\n"})
	v := &vectors.Vectors{
		Words: []string{"man", "woman", "king", "queen", "apple"},
		Dim:   3,
		Data:  []float32{1, 0, 0, 0, 1, 0, 0.6, 0, 0.8, 0, 0.6, 0.8, 0, 0, 1},
	}
	path := filepath.Join(dir, "vectors.bin")
	if err := vectors.WriteFile(path, v, vectors.FormatBinary); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestEvalAnalogyText(t *testing.T) {
	dir := analogyDir(t)
	out, err := runCLI(t, "eval", "analogy", "--vectors", filepath.Join(dir, "vectors.bin"),
		"--questions", filepath.Join(dir, "questions.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := "royal: 50.00% (1/2)\n" +
		"gram-case: 100.00% (1/1)\n" +
		"semantic: 50.00% (1/2)\n" +
		"syntactic: 100.00% (1/1)\n" +
		"total: 66.67% (2/3)\n" +
		"questions seen/total: 3/4 (75.00%)\n"
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}

func TestEvalAnalogyJSON(t *testing.T) {
	dir := analogyDir(t)
	out, err := runCLI(t, "eval", "analogy", "--vectors", filepath.Join(dir, "vectors.bin"),
		"--questions", filepath.Join(dir, "questions.txt"), "--restrict", "0", "--json",
		"--format", "bin")
	if err != nil {
		t.Fatal(err)
	}
	var got eval.AnalogyResult
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if got.Total.Correct != 2 || got.Total.Total != 3 || got.Seen != 3 || got.Questions != 4 ||
		got.Restrict != 5 {
		t.Errorf("got %+v, want 2 of 3 correct, 3 of 4 seen, 5 rows", got)
	}
	keys := []string{`"questions_seen": 3`, `"questions_total": 4`, `"syntactic": true`}
	for _, key := range keys {
		if !strings.Contains(out, key) {
			t.Errorf("JSON lacks %s:\n%s", key, out)
		}
	}
}

// TestEvalSimilarity: cosines cat-dog 0.6, cat-car 0, dog-car 0.8 (ranks
// 2 1 3) against scores 7.5 1 5 (ranks 3 1 2): rho = 0.5 (see the eval
// package's test for the arithmetic); 3 of 4 pairs covered.
func TestEvalSimilarity(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"vectors.txt": "3 2\ncat 1 0\ndog 0.6 0.8\ncar 0 1\n",
		"pairs.tsv":   "# w1\tw2\tscore\ncat\tdog\t7.5\r\ncat\tcar\t1\r\ndog\tcar\t5\r\nox\tcar\t2",
	})
	args := []string{"eval", "similarity", "--vectors", filepath.Join(dir, "vectors.txt"),
		"--pairs", filepath.Join(dir, "pairs.tsv")}
	out, err := runCLI(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	if want := "spearman rho: 0.5000\npairs covered/total: 3/4 (75.00%)\n"; out != want {
		t.Errorf("output %q, want %q", out, want)
	}

	out, err = runCLI(t, append(args, "--json")...)
	if err != nil {
		t.Fatal(err)
	}
	var got eval.SimilarityResult
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	want := eval.SimilarityResult{File: filepath.Join(dir, "pairs.tsv"), Pairs: 4, Covered: 3,
		Coverage: 0.75, Rho: 0.5}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("JSON (-want +got):\n%s", diff)
	}
}

func TestEvalErrors(t *testing.T) {
	dir := analogyDir(t)
	vec := filepath.Join(dir, "vectors.bin")
	for _, tt := range []struct {
		args     []string
		fragment string
	}{
		{[]string{"eval", "analogy", "--questions", "q"}, `"vectors" not set`},
		{[]string{"eval", "analogy", "--vectors", vec, "--questions", "q", "--restrict", "-1"},
			"--restrict -1"},
		{[]string{"eval", "analogy", "--vectors", vec, "--questions", "q", "--format", "w2v"},
			"--format"},
		{[]string{"eval", "similarity", "--vectors", vec, "--pairs",
			filepath.Join(dir, "questions.txt")}, "questions.txt: line 1: malformed line"},
	} {
		_, err := runCLI(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.fragment) {
			t.Errorf("%v: error %v, want one holding %q", tt.args, err, tt.fragment)
		}
	}
}
