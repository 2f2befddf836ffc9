package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skipgrid/skipgrid/classify"
	"github.com/skipgrid/skipgrid/vectors"
)

// saveTinyModel writes a model with words good (1, 0) and bad (-1, 0) of dim 2 and labels
// pos and neg with rows (1, 0) and (-1, 0), no bigrams and no EOS row, and returns its
// directory. A line of good alone has h = (1, 0), logits 1 and -1: pos, with 1/(1+e^-2) =
// 0.8808; a line of bad alone is neg.
func saveTinyModel(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	m := &classify.Model{
		Meta: classify.Meta{Dim: 2, Labels: []string{"pos", "neg"}, Tokenizer: "words",
			VocabSize: 2, TrainedWords: 2},
		Vectors: &vectors.Vectors{Words: []string{"good", "bad"}, Dim: 2,
			Data: []float32{1, 0, -1, 0}},
		Classifier: []float32{1, 0, -1, 0},
	}
	if err := classify.Save(dir, m); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestEvalClassifyForeignLabels scores the pos/neg model on a file of other labels: an error
// that names the file and both label sets, not an accuracy of 0.
func TestEvalClassifyForeignLabels(t *testing.T) {
	model := saveTinyModel(t)
	dir := writeFiles(t, map[string]string{
		"trec.txt": "__label__HUM good\n__label__LOC bad\n__label__HUM zzz\n",
	})
	test := filepath.Join(dir, "trec.txt")
	out, err := runCLI(t, "eval", "classify", "--model", model, "--test", test)
	want := "evaluate on " + test + ": no example has a label the model knows: the file's " +
		"labels are HUM, LOC; the model's are pos, neg; is " + test + " another task's test file?"
	if err == nil || err.Error() != want {
		t.Errorf("eval classify: %v (%s)\nwant the error: %s", err, out, want)
	}
}

// TestEvalClassifyUnknownLabels scores the pos/neg model on good (pos), bad (neg) and good
// (sports): 2 of 3 right. pos: support 1, predicted 2, correct 1: P 1/2, R 1, F1 2/3; neg:
// 1, 1, 1; sports: support 1, never predicted. Macro P (1/2+1+0)/3 = 1/2, R 2/3, F1 (2/3 +
// 1)/3 = 5/9; each support is 1, so the weighted means are the same.
func TestEvalClassifyUnknownLabels(t *testing.T) {
	model := saveTinyModel(t)
	dir := writeFiles(t, map[string]string{
		"mixed.txt": "__label__pos good\n__label__neg bad\n__label__sports good\n",
	})
	test := filepath.Join(dir, "mixed.txt")
	out, err := runCLI(t, "eval", "classify", "--model", model, "--test", test)
	if err != nil {
		t.Fatalf("eval classify: %v\n%s", err, out)
	}
	want := "test " + test + ": 3 labelled and 0 skipped lines (0 empty, 0 without a label, " +
		"0 with a malformed label) of 3; 0 with several labels, 0 without text, 3 tokens\n" +
		"test accuracy: 0.6667 (2/3), macro-F1: 0.5556\n\n" +
		"              precision     recall   f1-score    support\n" + `
         pos     0.5000     1.0000     0.6667          1
         neg     1.0000     1.0000     1.0000          1
      sports     0.0000     0.0000     0.0000          1

    accuracy                           0.6667          3
   macro avg     0.5000     0.6667     0.5556          3
weighted avg     0.5000     0.6667     0.5556          3

1 of 3 examples have a label the model does not know (sports: 1); they count as wrong
`
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("eval classify (-want +got):\n%s", diff)
	}

	out, err = runCLI(t, "eval", "classify", "--model", model, "--test", test, "--json")
	if err != nil {
		t.Fatalf("eval classify --json: %v\n%s", err, out)
	}
	var ev struct {
		Report struct {
			Correct         int            `json:"correct"`
			UnknownExamples int            `json:"unknown_examples"`
			UnknownLabels   map[string]int `json:"unknown_labels"`
		} `json:"report"`
	}
	if err := json.Unmarshal([]byte(out), &ev); err != nil {
		t.Fatalf("eval classify --json: %v\n%s", err, out)
	}
	if r := ev.Report; r.Correct != 2 || r.UnknownExamples != 1 ||
		!cmp.Equal(r.UnknownLabels, map[string]int{"sports": 1}) {
		t.Errorf("eval classify --json: %+v, want 2 right, 1 unknown (sports: 1)", r)
	}
}

