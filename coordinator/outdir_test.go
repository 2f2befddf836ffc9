package coordinator

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// writeFile writes body to path, failing the test on error.
func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheckOutDir(t *testing.T) {
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	writeFile(t, filepath.Join(run, VectorsFile), "vectors of a pretraining run")
	train := filepath.Join(dir, "train.txt")
	writeFile(t, train, "__label__a x\n")
	afile := filepath.Join(dir, "afile")
	writeFile(t, afile, "")

	finetune := func(out, pretrained string) Config {
		c := DefaultConfig()
		c.Kind, c.OutDir = skipgridpb.JobKind_JOB_KIND_FINETUNE, out
		c.Finetune.TrainFile, c.Finetune.Pretrained = train, pretrained
		return c
	}
	pretrain := func(out string, corpus ...string) Config {
		c := DefaultConfig()
		c.OutDir, c.Corpus = out, corpus
		return c
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // "" for no error
	}{
		{"new directory", finetune(filepath.Join(dir, "new"), filepath.Join(run, VectorsFile)),
			""},
		{"fine-tuned into the run of its vectors",
			finetune(run, filepath.Join(run, VectorsFile)),
			"the job would write " + filepath.Join(run, VectorsFile) + " over its pretrained " +
				"vectors " + filepath.Join(run, VectorsFile)},
		{"the same file by another path",
			finetune(run+"/.", filepath.Join(run, "..", "run", VectorsFile)),
			"over its pretrained vectors"},
		{"an earlier run's output, not an input", finetune(run, ""), ""},
		{"a corpus file named as an output",
			pretrain(run, filepath.Join(run, VectorsFile)),
			"over its corpus file"},
		{"a labelled file named as an output", finetune(dir, ""),
			""}, // train.txt is no output name
		{"out is a file", pretrain(afile, train),
			"output directory " + afile + " is a file, not a directory"},
	} {
		err := tc.cfg.CheckOutDir()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want no error", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}

	// The labelled file itself as an output: a model.json the job would replace.
	writeFile(t, filepath.Join(dir, "m", "model.json"), "__label__a x\n")
	c := finetune(filepath.Join(dir, "m"), "")
	c.Finetune.TrainFile = filepath.Join(dir, "m", "model.json")
	if err := c.CheckOutDir(); err == nil ||
		!strings.Contains(err.Error(), "over its labelled training file") {
		t.Errorf("a labelled file at DIR/model.json: %v, want a refusal", err)
	}
}

func TestCheckNoStoppedJob(t *testing.T) {
	for _, tc := range []struct {
		name, state string
		resume      bool
		want        string
	}{
		{"no state", "", false, ""},
		{"a job that finished", `{"phase": 5}`, false, ""},
		{"a job that failed", `{"phase": 6}`, false, ""},
		{"a stopped job", `{"phase": 3}`, false, "holds a stopped job"},
		{"a stopped job, resumed", `{"phase": 3}`, true, ""},
		{"a state that is not JSON", `{"pha`, false, "remove the file to start a new job"},
	} {
		c := DefaultConfig()
		c.OutDir, c.Resume = t.TempDir(), tc.resume
		if tc.state != "" {
			writeFile(t, filepath.Join(c.OutDir, ".state", StateFile), tc.state)
		}
		err := c.CheckNoStoppedJob()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want no error", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}
