package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/viper"

	"github.com/skipgrid/skipgrid/coordinator"
)

// TestTrainResumeNeedsState: --resume names a directory holding a stopped job; without one
// it fails saying so, and it cannot be given with another --out.
func TestTrainResumeNeedsState(t *testing.T) {
	dir := writeFiles(t, map[string]string{"c.txt": "a b c\n"})
	_, err := runCLI(t, "train", "--corpus", filepath.Join(dir, "c.txt"), "--resume",
		filepath.Join(dir, "out"), "--progress", "off")
	if err == nil || !strings.Contains(err.Error(), "no stopped job to continue") {
		t.Errorf("--resume without a saved job: %v", err)
	}
	_, err = runCLI(t, "train", "--corpus", filepath.Join(dir, "c.txt"), "--resume",
		filepath.Join(dir, "out"), "--out", filepath.Join(dir, "other"))
	if err == nil || !strings.Contains(err.Error(), "give one directory") {
		t.Errorf("--resume with another --out: %v", err)
	}
}

// TestPrepareCheckpoints: a new job removes the checkpoints an earlier one that ended left in
// its output directory (the shards would restore them), and refuses the directory of one
// that stopped before its end; a resumed one keeps them.
func TestPrepareCheckpoints(t *testing.T) {
	out := t.TempDir()
	stale := filepath.Join(out, checkpointSubdir, "shard-0-7.ckpt")
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte("an earlier job's checkpoint"), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(out, ".state", coordinator.StateFile)
	if err := os.MkdirAll(filepath.Dir(state), 0o755); err != nil {
		t.Fatal(err)
	}
	// Phase 3 is PHASE_TRAINING: a job stopped while it trained.
	if err := os.WriteFile(state, []byte(`{"phase": 3}`), 0o644); err != nil {
		t.Fatal(err)
	}

	v := viper.New()
	v.Set("resume", out)
	jc := coordinator.Config{OutDir: out}
	dir, err := prepareCheckpoints(v, &jc)
	if err != nil || dir != filepath.Dir(stale) || !jc.Resume {
		t.Fatalf("resume: dir %q, resume %v, %v", dir, jc.Resume, err)
	}
	if _, err := os.Stat(stale); err != nil {
		t.Errorf("a resumed job lost its checkpoint: %v", err)
	}

	v.Set("resume", "")
	jc = coordinator.Config{OutDir: out}
	if _, err := prepareCheckpoints(v, &jc); err == nil ||
		!strings.Contains(err.Error(), "holds a stopped job") {
		t.Fatalf("new job over a stopped one: %v, want a refusal", err)
	}
	if _, err := os.Stat(stale); err != nil {
		t.Errorf("a refused job removed the stopped job's checkpoint: %v", err)
	}

	// Phase 5 is PHASE_DONE: that job ended, and a new one may start there.
	if err := os.WriteFile(state, []byte(`{"phase": 5}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := prepareCheckpoints(v, &jc); err != nil || jc.Resume {
		t.Fatalf("new job: resume %v, %v", jc.Resume, err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a new job kept an earlier job's checkpoint: %v", err)
	}
}

// TestTrainLeavesNoState: a finished job leaves neither checkpoints nor saved state in its
// output directory.
func TestTrainLeavesNoState(t *testing.T) {
	corpus := strings.Repeat("the cat sat on the mat\n", 40)
	dir := writeFiles(t, map[string]string{"c.txt": corpus})
	out := filepath.Join(dir, "out")
	if _, err := runCLI(t, "train", "--corpus", filepath.Join(dir, "c.txt"), "--out", out,
		"--min-count", "1", "--epochs", "1", "--dim", "8", "--progress", "off"); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{checkpointSubdir, ".state"} {
		if _, err := os.Stat(filepath.Join(out, sub)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after the job: %v; want it gone", sub, err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "vectors.bin")); err != nil {
		t.Errorf("no vectors: %v", err)
	}
}
