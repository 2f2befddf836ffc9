package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFinetuneResumeNeedsState: finetune --resume names a directory holding a stopped job;
// without one it fails saying so.
func TestFinetuneResumeNeedsState(t *testing.T) {
	dir := writeFiles(t, map[string]string{"train.txt": "__label__a x y\n__label__b z\n"})
	_, err := runCLI(t, "finetune", "--random-init", "--train",
		filepath.Join(dir, "train.txt"), "--resume", filepath.Join(dir, "out"))
	if err == nil || !strings.Contains(err.Error(), "no stopped job to continue") {
		t.Errorf("--resume without a saved job: %v", err)
	}
}

// TestFinetuneLeavesNoState: a finished fine-tuning job, checkpointed as often as it can be,
// leaves neither checkpoints nor saved state in its output directory.
func TestFinetuneLeavesNoState(t *testing.T) {
	dir := writeFiles(t, map[string]string{"train.txt": "__label__a x y\n__label__b z\n"})
	out := filepath.Join(dir, "out")
	if msg, err := runCLI(t, "finetune", "--random-init", "--train",
		filepath.Join(dir, "train.txt"), "--out", out, "--dim", "4", "--epochs", "2",
		"--workers", "1", "--ps", "1", "--checkpoint-every", "1ms"); err != nil {
		t.Fatalf("finetune: %v\n%s", err, msg)
	}
	for _, sub := range []string{checkpointSubdir, ".state"} {
		if _, err := os.Stat(filepath.Join(out, sub)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after the job: %v; want it gone", sub, err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "classifier.bin")); err != nil {
		t.Errorf("no model: %v", err)
	}
}
