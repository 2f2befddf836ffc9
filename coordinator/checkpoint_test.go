package coordinator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// trainTask leases the next task for w and completes it with words words and loss 0.5 per
// word; it returns the task's (epoch, chunk).
func trainTask(t *testing.T, c *core, w string, words uint64, now time.Time) leased {
	t.Helper()
	got, id := leaseFor(c, w, now)
	if got.Kind != kTrain {
		t.Fatalf("lease = %+v, want a train task", got)
	}
	mustComplete(t, c, &skipgridpb.CompleteRequest{Name: w, LeaseId: id, WordsTrained: words,
		LossSum: 0.5 * float64(words), LossTerms: words}, now, true)
	return got
}

// TestRollbackKeepsExactAccounting: two epochs of three chunks of 10 words (30 train words).
// Epoch 0 is done at checkpoint 1; then epoch 1's chunk 0 is accepted and chunk 1 leased. A
// rollback to checkpoint 1 returns both to the pool, takes chunk 0's words and loss out of
// epoch 1 and drops the lease; retraining them closes epoch 1 with exactly 30 words.
func TestRollbackKeepsExactAccounting(t *testing.T) {
	c := newTestCore(t, 2, 3)
	toTraining(t, c, mustVocab(t, []string{"a", "b"}, []uint64{20, 10}), t0)
	for range 3 {
		trainTask(t, c, "w", 10, t0)
	}
	if !c.checkpointDue(0, t0) {
		t.Fatal("no checkpoint due after epoch 0 closed")
	}
	rec := c.beginCheckpoint(t0)
	if c.checkpointDue(0, t0) {
		t.Fatal("a checkpoint is still due right after one")
	}
	trainTask(t, c, "w", 10, t0)
	_, live := leaseFor(c, "w", t0)

	chunks, leases := c.rollback(rec.Done)
	if chunks != 1 || leases != 1 {
		t.Errorf("rollback returned %d chunks, %d leases; want 1, 1", chunks, leases)
	}
	// Epoch 0 keeps 3 chunks of 10 words at 0.5 each: 30 words, loss sum 15.
	wantEpochs := []epochStats{{Words: 30, LossSum: 15, LossTerms: 30}, {}}
	if diff := cmp.Diff(wantEpochs, c.Epoch); diff != "" {
		t.Errorf("epochs after rollback (-want +got):\n%s", diff)
	}
	if c.Counters.AcceptedWords != 30 {
		t.Errorf("accepted words %d, want 30", c.Counters.AcceptedWords)
	}
	// Tasks 3 (epoch 1 chunk 0, done) and 4 (chunk 1, leased) are pending again.
	if diff := cmp.Diff([]int{3, 4}, c.Pass.Retry); diff != "" {
		t.Errorf("retry list (-want +got):\n%s", diff)
	}
	if valid, _ := c.heartbeat("w", live, 5, t0); valid {
		t.Error("the dropped lease is still valid")
	}

	var order []leased
	for range 3 {
		order = append(order, trainTask(t, c, "w", 10, t0))
	}
	wantOrder := []leased{{kTrain, 1, 0}, {kTrain, 1, 1}, {kTrain, 1, 2}}
	if diff := cmp.Diff(wantOrder, order); diff != "" {
		t.Errorf("tasks after rollback (-want +got):\n%s", diff)
	}
	if c.Phase == skipgridpb.Phase_PHASE_FAILED || !c.passComplete() ||
		c.Epoch[1].Words != 30 || c.Pass.DoneInRound[1] != 3 {
		t.Errorf("after retraining: phase %v (%s), epoch 1 %+v, done %v", c.Phase,
			c.FailReason, c.Epoch[1], c.Pass.DoneInRound)
	}
}

