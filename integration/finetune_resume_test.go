package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// finetuneResumePasses is the passes of the job TestFinetuneKilledAndResumed kills: enough
// that the kill after the first pass lands well before the end.
const finetuneResumePasses = 20

// TestFinetuneKilledAndResumed kills an embedded `skipgrid finetune` with SIGKILL once both
// shards have written their first checkpoint (the end of pass 0) and continues it with
// `finetune --resume`: both shards come back from their checkpoints, the coordinator from
// its saved state, and the job finishes with every example counted exactly once per pass
// and a test accuracy on TREC within a point of an uninterrupted run with the same seed.
// One worker of one thread trains, so that the uninterrupted run is the same every time
// and the difference measures the kill alone.
func TestFinetuneKilledAndResumed(t *testing.T) {
	if testing.Short() {
		t.Skip("fine-tunes twice; skipped with -short")
	}
	train := filepath.Join(classifyData, "trec.train.txt")
	test := filepath.Join(classifyData, "trec.test.txt")
	if _, err := os.Stat(train); err != nil {
		t.Skipf("TREC is not there: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newCluster(t)
	args := []string{"--random-init", "--train", train, "--epochs",
		fmt.Sprint(finetuneResumePasses), "--seed", "3", "--workers", "1", "--threads", "1",
		"--ps", "2"}

	ref := filepath.Join(t.TempDir(), "ref")
	if err := c.start("finetune-ref", append([]string{"finetune", "--out", ref},
		args...)...).wait(t, ctx); err != nil {
		t.Fatalf("uninterrupted finetune failed: %v", err)
	}

	out := filepath.Join(t.TempDir(), "out")
	first := c.start("finetune", append([]string{"finetune", "--out", out}, args...)...)
	for s := range 2 {
		waitShardCheckpoint(t, ctx, filepath.Join(out, ".checkpoints"), s)
	}
	time.Sleep(250 * time.Millisecond) // into a later pass
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	first.done <- errors.New("killed by the test")
	killed := time.Now()
	if _, err := os.Stat(filepath.Join(out, "run.json")); err == nil {
		t.Fatal("the job had finished before the kill; it tests no resume")
	}

	second := c.start("finetune-resumed",
		append([]string{"finetune", "--resume", out}, args...)...)
	if err := second.wait(t, ctx); err != nil {
		t.Fatalf("finetune --resume failed: %v", err)
	}
	end := time.Now()

	run := readFinetuneRun(t, out)
	if len(run.Epochs) != finetuneResumePasses {
		t.Fatalf("run.json has %d passes, want %d", len(run.Epochs), finetuneResumePasses)
	}
	for i, e := range run.Epochs {
		if e.Words != 5452 || e.Chunks != run.Chunks {
			t.Errorf("pass %d: %d examples in %d chunks, want 5452 in %d", i, e.Words,
				e.Chunks, run.Chunks)
		}
	}
	rec := run.Recovery
	if rec.CoordinatorResumes != 1 || rec.ShardRestarts != 2 || len(rec.Events) != 2 {
		t.Errorf("run.json recovery %+v; want one resume and both shards restarted", rec)
	}
	for _, ev := range rec.Events {
		if !ev.Restored || ev.RestoredCheckpoint == 0 ||
			ev.RolledBackTo != ev.RestoredCheckpoint {
			t.Errorf("restart event %+v; want the shard restored and training rolled back "+
				"to its checkpoint", ev)
		}
	}
	for _, dir := range []string{".state", ".checkpoints"} {
		if _, err := os.Stat(filepath.Join(out, dir)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left in the output directory of the finished job (%v)", dir, err)
		}
	}

	want, got := classifyAccuracy(t, ctx, ref, test), classifyAccuracy(t, ctx, out, test)
	t.Logf("figures: TREC test accuracy uninterrupted %.4f, killed and resumed %.4f; "+
		"%d passes x 5452 examples exact; chunks rolled back %d; kill to job end %.1fs",
		want, got, finetuneResumePasses, rec.ChunksRolledBack, end.Sub(killed).Seconds())
	if math.Abs(got-want) > 0.01 {
		t.Errorf("test accuracy %.4f after the resume, %.4f uninterrupted: more than a point "+
			"apart", got, want)
	}
}

// waitShardCheckpoint waits until shard s has written a checkpoint file in dir.
func waitShardCheckpoint(t *testing.T, ctx context.Context, dir string, s int) {
	t.Helper()
	for {
		files, _ := filepath.Glob(filepath.Join(dir, fmt.Sprintf("shard-%d-*.ckpt", s)))
		if len(files) > 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("shard %d wrote no checkpoint before the deadline", s)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// finetuneRun is the part of a fine-tuning job's run.json that TestFinetuneKilledAndResumed
// reads.
type finetuneRun struct {
	Chunks int `json:"chunks"`
	Epochs []struct {
		Words  uint64 `json:"words"`
		Chunks int    `json:"chunks"`
	} `json:"epochs"`
	Recovery struct {
		ShardRestarts      int `json:"shard_restarts"`
		ChunksRolledBack   int `json:"chunks_rolled_back"`
		CoordinatorResumes int `json:"coordinator_resumes"`
		Events             []struct {
			Restored           bool   `json:"restored"`
			RestoredCheckpoint uint64 `json:"restored_checkpoint"`
			RolledBackTo       uint64 `json:"rolled_back_to"`
		} `json:"events"`
	} `json:"recovery"`
}

func readFinetuneRun(t *testing.T, out string) finetuneRun {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(out, "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r finetuneRun
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("run.json: %v", err)
	}
	return r
}

// classifyAccuracy scores the model in dir on the labelled file test with
// `skipgrid eval classify`.
func classifyAccuracy(t *testing.T, ctx context.Context, dir, test string) float64 {
	t.Helper()
	stdout, err := exec.CommandContext(ctx, binary, "eval", "classify", "--model", dir,
		"--test", test, "--json").Output()
	if err != nil {
		t.Fatalf("eval classify %s: %v", dir, err)
	}
	var res struct {
		Report struct {
			Accuracy float64 `json:"accuracy"`
			Examples int     `json:"examples"`
		} `json:"report"`
	}
	if err := json.Unmarshal(stdout, &res); err != nil {
		t.Fatalf("eval classify --json output: %v\n%s", err, stdout)
	}
	if res.Report.Examples != 500 {
		t.Fatalf("scored %d test examples, want TREC's 500", res.Report.Examples)
	}
	return res.Report.Accuracy
}
