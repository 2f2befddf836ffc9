package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// readState reads the saved state of cfg's job.
func readState(t *testing.T, cfg Config) (*savedState, error) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(cfg.stateDir(), StateFile))
	if err != nil {
		return nil, err
	}
	var st savedState
	return &st, json.Unmarshal(raw, &st)
}

// TestResumeAfterStop trains a two-epoch job until epoch 0 and two chunks of epoch 1 are
// accepted and a third chunk is leased, stops the coordinator, and starts another on the same
// output directory: it resumes with that progress and the live lease (whose result it
// accepts), and finishes with every chunk counted once per epoch.
func TestResumeAfterStop(t *testing.T) {
	corpus := tinyCorpus(t)
	cfg := e2eConfig(t, corpus)
	cfg.Epochs = 2
	cfg.Resume = true
	fc, shards := newCkptCluster(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	wait := fc.start(runCtx)
	fc.registerPS(t)
	w := newFakeWorker(t, fc.c, "w", corpus)

	r := countThenLease(t, ctx, w)
	var chunks int
	inCore(fc.c, func(co *core) { chunks = len(co.Chunks) })
	for i := range chunks + 3 {
		if i > 0 {
			var err error
			if r, err = w.lease(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if i == chunks+2 {
			break // r stays leased
		}
		if ok, err := w.do(ctx, r); !ok || err != nil {
			t.Fatalf("task %d: accepted %v, %v", i, ok, err)
		}
	}
	live := r.GetLeaseId()
	waitFor(t, "the state to hold the progress", func() bool {
		inCore(fc.c, func(*core) {}) // wake Run, which saves
		st, err := readState(t, cfg)
		return err == nil && st.Pass != nil && st.Pass.DoneTotal == chunks+2 &&
			st.Leases[live] != nil
	})
	saved, _ := readState(t, cfg)
	stop()
	if _, err := wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("stopped Run: %v, want context.Canceled", err)
	}

	fc2, _ := newCkptCluster(t, cfg, shards...)
	inCore(fc2.c, func(co *core) {
		if co.Phase != skipgridpb.Phase_PHASE_TRAINING || co.Pass.DoneTotal != chunks+2 ||
			co.Leases[live] == nil || co.NextLease != saved.NextLease+leaseIDGap ||
			co.Durable.Recovery.CoordinatorResumes != 1 ||
			co.Counters.AcceptedWords != co.Epoch[0].Words+co.Epoch[1].Words {
			t.Errorf("resumed core: phase %v, done %d (want %d), live lease %v, next lease %d "+
				"(saved %d), resumes %d", co.Phase, co.Pass.DoneTotal, chunks+2,
				co.Leases[live] != nil, co.NextLease, saved.NextLease,
				co.Durable.Recovery.CoordinatorResumes)
		}
	})
	wait2 := fc2.start(ctx)
	w.c = fc2.c
	if ok, err := w.do(ctx, r); !ok || err != nil {
		t.Errorf("the lease live at the stop: accepted %v, %v; want accepted", ok, err)
	}
	if err := w.run(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := wait2()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range res.Epochs {
		if e.Words != res.TrainWords || e.Chunks != chunks {
			t.Errorf("epoch %d: %d words in %d chunks, want %d in %d", e.Epoch, e.Words,
				e.Chunks, res.TrainWords, chunks)
		}
	}
	if res.Recovery.CoordinatorResumes != 1 || res.Recovery.ShardRestarts != 0 {
		t.Errorf("recovery %+v; want 1 resume, no shard restart", res.Recovery)
	}
	if _, err := os.Stat(cfg.stateDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state dir of the finished job: %v; want it removed", err)
	}
}

// TestResumeOtherJob: a saved state of the job with 2 epochs does not resume a job with 3,
// and the error names the setting; without Resume the state is replaced.
func TestResumeOtherJob(t *testing.T) {
	corpus := tinyCorpus(t)
	cfg := e2eConfig(t, corpus)
	cfg.Epochs = 2
	cfg.Resume = true
	fc, _ := newCkptCluster(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	wait := fc.start(runCtx)
	fc.registerPS(t)
	countThenLease(t, ctx, newFakeWorker(t, fc.c, "w", corpus))
	waitFor(t, "a saved state with the vocabulary", func() bool {
		inCore(fc.c, func(*core) {})
		st, err := readState(t, cfg)
		return err == nil && st.HasVocab
	})
	stop()
	_, _ = wait()

	other := cfg
	other.Epochs = 3
	_, err := New(other, fc.c.dial)
	if !errors.Is(err, ErrStateMismatch) || !strings.Contains(err.Error(),
		"settings.epochs (saved 2, now 3)") {
		t.Errorf("New with 3 epochs over a 2-epoch state: %v", err)
	}
	// Without Resume the stopped job is not thrown away: New refuses, naming the remedies,
	// and starts a new job once the state is removed.
	other.Resume = false
	_, err = New(other, fc.c.dial)
	if err == nil || !strings.Contains(err.Error(), "holds a stopped job") ||
		!strings.Contains(err.Error(), "saved in phase training") ||
		!strings.Contains(err.Error(), "--resume "+cfg.OutDir) {
		t.Errorf("New without Resume over a stopped job: %v, want a refusal", err)
	}
	if err := os.RemoveAll(cfg.stateDir()); err != nil {
		t.Fatal(err)
	}
	c, err := New(other, fc.c.dial)
	if err != nil {
		t.Fatal(err)
	}
	if c.mu.core.Phase != skipgridpb.Phase_PHASE_STARTING || c.st.resumed != nil {
		t.Errorf("without Resume the job starts in %v", c.mu.core.Phase)
	}
}

// TestResumeOtherFinetuneJob: a fine-tuning job's identity holds its own settings, so a
// saved state of the job with no bigrams does not resume a job with 5 bigram buckets, and a
// pretraining job's state does not resume a fine-tuning job.
func TestResumeOtherFinetuneJob(t *testing.T) {
	cfg := ftConfig(t)
	cfg.Resume = true
	c, err := New(cfg, newFakeCluster(t, cfg).c.dial)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.saveState(true); err != nil {
		t.Fatal(err)
	}

	other := cfg
	other.Finetune.BigramBuckets = 5
	_, err = New(other, c.dial)
	if !errors.Is(err, ErrStateMismatch) || !strings.Contains(err.Error(),
		"finetune.bigram_buckets (saved 0, now 5)") {
		t.Errorf("New with 5 bigram buckets over a state without: %v", err)
	}
	pre := e2eConfig(t, tinyCorpus(t))
	pre.OutDir, pre.JobID, pre.Resume = cfg.OutDir, cfg.JobID, true
	_, err = New(pre, c.dial)
	if !errors.Is(err, ErrStateMismatch) || !strings.Contains(err.Error(),
		"finetune.train_file") {
		t.Errorf("a pretraining job over a fine-tuning state: %v", err)
	}
}