// TestPredictReasons predicts a known word, an empty line, a line of white space, a line of
// punctuation (which the words tokenizer drops), unknown words and a line of labels alone.
func TestPredictReasons(t *testing.T) {
	model := saveTinyModel(t)
	dir := writeFiles(t, map[string]string{
		"input.txt": "good\n\n \t\r\n... !!!\nzzz qqq\n__label__pos\n",
	})
	input := filepath.Join(dir, "input.txt")
	out, err := runCLI(t, "predict", "--model", model, "--input", input)
	if err != nil {
		t.Fatalf("predict: %v\n%s", err, out)
	}
	want := "__label__pos 0.8808\nnone (empty line)\nnone (empty line)\n" +
		"none (no token kept by the tokenizer)\nnone (no known word)\nnone (empty line)\n"
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("predict (-want +got):\n%s", diff)
	}

	out, err = runCLI(t, "predict", "--model", model, "--input", input, "--json")
	if err != nil {
		t.Fatalf("predict --json: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], `{"line":1,"labels":[{"label":"pos",`) {
		t.Fatalf("predict --json: want 6 records, the first with pos:\n%s", out)
	}
	wantJSON := []string{
		`{"line":2,"labels":[],"tokens":0,"known":0,"reason":"empty line"}`,
		`{"line":3,"labels":[],"tokens":0,"known":0,"reason":"empty line"}`,
		`{"line":4,"labels":[],"tokens":0,"known":0,"reason":"no token kept by the tokenizer"}`,
		`{"line":5,"labels":[],"tokens":2,"known":0,"reason":"no known word"}`,
		`{"line":6,"labels":[],"tokens":0,"known":0,"reason":"empty line","gold":["pos"]}`,
	}
	if diff := cmp.Diff(wantJSON, lines[1:]); diff != "" {
		t.Errorf("predict --json records without a prediction (-want +got):\n%s", diff)
	}
}

// TestClassifyFileFlagErrors gives predict and eval classify a file that does not exist: the
// error names the flag.
func TestClassifyFileFlagErrors(t *testing.T) {
	model := saveTinyModel(t)
	nope := filepath.Join(t.TempDir(), "nope.txt")
	_, err := runCLI(t, "predict", "--model", model, "--input", nope)
	want := "--input " + nope + ": open " + nope + ": no such file or directory"
	if err == nil || err.Error() != want {
		t.Errorf("predict: %v\nwant the error: %s", err, want)
	}
	_, err = runCLI(t, "eval", "classify", "--model", model, "--test", nope)
	want = "--test " + nope + ": read labelled file: open " + nope + ": no such file or directory"
	if err == nil || err.Error() != want {
		t.Errorf("eval classify: %v\nwant the error: %s", err, want)
	}
}

// TestEvalClassifyUnknownLabelsWarning checks the warning that eval classify logs for the
// example whose label the model does not know.
func TestEvalClassifyUnknownLabelsWarning(t *testing.T) {
	model := saveTinyModel(t)
	dir := writeFiles(t, map[string]string{
		"mixed.txt": "__label__pos good\n__label__neg bad\n__label__sports good\n",
	})
	test := filepath.Join(dir, "mixed.txt")

	// The logger writes to os.Stderr itself.
	stderr, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	saved := os.Stderr
	os.Stderr = stderr
	root := newRootCmd()
	root.SetOut(io.Discard)
	root.SetArgs([]string{"--log-level", "warn", "eval", "classify", "--model", model,
		"--test", test})
	err = root.Execute()
	os.Stderr = saved
	if err != nil {
		t.Fatal(err)
	}
	logged, err := os.ReadFile(stderr.Name())
	if err != nil {
		t.Fatal(err)
	}
	want := `level=WARN msg="test file: labels the model does not know; their examples count ` +
		`as wrong" file=` + test + ` examples=1 labels="sports: 1"` + "\n"
	if lines := strings.Split(strings.TrimSuffix(string(logged), "\n"), "\n"); len(lines) != 1 ||
		!strings.HasSuffix(string(logged), want) {
		t.Errorf("logged:\n%s\nwant one line ending with:\n%s", logged, want)
	}
}
