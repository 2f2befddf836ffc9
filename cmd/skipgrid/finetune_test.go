package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skipgrid/skipgrid/classify"
	"github.com/skipgrid/skipgrid/vectors"
)

// TestFinetunePredictEval runs finetune on case 16 (3 labelled lines of 6), then predict and
// eval classify on the model.
func TestFinetunePredictEval(t *testing.T) {
	src, err := os.ReadFile("../../classify/testdata/16-unlabeled-lines.txt")
	if err != nil {
		t.Fatal(err)
	}
	dir := writeFiles(t, map[string]string{
		"train.txt": string(src),
		"input.txt": "__label__tech new laptop\n\nzzz qqq\nthe match\n",
	})
	model := filepath.Join(dir, "model")
	out, err := runCLI(t, "finetune", "--random-init", "--train",
		filepath.Join(dir, "train.txt"), "--test", filepath.Join(dir, "train.txt"),
		"--out", model, "--dim", "4", "--epochs", "2", "--workers", "1", "--ps", "1")
	if err != nil {
		t.Fatalf("finetune: %v\n%s", err, out)
	}
	for _, want := range []string{"fine-tuned 3 examples x 2 passes (2 labels",
		"3 labelled and 3 skipped lines", "test accuracy: "} {
		if !strings.Contains(out, want) {
			t.Errorf("finetune output lacks %q:\n%s", want, out)
		}
	}

	out, err = runCLI(t, "predict", "--model", model, "--input",
		filepath.Join(dir, "input.txt"), "--json", "--k", "2")
	if err != nil {
		t.Fatalf("predict: %v\n%s", err, out)
	}
	var recs []predictRecord
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r predictRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("predict line %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	// One record per input line, in order: 2 labels for known words (new, laptop, the,
	// match are training words), the reasons for the empty line and the unknown words.
	type brief struct {
		Line, Labels, Known int
		Reason              string
		Gold                []string
	}
	var got []brief
	for _, r := range recs {
		got = append(got, brief{r.Line, len(r.Labels), r.Known, r.Reason, r.Gold})
	}
	want := []brief{{1, 2, 2, "", []string{"tech"}}, {2, 0, 0, "empty line", nil},
		{3, 0, 0, "no known word", nil}, {4, 2, 2, "", nil}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("predict records (-want +got):\n%s", diff)
	}

	out, err = runCLI(t, "predict", "--model", model, "--input",
		filepath.Join(dir, "input.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 4 || lines[1] != "none (empty line)" || lines[2] != "none (no known word)" ||
		!strings.HasPrefix(lines[0], "__label__") {
		t.Errorf("predict text output:\n%s", out)
	}

	out, err = runCLI(t, "eval", "classify", "--model", model, "--test",
		filepath.Join(dir, "train.txt"), "--json")
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Read   classify.Summary `json:"read"`
		Report classify.Report  `json:"report"`
	}
	if err := json.Unmarshal([]byte(out), &ev); err != nil {
		t.Fatalf("eval classify --json: %v\n%s", err, out)
	}
	if ev.Read.Labelled != 3 || ev.Read.Skipped != 3 || ev.Report.Examples != 3 {
		t.Errorf("eval classify: read %+v, %d examples; want 3 labelled, 3 skipped",
			ev.Read, ev.Report.Examples)
	}
}

func TestFinetuneFlagErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"train.txt": "__label__a x\n",
		"v.txt":     "1 3\nx 1 2 3\n",
	})
	train := filepath.Join(dir, "train.txt")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--train", train, "--out", dir}, "--random-init for the baseline"},
		{[]string{"--train", train, "--out", dir, "--random-init", "--pretrained", "v"},
			"exclude each other"},
		{[]string{"--train", train, "--out", dir, "--pretrained",
			filepath.Join(dir, "v.txt"), "--dim", "5"},
			"--dim 5 disagrees with the pretrained vectors"},
		{[]string{"--random-init", "--out", dir}, "--train: give"},
	}
	for _, tc := range cases {
		out, err := runCLI(t, append([]string{"finetune"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("finetune %v: %v (%s), want an error with %q", tc.args, err, out, tc.want)
		}
	}
}

// TestFinetuneChecksBeforeTraining: a missing --test file fails before training, and an
// --out that holds the --pretrained vectors is refused; neither writes a model or touches
// the vectors.
func TestFinetuneChecksBeforeTraining(t *testing.T) {
	vecs := "1 3\nx 1 2 3\n"
	dir := writeFiles(t, map[string]string{"train.txt": "__label__a x\n__label__b y\n",
		"vectors.bin": vecs})
	train := filepath.Join(dir, "train.txt")

	out := filepath.Join(dir, "model")
	nope := filepath.Join(dir, "nope.txt")
	_, err := runCLI(t, "finetune", "--random-init", "--dim", "3", "--train", train,
		"--out", out, "--test", nope)
	if err == nil || !strings.HasPrefix(err.Error(), "--test "+nope+": ") {
		t.Errorf("finetune --test %s: %v, want an error that starts with the flag", nope, err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("finetune with a missing --test made %s: %v", out, err)
	}

	_, err = runCLI(t, "finetune", "--pretrained", filepath.Join(dir, "vectors.bin"),
		"--pretrained-format", "text", "--train", train, "--out", dir)
	want := "the job would write " + filepath.Join(dir, "vectors.bin") + " over its " +
		"pretrained vectors"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("finetune --out the vectors' directory: %v, want an error with %q", err, want)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "vectors.bin")); err != nil ||
		string(b) != vecs {
		t.Errorf("the pretrained vectors now hold %q (%v), want them as they were", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "model.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused job wrote model.json: %v", err)
	}
}

// TestFinetuneReplaceInvalidUTF8: 03-truncated-utf8.bin holds caf\xc3 and na\xefve; finetune
// refuses it as pretrained vectors, and with --replace-invalid-utf8 reads caf\uFFFD,
// na\uFFFDve and ok, so that ok, the one training word, starts from its vector.
func TestFinetuneReplaceInvalidUTF8(t *testing.T) {
	dir := writeFiles(t, map[string]string{"train.txt": "__label__a ok\n__label__b ok ok\n"})
	args := []string{"finetune", "--pretrained", "../../vectors/testdata/03-truncated-utf8.bin",
		"--train", filepath.Join(dir, "train.txt"), "--epochs", "1", "--workers", "1"}
	_, err := runCLI(t, append(args, "--out", filepath.Join(dir, "refused"))...)
	if !errors.Is(err, vectors.ErrInvalidWord) {
		t.Errorf("finetune on invalid UTF-8: %v, want an invalid word", err)
	}
	out := filepath.Join(dir, "model")
	if _, err := runCLI(t, append(args, "--out", out, "--replace-invalid-utf8")...); err != nil {
		t.Fatal(err)
	}
	m, err := classify.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(m.Vectors.Words, " "); got != "ok caf\uFFFD na\uFFFDve" {
		t.Errorf("model words %q, want the training word, then the pretrained ones", got)
	}
}