// TestRecoverFrom checks the event a restart records: the estimate comes from the last
// poll, training goes back to the newest record at or before the restored checkpoint (to
// the start when the shard came back empty), and the recovery time runs from the first
// failed call.
func TestRecoverFrom(t *testing.T) {
	for _, tc := range []struct {
		name           string
		restored       bool
		ckpt           uint64
		wantTo         uint64
		wantChunks     int
		wantEpoch0Done int
	}{
		// Checkpoint 1 covered epoch 0 (3 tasks); 1 task of epoch 1 came after it.
		{"restored checkpoint 1", true, 1, 1, 1, 3},
		// A checkpoint id the coordinator never recorded above 1 uses record 1.
		{"restored unknown newer id", true, 7, 1, 1, 3},
		{"came back empty", false, 0, 0, 4, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCore(t, 2, 3)
			toTraining(t, c, mustVocab(t, []string{"a", "b"}, []uint64{20, 10}), t0)
			for range 3 {
				trainTask(t, c, "w", 10, t0)
			}
			c.beginCheckpoint(at(time.Second))
			trainTask(t, c, "w", 10, t0)
			w := c.watch(0)
			*w = shardWatch{Incarnation: 5, LastAt: at(10 * time.Second), LastCheckpoint: 1,
				LastRowsSince: 77, LastPushesSince: 4, FailingSince: at(11 * time.Second)}

			st := &skipgridpb.StatsResponse{Incarnation: 6, CheckpointId: tc.ckpt,
				Restored: tc.restored}
			cr := &skipgridpb.ConfigureResponse{Restored: tc.restored, CheckpointId: tc.ckpt}
			ev := c.recoverFrom(0, st, cr, at(14*time.Second))
			want := RecoveryEvent{Shard: 0, At: at(14 * time.Second), Restored: tc.restored,
				RestoredCheckpoint: tc.ckpt, RolledBackTo: tc.wantTo,
				ChunksRolledBack: tc.wantChunks, UpdatesLostEstimate: 77, PushesLostEstimate: 4,
				LastPolled: at(10 * time.Second), EstimateSince: 1,
				DownSince: at(11 * time.Second), RecoverySeconds: 3}
			if diff := cmp.Diff(want, ev); diff != "" {
				t.Errorf("event (-want +got):\n%s", diff)
			}
			if c.Pass.DoneInRound[0] != tc.wantEpoch0Done || c.watch(0).Incarnation != 6 {
				t.Errorf("epoch 0 done %d (want %d), incarnation %d (want 6)",
					c.Pass.DoneInRound[0], tc.wantEpoch0Done, c.watch(0).Incarnation)
			}
			r := c.Durable.Recovery
			if r.ShardRestarts != 1 || r.UpdatesLostEstimate != 77 ||
				r.ChunksRolledBack != tc.wantChunks {
				t.Errorf("recovery totals %+v", r)
			}
		})
	}
}

// TestEndCheckpointPrunes: a shard keeps its newest two files, so records older than the
// second newest it wrote are dropped.
func TestEndCheckpointPrunes(t *testing.T) {
	c := newTestCore(t, 2, 3)
	toTraining(t, c, mustVocab(t, []string{"a"}, []uint64{30}), t0)
	ids := func() []uint64 {
		var out []uint64
		for _, r := range c.Durable.Checkpoints {
			out = append(out, r.ID)
		}
		return out
	}
	for range 4 {
		rec := c.beginCheckpoint(t0)
		c.endCheckpoint(rec.ID, []bool{true})
	}
	if diff := cmp.Diff([]uint64{3, 4}, ids()); diff != "" {
		t.Errorf("records after 4 written checkpoints (-want +got):\n%s", diff)
	}
	// Checkpoint 5 fails on the shard: it still holds 3 and 4.
	rec := c.beginCheckpoint(t0)
	c.endCheckpoint(rec.ID, []bool{false})
	if diff := cmp.Diff([]uint64{3, 4, 5}, ids()); diff != "" {
		t.Errorf("records after a failed checkpoint (-want +got):\n%s", diff)
	}
	if got := c.Durable.recordAtOrBefore(2); got != nil {
		t.Errorf("record at or before 2 = %v, want none", got)
	}
}

// TestCheckpointDueEvery: with an interval, a checkpoint is due that long after the last,
// and not once every task is done.
func TestCheckpointDueEvery(t *testing.T) {
	c := newTestCore(t, 2, 3)
	toTraining(t, c, mustVocab(t, []string{"a"}, []uint64{30}), t0)
	if c.checkpointDue(time.Minute, at(59*time.Second)) ||
		!c.checkpointDue(time.Minute, at(time.Minute)) || c.checkpointDue(0, at(time.Hour)) {
		t.Error("interval checkpoints due at the wrong times (from the training start)")
	}
	c.beginCheckpoint(at(time.Minute))
	if c.checkpointDue(time.Minute, at(90*time.Second)) {
		t.Error("a checkpoint is due 30 s after the last with a 1 min interval")
	}
}

