package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/viper"

	"github.com/skipgrid/skipgrid/coordinator"
)

// checkpointSubdir is where the PS shards of train and finetune keep their checkpoints,
// inside --out.
const checkpointSubdir = ".checkpoints"

// resumeOut makes --resume DIR stand for --out DIR; giving both with different
// directories is an error.
func resumeOut(v *viper.Viper) error {
	dir := v.GetString("resume")
	if dir == "" {
		return nil
	}
	if out := v.GetString("out"); out != "" && filepath.Clean(out) != filepath.Clean(dir) {
		return fmt.Errorf("--resume %s and --out %s: give one directory (--resume continues "+
			"the job whose output directory it names)", dir, out)
	}
	v.Set("out", dir)
	return nil
}

// prepareCheckpoints sets up persistence for train or finetune (--checkpoint-every,
// --resume) and returns the shards' checkpoint directory. With --resume the job saved in
// --out continues: its state must be there. A new job starts from nothing: checkpoints an
// earlier job left in --out are removed, since the shards would restore them, unless that
// job had stopped before its end. Nothing is removed from an --out the job cannot use.
func prepareCheckpoints(v *viper.Viper, jc *coordinator.Config) (string, error) {
	jc.CheckpointEvery = v.GetDuration("checkpoint-every")
	if err := jc.CheckOutDir(); err != nil {
		return "", fmt.Errorf("--out: %w", err)
	}
	dir := filepath.Join(jc.OutDir, checkpointSubdir)
	if v.GetString("resume") == "" {
		if err := jc.CheckNoStoppedJob(); err != nil {
			return "", fmt.Errorf("--out: %w", err)
		}
		if err := os.RemoveAll(dir); err != nil {
			return "", fmt.Errorf("remove the checkpoints of an earlier job: %w", err)
		}
		return dir, nil
	}

	jc.Resume = true
	state := filepath.Join(jc.OutDir, ".state", coordinator.StateFile)
	if _, err := os.Stat(state); errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("--resume %s: no stopped job to continue there (%s does not "+
			"exist: the job finished or never started); start it with --out", jc.OutDir,
			state)
	} else if err != nil {
		return "", fmt.Errorf("--resume %s: %w", jc.OutDir, err)
	}
	return dir, nil
}

// removeCheckpoints deletes the shards' checkpoints once a job has ended (done or failed);
// a job stopped by a signal keeps them for --resume.
func removeCheckpoints(dir string, stopped bool) {
	if !stopped {
		_ = os.RemoveAll(dir)
	}
}
