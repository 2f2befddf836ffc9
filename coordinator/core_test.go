package coordinator

import (
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/shard"
	"github.com/skipgrid/skipgrid/vocab"
)

// t0 is the fake clock's start; tests give times as offsets from it.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// testLogger routes logs to t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// newTestCore returns a core with 30 s leases, 3 attempts per task, alpha 0.025 and min alpha
// 0.0001, in the counting phase over n chunks of 100 bytes of file c.txt.
func newTestCore(t *testing.T, epochs, n int) *core {
	set := coreSettings{NumPS: 1, Epochs: epochs, LeaseTimeout: 30 * time.Second,
		MaxAttempts: 3, Alpha: 0.025, MinAlpha: 0.0001}
	c := newCore(set, testLogger(t), t0)
	if err := c.registerPS("ps0", 0, "ps0:1"); err != nil {
		t.Fatal(err)
	}
	var chunks []shard.Chunk
	for i := range n {
		chunks = append(chunks, shard.Chunk{ID: i, Path: "c.txt", Start: int64(100 * i),
			End: int64(100 * (i + 1))})
	}
	c.startCounting(chunks, t0)
	return c
}

// toTraining finishes the counting pass of c with vocabulary v and starts training at now.
func toTraining(t *testing.T, c *core, v *vocab.Vocab, now time.Time) {
	t.Helper()
	for range c.Pass.total() {
		r := c.lease("counter", now)
		if r.GetKind() != skipgridpb.TaskKind_TASK_COUNT {
			t.Fatalf("lease = %v, want a count task", r)
		}
		mustComplete(t, c, &skipgridpb.CompleteRequest{Name: "counter", LeaseId: r.GetLeaseId()},
			now, true)
	}
	if !c.passComplete() {
		t.Fatal("counting pass not complete after every chunk was counted")
	}
	c.setVocab(v)
	c.startTraining(now)
}