// ckptPS is a fake shard that keeps checkpoints and stats: it can be "restarted" with a new
// incarnation, restored from a checkpoint.
type ckptPS struct {
	*fakePS

	mu          sync.Mutex
	inc         uint64
	restored    bool
	restoredID  uint64
	rowsSince   uint64
	pushesSince uint64
	checkpoints []uint64
	// down makes every Stats answer Unavailable.
	down bool
}

func (p *ckptPS) Stats(context.Context, *skipgridpb.StatsRequest,
	...grpc.CallOption) (*skipgridpb.StatsResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return nil, status.Error(codes.Unavailable, "connection refused")
	}
	return &skipgridpb.StatsResponse{Shard: uint32(p.shard), Incarnation: p.inc,
		Restored: p.restored, CheckpointId: p.restoredID, RowsPushedSinceCheckpoint: p.rowsSince,
		PushesSinceCheckpoint: p.pushesSince}, nil
}

func (p *ckptPS) Checkpoint(_ context.Context, req *skipgridpb.CheckpointRequest,
	_ ...grpc.CallOption) (*skipgridpb.CheckpointResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.checkpoints = append(p.checkpoints, req.GetCheckpointId())
	return &skipgridpb.CheckpointResponse{CheckpointId: req.GetCheckpointId(), Bytes: 100}, nil
}

func (p *ckptPS) Configure(ctx context.Context, req *skipgridpb.ConfigureRequest,
	opts ...grpc.CallOption) (*skipgridpb.ConfigureResponse, error) {
	resp, err := p.fakePS.Configure(ctx, req, opts...)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	resp.Restored, resp.CheckpointId = p.restored, p.restoredID
	return resp, nil
}

func (p *ckptPS) wrote(id uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Contains(p.checkpoints, id)
}

// newCkptCluster is newFakeCluster with shards that keep checkpoints and stats: the given
// ones, or new ones (incarnation 100 + shard) when shards is nil.
func newCkptCluster(t *testing.T, cfg Config, shards ...*ckptPS) (*fakeCluster, []*ckptPS) {
	t.Helper()
	if shards == nil {
		for s := range cfg.NumPS {
			shards = append(shards, &ckptPS{fakePS: &fakePS{shard: s}, inc: uint64(100 + s)})
		}
	}
	var fakes []*fakePS
	var clients []skipgridpb.ParameterServerClient
	for _, p := range shards {
		fakes, clients = append(fakes, p.fakePS), append(clients, p)
	}
	fc := newClusterOn(t, cfg, fakes, clients)
	return fc, shards
}

// waitFor polls cond until it holds, failing the test after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// inCore runs f on the coordinator's core under its lock, waking Run.
func inCore(c *Coordinator, f func(co *core)) {
	c.locked(func(co *core, _ time.Time) { f(co) })
}

