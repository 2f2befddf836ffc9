package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skipgrid/skipgrid/classify"
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
	for _, want := range []string{"fine-tuned 3 examples x 2 epochs (2 labels",
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
