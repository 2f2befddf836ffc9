package coordinator

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/skipgrid/skipgrid/classify"
	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// CheckOutDir refuses an output directory that the job cannot use without losing what is
// there: a path that is a file, or a directory where one of the files the job writes is one
// of its inputs (the corpus, the labelled file or the pretrained vectors: a fine-tuning job
// given --out of the run whose vectors it starts from would replace them). New calls it; a
// command calls it before it touches the directory.
func (c Config) CheckOutDir() error {
	st, err := os.Stat(c.OutDir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("output directory: %w", err)
	case !st.IsDir():
		return fmt.Errorf("output directory %s is a file, not a directory; give a directory "+
			"(it is made if it does not exist)", c.OutDir)
	}

	outputs := []string{VectorsFile, VocabFile, RunFile}
	if c.finetune() {
		outputs = append(outputs, classify.MetaFile, classify.ClassifierFile)
	}
	for _, in := range c.inputs() {
		inSt, err := os.Stat(in.path)
		if err != nil {
			continue // the reader says what is wrong with it, in its own words
		}
		for _, name := range outputs {
			out := filepath.Join(c.OutDir, name)
			if outSt, err := os.Stat(out); err == nil && os.SameFile(inSt, outSt) {
				return fmt.Errorf("output directory %s: the job would write %s over its %s "+
					"%s; give another output directory", c.OutDir, out, in.what, in.path)
			}
		}
	}
	return nil
}

// input is a file a job reads, with what it is to the job.
type input struct{ what, path string }

// inputs lists the files the job reads.
func (c Config) inputs() []input {
	var in []input
	for _, p := range c.Corpus {
		in = append(in, input{"corpus file", p})
	}
	if f := c.Finetune; c.finetune() {
		in = append(in, input{"labelled training file", f.TrainFile})
		if f.Pretrained != "" {
			in = append(in, input{"pretrained vectors", f.Pretrained})
		}
	}
	return in
}

// CheckNoStoppedJob refuses to start a new job in an output directory that holds a stopped
// job's saved state: starting afresh there would discard that job's progress and its shards'
// checkpoints. A saved job that ended (done or failed) may be replaced. Resume jobs skip the
// check, since they continue what is saved.
func (c Config) CheckNoStoppedJob() error {
	if c.Resume {
		return nil
	}
	path := filepath.Join(c.stateDir(), StateFile)
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("coordinator state: %w", err)
	}
	var st struct {
		Phase skipgridpb.Phase `json:"phase"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("coordinator state %s: %w; remove the file to start a new job "+
			"there", path, err)
	}
	if st.Phase == skipgridpb.Phase_PHASE_DONE || st.Phase == skipgridpb.Phase_PHASE_FAILED {
		return nil
	}
	return fmt.Errorf("output directory %s holds a stopped job (%s, saved in phase %s): "+
		"continue it with --resume %s, or remove %s to start a new job there", c.OutDir,
		path, phaseName(st.Phase), c.OutDir, c.stateDir())
}