// TestShardRestartRollsBack runs a two-epoch job on checkpointing fake shards. After epoch 0
// the coordinator takes checkpoint 1; the last poll of shard 1 says 77 rows were pushed since;
// two chunks of epoch 1 are trained; then shard 1 restarts from checkpoint 1. Training goes
// back to checkpoint 1 (those two chunks are trained again), the job finishes with every
// chunk counted once per epoch, and run.json's recovery records the restart.
func TestShardRestartRollsBack(t *testing.T) {
	corpus := tinyCorpus(t)
	cfg := e2eConfig(t, corpus)
	cfg.Epochs = 2
	fc, shards := newCkptCluster(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	wait := fc.start(ctx)
	fc.registerPS(t)
	w := newFakeWorker(t, fc.c, "w", corpus)

	r := countThenLease(t, ctx, w)
	var chunks int
	inCore(fc.c, func(co *core) { chunks = len(co.Chunks) })
	for i := range chunks + 2 {
		if i > 0 {
			var err error
			if r, err = w.lease(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if ok, err := w.do(ctx, r); !ok || err != nil {
			t.Fatalf("task %d: accepted %v, %v", i, ok, err)
		}
		if i == chunks-1 {
			waitFor(t, "checkpoint 1", func() bool { return shards[1].wrote(1) })
			shards[1].mu.Lock()
			shards[1].rowsSince, shards[1].pushesSince = 77, 3
			shards[1].mu.Unlock()
			fc.clock.Advance(2 * time.Second)
			waitFor(t, "a poll of shard 1", func() bool {
				var got uint64
				inCore(fc.c, func(co *core) { got = co.watch(1).LastRowsSince })
				return got == 77
			})
		}
	}

	// Shard 1 restarts, restored from checkpoint 1, and registers again.
	shards[1].mu.Lock()
	shards[1].inc, shards[1].restored, shards[1].restoredID, shards[1].rowsSince = 201, true, 1, 0
	shards[1].mu.Unlock()
	fc.registerPS(t)
	waitFor(t, "the rollback", func() bool {
		var n int
		inCore(fc.c, func(co *core) { n = co.Durable.Recovery.ShardRestarts })
		return n == 1
	})
	if err := w.run(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := wait()
	if err != nil {
		t.Fatal(err)
	}

	for _, e := range res.Epochs {
		if e.Words != res.TrainWords || e.Chunks != chunks {
			t.Errorf("epoch %d: %d words in %d chunks, want %d in %d", e.Epoch, e.Words,
				e.Chunks, res.TrainWords, chunks)
		}
	}
	rec := res.Recovery
	if rec.ShardRestarts != 1 || rec.ChunksRolledBack != 2 || rec.UpdatesLostEstimate != 77 ||
		len(rec.Events) != 1 {
		t.Fatalf("recovery %+v; want 1 restart, 2 chunks rolled back, 77 updates lost", rec)
	}
	ev := rec.Events[0]
	if ev.Shard != 1 || !ev.Restored || ev.RestoredCheckpoint != 1 || ev.RolledBackTo != 1 ||
		ev.PushesLostEstimate != 3 {
		t.Errorf("event %+v", ev)
	}
	// Checkpoint 1 closed epoch 0, checkpoint 2 the last epoch; the rollback reopened
	// nothing closed, so there are exactly two.
	if rec.Checkpoints != 2 || !shards[0].wrote(2) {
		t.Errorf("checkpoints: %d asked, shard 0 wrote %v; want 2", rec.Checkpoints,
			shards[0].checkpoints)
	}
}

// TestShardDownFailsJob: a shard that stops answering fails the job once it has been silent
// for ShardDownTimeout, naming the shard and the rows it owns. The job's state is kept, in
// training, and a coordinator started again resumes it with a fresh timeout.
func TestShardDownFailsJob(t *testing.T) {
	corpus := tinyCorpus(t)
	cfg := e2eConfig(t, corpus)
	cfg.ShardDownTimeout = 30 * time.Second
	fc, shards := newCkptCluster(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	wait := fc.start(ctx)
	fc.registerPS(t)
	countThenLease(t, ctx, newFakeWorker(t, fc.c, "w", corpus))

	shards[0].mu.Lock()
	shards[0].down = true
	shards[0].mu.Unlock()
	fc.clock.Advance(2 * time.Second)
	waitFor(t, "the first failed poll", func() bool {
		var since time.Time
		inCore(fc.c, func(co *core) { since = co.watch(0).FailingSince })
		return !since.IsZero()
	})
	fc.clock.Advance(31 * time.Second)
	inCore(fc.c, func(*core) {})

	_, err := wait()
	if !errors.Is(err, ErrJobFailed) || !errors.Is(err, ErrShardDown) {
		t.Fatalf("Run error = %v, want ErrJobFailed and ErrShardDown", err)
	}
	var rows int
	inCore(fc.c, func(co *core) { rows = len(co.Vocab.Words) })
	for _, want := range []string{"PS shard 0 at ps0:7000", "has not answered for 31s",
		fmt.Sprintf("of %d rows", rows)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	st, err := readState(t, cfg)
	if err != nil || st.Phase != skipgridpb.Phase_PHASE_TRAINING {
		t.Fatalf("state after the shard-down failure: %v, %v; want it kept in training",
			st, err)
	}
	cfg.Resume = true
	fc2, _ := newCkptCluster(t, cfg, shards...)
	inCore(fc2.c, func(co *core) {
		if co.Phase != skipgridpb.Phase_PHASE_TRAINING || !co.watch(0).FailingSince.IsZero() {
			t.Errorf("resumed: phase %v, shard 0 failing since %v; want training, not "+
				"failing", co.Phase, co.watch(0).FailingSince)
		}
	})
}