func mustVocab(t *testing.T, words []string, counts []uint64) *vocab.Vocab {
	t.Helper()
	v, err := vocab.New(words, counts)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustComplete(t *testing.T, c *core, req *skipgridpb.CompleteRequest, now time.Time,
	want bool) {
	t.Helper()
	got, err := c.complete(req, now)
	if err != nil {
		t.Fatalf("complete(lease %d) error: %v", req.GetLeaseId(), err)
	}
	if got != want {
		t.Fatalf("complete(lease %d) accepted = %v, want %v", req.GetLeaseId(), got, want)
	}
}

// leased is what a test checks of a lease: its kind, epoch and chunk.
type leased struct {
	Kind  skipgridpb.TaskKind
	Epoch uint32
	Chunk uint32
}

// leaseFor leases for name and returns what was leased and the lease id.
func leaseFor(c *core, name string, now time.Time) (leased, uint64) {
	r := c.lease(name, now)
	return leased{r.GetKind(), r.GetEpoch(), r.GetChunk().GetId()}, r.GetLeaseId()
}

var (
	kCount = skipgridpb.TaskKind_TASK_COUNT
	kTrain = skipgridpb.TaskKind_TASK_TRAIN
	kWait  = skipgridpb.TaskKind_TASK_WAIT
	kStop  = skipgridpb.TaskKind_TASK_STOP
)

func TestPassOrderWithRetries(t *testing.T) {
	// 2 rounds of 3 chunks: flat tasks 0..5.
	p := newPass(kTrain, 2, 3)
	var got []int
	take := func() {
		i, ok := p.take()
		if !ok {
			i = -1
		}
		got = append(got, i)
	}
	take()       // 0
	take()       // 1
	take()       // 2
	p.release(1) // task 1 comes back ahead of 3
	take()       // 1
	take()       // 3
	p.release(0)
	p.release(2) // both ahead of 4; lowest first
	take()       // 0
	take()       // 2
	take()       // 4
	take()       // 5
	take()       // none
	if diff := cmp.Diff([]int{0, 1, 2, 1, 3, 0, 2, 4, 5, -1}, got); diff != "" {
		t.Errorf("task order (-want +got):\n%s", diff)
	}
	// Tasks 0, 1 and 2 were leased twice each, the rest once.
	if diff := cmp.Diff([]uint16{2, 2, 2, 1, 1, 1}, p.Attempts); diff != "" {
		t.Errorf("attempts (-want +got):\n%s", diff)
	}
}

func TestStartingPhase(t *testing.T) {
	set := coreSettings{NumPS: 2, Epochs: 1, LeaseTimeout: time.Second, MaxAttempts: 1}
	c := newCore(set, testLogger(t), t0)

	want := &skipgridpb.LeaseResponse{Kind: kWait, WaitMs: waitMs}
	if diff := cmp.Diff(want, c.lease("w", t0), protocmp.Transform()); diff != "" {
		t.Errorf("lease while starting (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{0, 1}, c.missingPS()); diff != "" {
		t.Errorf("missing (-want +got):\n%s", diff)
	}

	// Shard 2 of a 2-shard job and an empty address are refused.
	if err := c.registerPS("ps2", 2, "a:1"); !errors.Is(err, errBadRequest) {
		t.Errorf("register shard 2 of 2 = %v, want errBadRequest", err)
	}
	if err := c.registerPS("ps1", 1, ""); !errors.Is(err, errBadRequest) {
		t.Errorf("register without address = %v, want errBadRequest", err)
	}

	for _, err := range []error{c.registerPS("ps1", 1, "b:1"), c.registerPS("ps0", 0, "a:1"),
		c.registerPS("ps0-new", 0, "a:2")} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(c.missingPS()) != 0 {
		t.Errorf("missing = %v after both shards registered", c.missingPS())
	}
	// A re-registration replaces the address.
	if diff := cmp.Diff([]string{"a:2", "b:1"}, c.psAddresses()); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
}

func TestCountingMergesEachChunkOnce(t *testing.T) {
	c := newTestCore(t, 1, 2)

	la, ida := leaseFor(c, "a", t0)
	lb, idb := leaseFor(c, "b", t0)
	lw, _ := leaseFor(c, "a", t0)
	want := []leased{{kCount, 0, 0}, {kCount, 0, 1}, {kWait, 0, 0}}
	if diff := cmp.Diff(want, []leased{la, lb, lw}); diff != "" {
		t.Fatalf("leases (-want +got):\n%s", diff)
	}

	// Chunk 0: x twice, y once, 2 lines.
	reqA := &skipgridpb.CompleteRequest{Name: "a", LeaseId: ida, Words: []string{"x", "y"},
		Counts: []uint64{2, 1}, Lines: 2, EmptyLines: 1, Tokens: 3}
	mustComplete(t, c, reqA, at(time.Second), true)
	// The same result again (a retried RPC) is ignored.
	mustComplete(t, c, reqA, at(2*time.Second), false)
	// a cannot complete b's lease; b's lease stays live.
	reqB := &skipgridpb.CompleteRequest{Name: "b", LeaseId: idb, Words: []string{"x"},
		Counts: []uint64{1}, Lines: 1, SplitLines: 1, Tokens: 1}
	stolen := &skipgridpb.CompleteRequest{Name: "a", LeaseId: idb, Words: []string{"z"},
		Counts: []uint64{100}, Tokens: 100}
	mustComplete(t, c, stolen, at(3*time.Second), false)
	mustComplete(t, c, reqB, at(4*time.Second), true)

	if !c.passComplete() {
		t.Fatal("pass not complete after both chunks")
	}
	// Merged once each: x 2+1, y 1; z never.
	words, counts := c.Counts.Sorted()
	if diff := cmp.Diff([]string{"x", "y"}, words); diff != "" {
		t.Errorf("words (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]uint64{3, 1}, counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	wantCt := counters{LateCompletes: 2, CountChunks: 2, Lines: 3, EmptyLines: 1,
		SplitLines: 1, Tokens: 4}
	if diff := cmp.Diff(wantCt, c.Counters); diff != "" {
		t.Errorf("counters (-want +got):\n%s", diff)
	}
	// The pass is over but training has not started: wait.
	if l, _ := leaseFor(c, "a", at(5*time.Second)); l.Kind != kWait {
		t.Errorf("lease between passes = %v, want wait", l)
	}
}

func TestLeaseExpiryAndHeartbeat(t *testing.T) {
	c := newTestCore(t, 1, 2)
	_, ida := leaseFor(c, "a", t0) // chunk 0, deadline t0+30s
	_, idb := leaseFor(c, "b", t0) // chunk 1, deadline t0+30s

	// a heartbeats at 20 s: its deadline moves to 50 s.
	if ok, _ := c.heartbeat("a", ida, 10, at(20*time.Second)); !ok {
		t.Fatal("heartbeat of a live lease is invalid")
	}
	// Another worker cannot heartbeat a's lease.
	if ok, _ := c.heartbeat("b", ida, 10, at(21*time.Second)); ok {
		t.Error("heartbeat by a worker that does not hold the lease is valid")
	}

	// At exactly 30 s b's lease expires; c's lease gets chunk 1 again.
	l, idc := leaseFor(c, "c", at(30*time.Second))
	if diff := cmp.Diff(leased{kCount, 0, 1}, l); diff != "" {
		t.Errorf("re-lease (-want +got):\n%s", diff)
	}
	if idc == idb {
		t.Errorf("re-lease reused lease id %d", idb)
	}
	if c.Counters.LeasesExpired != 1 {
		t.Errorf("leases expired = %d, want 1", c.Counters.LeasesExpired)
	}
	if ok, _ := c.heartbeat("b", idb, 5, at(31*time.Second)); ok {
		t.Error("heartbeat of an expired lease is valid")
	}
	mustComplete(t, c, &skipgridpb.CompleteRequest{Name: "b", LeaseId: idb}, at(32*time.Second),
		false)

	// a is live until 50 s (exclusive); a heartbeat at 49 s extends it to 79 s.
	if ok, _ := c.heartbeat("a", ida, 20, at(49*time.Second)); !ok {
		t.Fatal("a's lease expired before its extended deadline")
	}
	c.tick(at(79*time.Second - time.Nanosecond))
	if _, ok := c.Leases[ida]; !ok {
		t.Fatal("a's lease expired before 79 s")
	}
	c.tick(at(79 * time.Second))
	if _, ok := c.Leases[ida]; ok {
		t.Fatal("a's lease is live at its deadline")
	}
	// b's, c's (granted at 30 s, expired at 60 s) and a's.
	if c.Counters.LeasesExpired != 3 {
		t.Errorf("leases expired = %d, want 3", c.Counters.LeasesExpired)
	}
}

func TestNodeFailedReleasesAtOnce(t *testing.T) {
	c := newTestCore(t, 1, 3)
	leaseFor(c, "a", t0) // chunk 0
	leaseFor(c, "b", t0) // chunk 1
	leaseFor(c, "b", t0) // chunk 2

	c.nodeFailed("b")
	c.nodeFailed("nobody") // ignored

	// Both of b's chunks are back, in id order, long before any deadline.
	l1, _ := leaseFor(c, "a", at(time.Second))
	l2, _ := leaseFor(c, "a", at(time.Second))
	if diff := cmp.Diff([]leased{{kCount, 0, 1}, {kCount, 0, 2}}, []leased{l1, l2}); diff != "" {
		t.Errorf("leases after node failure (-want +got):\n%s", diff)
	}
	if c.Counters.LeasesReleased != 2 || c.Counters.LeasesExpired != 0 {
		t.Errorf("released %d, expired %d; want 2 and 0", c.Counters.LeasesReleased,
			c.Counters.LeasesExpired)
	}
	if c.Workers["b"].Alive {
		t.Error("b is alive after NodeFailed")
	}
}

func TestTrainingOrderNoBarrier(t *testing.T) {
	c := newTestCore(t, 2, 3)
	toTraining(t, c, mustVocab(t, []string{"x"}, []uint64{3}), t0)

	var got []leased
	add := func(l leased, _ uint64) { got = append(got, l) }
	add(leaseFor(c, "a", t0))
	l, id01 := leaseFor(c, "b", t0)
	add(l, id01)
	add(leaseFor(c, "a", t0))
	// Every epoch 0 chunk is leased: epoch 1 starts before epoch 0 is complete.
	add(leaseFor(c, "a", t0))
	// b dies: its epoch 0 chunk 1 comes back before epoch 1's chunk 1.
	c.nodeFailed("b")
	for range 3 {
		add(leaseFor(c, "a", t0))
	}
	want := []leased{{kTrain, 0, 0}, {kTrain, 0, 1}, {kTrain, 0, 2}, {kTrain, 1, 0},
		{kTrain, 0, 1}, {kTrain, 1, 1}, {kTrain, 1, 2}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lease order (-want +got):\n%s", diff)
	}
	if _, ok := c.Leases[id01]; ok {
		t.Error("the dead worker's lease is still live")
	}
	// Everything is leased: wait.
	if l, _ := leaseFor(c, "a", t0); l.Kind != kWait {
		t.Errorf("lease with every task out = %v, want wait", l)
	}
}

// trainReq is a train result with loss 0.5 per word.
func trainReq(name string, id, words uint64) *skipgridpb.CompleteRequest {
	return &skipgridpb.CompleteRequest{Name: name, LeaseId: id, WordsTrained: words,
		LossSum: 0.5 * float64(words), LossTerms: words, BytesPulled: 100 * words,
		BytesPushed: 10 * words}
}

func TestProgressAndExactEpochs(t *testing.T) {
	// Train words 6+4 = 10 per epoch; 2 epochs plan 20. The test's chunks hold 7 and 3 of
	// them.
	c := newTestCore(t, 2, 2)
	toTraining(t, c, mustVocab(t, []string{"x", "y"}, []uint64{6, 4}), t0)

	ra := c.lease("a", t0)
	rb := c.lease("b", t0)
	if ra.GetWordsPlanned() != 20 || ra.GetWordsDone() != 0 {
		t.Errorf("first lease: done %d planned %d, want 0 and 20", ra.GetWordsDone(),
			ra.GetWordsPlanned())
	}

	// Heartbeats count towards progress: 4 + 2.
	if _, done := c.heartbeat("a", ra.GetLeaseId(), 4, at(time.Second)); done != 4 {
		t.Errorf("words done after a's heartbeat = %d, want 4", done)
	}
	if _, done := c.heartbeat("b", rb.GetLeaseId(), 2, at(time.Second)); done != 6 {
		t.Errorf("words done after b's heartbeat = %d, want 4+2", done)
	}
	// a completes 7 words: accepted 7 plus b's live 2.
	mustComplete(t, c, trainReq("a", ra.GetLeaseId(), 7), at(2*time.Second), true)
	if got := c.wordsDone(); got != 9 {
		t.Errorf("words done = %d, want 7+2", got)
	}
	// b completes 3: epoch 0 sums to 10, exactly the train words.
	mustComplete(t, c, trainReq("b", rb.GetLeaseId(), 3), at(3*time.Second), true)
	if c.Phase != skipgridpb.Phase_PHASE_TRAINING {
		t.Fatalf("phase %v, reason %q; want training", c.Phase, c.FailReason)
	}

	// The next lease is epoch 1, with 10 words done: lr = 0.025 * (1 - 10/20) = 0.0125.
	r := c.lease("a", at(4*time.Second))
	want := &skipgridpb.LeaseResponse{Kind: kTrain, LeaseId: r.GetLeaseId(), Epoch: 1,
		Chunk: &skipgridpb.Chunk{Id: 0, Path: "c.txt", Start: 0, End: 100}, WordsDone: 10,
		WordsPlanned: 20}
	if diff := cmp.Diff(want, r, protocmp.Transform()); diff != "" {
		t.Errorf("epoch 1 lease (-want +got):\n%s", diff)
	}
	if lr := c.learningRate(); math.Abs(lr-0.0125) > 1e-15 {
		t.Errorf("learning rate = %v, want 0.0125", lr)
	}

	wantEpoch := epochStats{Words: 10, LossSum: 5, LossTerms: 10} // 0.5 per word
	if diff := cmp.Diff(wantEpoch, c.Epoch[0]); diff != "" {
		t.Errorf("epoch 0 (-want +got):\n%s", diff)
	}
	if ct := c.Counters; ct.BytesPulled != 1000 || ct.BytesPushed != 100 || ct.TrainChunks != 2 {
		t.Errorf("bytes pulled %d pushed %d chunks %d; want 100*10, 10*10, 2", ct.BytesPulled,
			ct.BytesPushed, ct.TrainChunks)
	}

	// Finish epoch 1 the same way; training is then done and progress is 20 of 20, the
	// learning rate at its floor.
	rb = c.lease("b", at(4*time.Second))
	mustComplete(t, c, trainReq("a", r.GetLeaseId(), 7), at(5*time.Second), true)
	mustComplete(t, c, trainReq("b", rb.GetLeaseId(), 3), at(5*time.Second), true)
	if !c.passComplete() || c.wordsDone() != 20 {
		t.Errorf("complete %v, words done %d; want true and 20", c.passComplete(), c.wordsDone())
	}
	if lr := c.learningRate(); lr != 0.0001 {
		t.Errorf("final learning rate = %v, want the floor 0.0001", lr)
	}
}

func TestEpochSumMismatchFails(t *testing.T) {
	tests := []struct {
		name   string
		words  [2]uint64
		expect []string
	}{
		// 7 + 2 = 9 of 10: found when the epoch closes.
		{"short", [2]uint64{7, 2}, []string{"epoch 0", "accepted train words 9", "expected 10"}},
		// 7 + 4 = 11 of 10: found as soon as the sum passes 10.
		{"over", [2]uint64{7, 4}, []string{"epoch 0", "reached 11", "more than the 10"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCore(t, 2, 2)
			toTraining(t, c, mustVocab(t, []string{"x", "y"}, []uint64{6, 4}), t0)
			ra, rb := c.lease("a", t0), c.lease("b", t0)
			mustComplete(t, c, trainReq("a", ra.GetLeaseId(), tt.words[0]), t0, true)
			c.complete(trainReq("b", rb.GetLeaseId(), tt.words[1]), t0)

			if c.Phase != skipgridpb.Phase_PHASE_FAILED {
				t.Fatalf("phase = %v, want failed", c.Phase)
			}
			for _, s := range tt.expect {
				if !strings.Contains(c.FailReason, s) {
					t.Errorf("reason %q does not mention %q", c.FailReason, s)
				}
			}
			r := c.lease("a", t0)
			if r.GetKind() != kStop || !strings.Contains(r.GetStopReason(), tt.expect[0]) {
				t.Errorf("lease after failure = %v, want stop with the reason", r)
			}
		})
	}
}

func TestFailStopsEverything(t *testing.T) {
	c := newTestCore(t, 1, 2)
	_, id := leaseFor(c, "a", t0)

	c.fail("worker a: loss is NaN at step 7")
	c.fail("a second reason") // the first one wins

	r := c.lease("b", at(time.Second))
	want := &skipgridpb.LeaseResponse{Kind: kStop,
		StopReason: "the job failed: worker a: loss is NaN at step 7"}
	if diff := cmp.Diff(want, r, protocmp.Transform()); diff != "" {
		t.Errorf("lease after fail (-want +got):\n%s", diff)
	}
	if ok, _ := c.heartbeat("a", id, 1, at(time.Second)); ok {
		t.Error("heartbeat valid after the job failed")
	}
	mustComplete(t, c, &skipgridpb.CompleteRequest{Name: "a", LeaseId: id}, at(time.Second),
		false)
}

func TestMaxAttemptsFails(t *testing.T) {
	c := newTestCore(t, 1, 1) // 3 attempts
	now := t0
	for range 3 {
		if l, _ := leaseFor(c, "a", now); l.Kind != kCount {
			t.Fatalf("lease = %v, want the count task", l)
		}
		now = now.Add(30 * time.Second) // never heartbeats
		c.tick(now)
	}
	if c.Phase != skipgridpb.Phase_PHASE_FAILED {
		t.Fatalf("phase = %v after 3 expired attempts, want failed", c.Phase)
	}
	for _, s := range []string{"counting chunk 0", "c.txt", "leased 3 times", "expired"} {
		if !strings.Contains(c.FailReason, s) {
			t.Errorf("reason %q does not mention %q", c.FailReason, s)
		}
	}
}

func TestRejectedCountGoesBack(t *testing.T) {
	tests := []struct {
		name string
		req  *skipgridpb.CompleteRequest
		msg  string
	}{
		{"lengths", &skipgridpb.CompleteRequest{Words: []string{"x", "y"}, Counts: []uint64{1}},
			"2 words but 1 counts"},
		{"space", &skipgridpb.CompleteRequest{Words: []string{"new york"}, Counts: []uint64{1}},
			"word 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCore(t, 1, 2)
			_, id := leaseFor(c, "a", t0)
			tt.req.Name, tt.req.LeaseId = "a", id
			ok, err := c.complete(tt.req, t0)
			if ok || !errors.Is(err, errBadRequest) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("complete = %v, %v; want false and a bad request naming %q", ok, err,
					tt.msg)
			}
			if c.Counts.Len() != 0 || c.Counters.Rejected != 1 {
				t.Errorf("merged %d words, rejected %d; want 0 and 1", c.Counts.Len(),
					c.Counters.Rejected)
			}
			// The chunk is leased again, before chunk 1.
			if l, _ := leaseFor(c, "b", t0); l != (leased{kCount, 0, 0}) {
				t.Errorf("next lease = %v, want chunk 0 again", l)
			}
		})
	}
}

func TestNonFiniteLossFails(t *testing.T) {
	c := newTestCore(t, 1, 1)
	toTraining(t, c, mustVocab(t, []string{"x"}, []uint64{3}), t0)
	r := c.lease("a", t0)
	req := trainReq("a", r.GetLeaseId(), 3)
	req.LossSum = math.Inf(1)
	mustComplete(t, c, req, t0, false)
	if c.Phase != skipgridpb.Phase_PHASE_FAILED || !strings.Contains(c.FailReason, "non-finite") {
		t.Errorf("phase %v reason %q; want failed for a non-finite loss", c.Phase, c.FailReason)
	}
}

func TestGatheringAndDoneStop(t *testing.T) {
	c := newTestCore(t, 1, 1)
	c.startGathering()
	if l, _ := leaseFor(c, "a", t0); l.Kind != kStop {
		t.Errorf("lease while gathering = %v, want stop", l)
	}
	c.finish()
	if l, _ := leaseFor(c, "a", t0); l.Kind != kStop {
		t.Errorf("lease when done = %v, want stop", l)
	}
	c.fail("too late") // a finished job stays done
	if c.Phase != skipgridpb.Phase_PHASE_DONE {
		t.Errorf("phase = %v after fail on a done job, want done", c.Phase)
	}
}

func TestStatus(t *testing.T) {
	// 2 epochs of 10 train words, 2 chunks; training starts at t0.
	c := newTestCore(t, 2, 2)
	toTraining(t, c, mustVocab(t, []string{"x", "y"}, []uint64{6, 4}), t0)
	ra := c.lease("a", t0)
	rb := c.lease("b", t0)
	mustComplete(t, c, trainReq("a", ra.GetLeaseId(), 7), at(5*time.Second), true)
	c.heartbeat("b", rb.GetLeaseId(), 1, at(8*time.Second))

	// At 10 s: words done 7 + 1 = 8 of 20 (0.4), 0.8 words/s, ETA 12/0.8 = 15 s, lr
	// 0.025 * 0.6 = 0.015, last loss 0.5 (epoch 0's 3.5 / 7). b's rate: 1 word in 8 s.
	got := c.status(at(10 * time.Second))
	want := Status{
		Phase: "training", Epoch: 0, Epochs: 2, Chunks: 2, ChunksDone: 1, ChunkTasks: 4,
		VocabSize: 2, WordsDone: 8, WordsPlanned: 20, Fraction: 0.4, WordsPerSec: 0.8,
		ETASeconds: 15, LastLoss: 0.5, LearningRate: 0.015,
		Workers: []WorkerStatus{
			{Name: "a", Alive: true, LastHeartbeat: at(5 * time.Second), Leases: []LeaseStatus{}},
			{Name: "b", Alive: true, LastHeartbeat: at(8 * time.Second), WordsPerSec: 0.125,
				Leases: []LeaseStatus{{ID: rb.GetLeaseId(), Kind: "train", Epoch: 0, Chunk: 1,
					Words: 1}}},
			{Name: "counter", Alive: true, LastHeartbeat: t0, Leases: []LeaseStatus{}},
		},
		PS: []PSStatus{{Shard: 0, Name: "ps0", Address: "ps0:1", Registered: true, Alive: true}},
	}
	approx := cmp.Comparer(func(x, y float64) bool { return math.Abs(x-y) <= 1e-12 })
	if diff := cmp.Diff(want, got, approx); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}
