package coordinator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/skipgrid/skipgrid/classify"
	"github.com/skipgrid/skipgrid/proto/payload"
	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/shard"
)

// ftTables is one incarnation's tables: row values by table and global row id.
type ftTables map[skipgridpb.Table]map[uint32][]float32

func (t ftTables) clone() ftTables {
	out := ftTables{}
	for id, rows := range t {
		out[id] = map[uint32][]float32{}
		for r, v := range rows {
			out[id][r] = append([]float32(nil), v...)
		}
	}
	return out
}

// ftPS is a fake PS shard of a fine-tuning job: it builds the tables a Configure asks for
// (zero rows), adds pushes, answers pulls of any table, keeps a copy of its tables per
// checkpoint, and can restart empty or from one of them. Its counters survive restarts.
type ftPS struct {
	shard int

	mu       sync.Mutex
	inc      uint64
	req      *skipgridpb.ConfigureRequest // nil: no job
	tables   ftTables
	restored uint64 // the checkpoint restored at the start of this incarnation, or 0
	ckpts    map[uint64]ftTables
	ckptReqs map[uint64]*skipgridpb.ConfigureRequest
	// configures holds every Configure asked; loads counts the coordinator's pushes.
	configures []*skipgridpb.ConfigureRequest
	loads      int
	pushes     uint64
	// hold, when set, runs once before a Stats answer is returned (see holdNextStats).
	hold func()
}

func newFtPS(s int) *ftPS {
	return &ftPS{shard: s, inc: uint64(100 + s), ckpts: map[uint64]ftTables{},
		ckptReqs: map[uint64]*skipgridpb.ConfigureRequest{}}
}

func (p *ftPS) Configure(_ context.Context, req *skipgridpb.ConfigureRequest,
	_ ...grpc.CallOption) (*skipgridpb.ConfigureResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.configures = append(p.configures, proto.Clone(req).(*skipgridpb.ConfigureRequest))
	if p.req != nil {
		if !proto.Equal(p.req, req) {
			return nil, status.Error(codes.FailedPrecondition, "another job's configuration")
		}
	} else {
		p.req, p.tables = proto.Clone(req).(*skipgridpb.ConfigureRequest), ftTables{}
		for _, spec := range req.GetTables() {
			rows := req.GetRows()
			if spec.GetRows() != 0 {
				rows = spec.GetRows()
			}
			m, err := shard.NewMap(rows, int(req.GetNumShards()))
			if err != nil {
				return nil, err
			}
			p.tables[spec.GetTable()] = map[uint32][]float32{}
			for _, id := range m.ShardRows(p.shard) {
				p.tables[spec.GetTable()][id] = make([]float32, req.GetDim())
			}
		}
	}
	return &skipgridpb.ConfigureResponse{
		LocalRows: uint64(len(p.tables[skipgridpb.Table_TABLE_INPUT])),
		Restored:  p.restored != 0, CheckpointId: p.restored}, nil
}

func (p *ftPS) Pull(_ context.Context, req *skipgridpb.PullRequest,
	_ ...grpc.CallOption) (*skipgridpb.PullResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.req == nil {
		return nil, status.Error(codes.Unavailable, "not configured")
	}
	var resp skipgridpb.PullResponse
	for _, k := range req.GetKeys() {
		var blk payload.Block
		if err := payload.Decode(k.GetPayload(), payload.DefaultLimits(), &blk); err != nil {
			return nil, err
		}
		var values []float32
		for _, id := range blk.IDs {
			row, ok := p.tables[k.GetTable()][id]
			if !ok {
				return nil, fmt.Errorf("fake PS %d holds no %v row %d", p.shard, k.GetTable(), id)
			}
			values = append(values, row...)
		}
		b, err := payload.Encode(nil, nil, int(p.req.GetDim()), values, payload.Options{})
		if err != nil {
			return nil, err
		}
		resp.Rows = append(resp.Rows, &skipgridpb.Rows{Table: k.GetTable(), Payload: b})
	}
	return &resp, nil
}

func (p *ftPS) Push(_ context.Context, req *skipgridpb.PushRequest,
	_ ...grpc.CallOption) (*skipgridpb.PushResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.req == nil {
		return nil, status.Error(codes.Unavailable, "not configured")
	}
	for _, r := range req.GetRows() {
		var blk payload.Block
		if err := payload.Decode(r.GetPayload(), payload.DefaultLimits(), &blk); err != nil {
			return nil, err
		}
		for i, id := range blk.IDs {
			row, ok := p.tables[r.GetTable()][id]
			if !ok {
				return nil, fmt.Errorf("fake PS %d holds no %v row %d", p.shard, r.GetTable(), id)
			}
			for j, v := range blk.Row(i) {
				row[j] += v
			}
		}
	}
	p.pushes++
	if req.GetSender() == senderName {
		p.loads++
	}
	return &skipgridpb.PushResponse{}, nil
}

func (p *ftPS) Stats(context.Context, *skipgridpb.StatsRequest,
	...grpc.CallOption) (*skipgridpb.StatsResponse, error) {
	p.mu.Lock()
	resp := &skipgridpb.StatsResponse{Shard: uint32(p.shard), Incarnation: p.inc,
		Restored: p.restored != 0, CheckpointId: p.restored, Pushes: p.pushes}
	if p.req != nil {
		resp.Dim = p.req.GetDim()
		resp.LocalRows = uint64(len(p.tables[skipgridpb.Table_TABLE_INPUT]))
	}
	hold := p.hold
	p.hold = nil
	p.mu.Unlock()

	if hold != nil {
		hold()
	}
	return resp, nil
}

// holdNextStats makes the next Stats call answer as the shard is now, but only once hold
// returns: the answer of a call still in flight when the shard restarts.
func (p *ftPS) holdNextStats(hold func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hold = hold
}

func (p *ftPS) Checkpoint(_ context.Context, req *skipgridpb.CheckpointRequest,
	_ ...grpc.CallOption) (*skipgridpb.CheckpointResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ckpts[req.GetCheckpointId()] = p.tables.clone()
	p.ckptReqs[req.GetCheckpointId()] = p.req
	return &skipgridpb.CheckpointResponse{CheckpointId: req.GetCheckpointId(), Bytes: 100}, nil
}

func (p *ftPS) SetBackups(context.Context, *skipgridpb.SetBackupsRequest,
	...grpc.CallOption) (*skipgridpb.SetBackupsResponse, error) {
	return nil, status.Error(codes.Unimplemented, "fake PS forwards to no backups")
}

// wrote reports whether the shard holds checkpoint id.
func (p *ftPS) wrote(id uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ckpts[id] != nil
}

// restart gives the shard a new incarnation holding checkpoint id, or nothing for 0.
func (p *ftPS) restart(id uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inc += 100
	p.restored, p.req, p.tables = id, nil, nil
	if id != 0 {
		p.req, p.tables = p.ckptReqs[id], p.ckpts[id].clone()
	}
}

// counts returns the Configure requests and the coordinator's pushes so far.
func (p *ftPS) counts() ([]*skipgridpb.ConfigureRequest, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*skipgridpb.ConfigureRequest(nil), p.configures...), p.loads
}

// ftExamples is the labelled file of the fine-tuning tests: 12 lines, labels a, b, c.
const ftExamples = "__label__a red apple\n__label__b blue sky\n__label__c green grass\n" +
	"__label__a red cherry\n__label__b blue sea\n__label__c green leaf\n" +
	"__label__a red rose\n__label__b blue ink\n__label__c green frog\n" +
	"__label__a ripe red apple\n__label__b deep blue sea\n__label__c fresh green grass\n"

// ftConfig is a fine-tuning job of the 12 examples from random rows: 2 passes of 4 chunks
// of 3 examples, dim 4, 2 shards, alpha 0.1.
func ftConfig(t *testing.T) Config {
	t.Helper()
	dir := t.TempDir()
	train := filepath.Join(dir, "train.txt")
	if err := os.WriteFile(train, []byte(ftExamples), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.JobID = "ft"
	cfg.Kind = skipgridpb.JobKind_JOB_KIND_FINETUNE
	cfg.Finetune.TrainFile = train
	cfg.Finetune.ChunkExamples = 3
	cfg.OutDir = filepath.Join(dir, "out")
	cfg.NumPS, cfg.Dim, cfg.Epochs, cfg.Alpha = 2, 4, 2, 0.1
	cfg.LeaseTimeout = 10 * time.Second
	cfg.Logger = testLogger(t)
	return cfg
}

// newFtCluster is a coordinator of cfg on the given fake shards, with a fake clock.
func newFtCluster(t *testing.T, cfg Config, shards []*ftPS) *fakeCluster {
	t.Helper()
	var fakes []*fakePS
	var clients []skipgridpb.ParameterServerClient
	for s, p := range shards {
		fakes = append(fakes, &fakePS{shard: s}) // for registerPS only
		clients = append(clients, p)
	}
	return newClusterOn(t, cfg, fakes, clients)
}

// ftWorker trains a fine-tuning lease by reporting its examples, with loss 0.5 each.
type ftWorker struct {
	name string
	c    *Coordinator
}

func newFtWorker(t *testing.T, c *Coordinator) *ftWorker {
	t.Helper()
	_, err := c.Register(context.Background(), &skipgridpb.RegisterRequest{
		Role: skipgridpb.Role_ROLE_WORKER, Name: "w"})
	if err != nil {
		t.Fatal(err)
	}
	return &ftWorker{name: "w", c: c}
}

// next leases the next task that is not TASK_WAIT.
func (w *ftWorker) next(ctx context.Context) (*skipgridpb.LeaseResponse, error) {
	for {
		r, err := w.c.Lease(ctx, &skipgridpb.LeaseRequest{Name: w.name})
		if err != nil || r.GetKind() != skipgridpb.TaskKind_TASK_WAIT {
			return r, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// train leases and completes n tasks, failing the test on a task not accepted.
func (w *ftWorker) train(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	for range n {
		r, err := w.next(ctx)
		if err != nil || r.GetKind() != skipgridpb.TaskKind_TASK_TRAIN {
			t.Fatalf("lease %v, %v; want a train task", r, err)
		}
		if ok, err := w.complete(ctx, r); !ok || err != nil {
			t.Fatalf("lease %d: accepted %v, %v", r.GetLeaseId(), ok, err)
		}
	}
}

func (w *ftWorker) complete(ctx context.Context, r *skipgridpb.LeaseResponse) (bool, error) {
	n := uint64(r.GetChunk().GetEnd() - r.GetChunk().GetStart())
	resp, err := w.c.Complete(ctx, &skipgridpb.CompleteRequest{Name: w.name,
		LeaseId: r.GetLeaseId(), WordsTrained: n, LossSum: 0.5 * float64(n), LossTerms: n})
	return resp.GetAccepted(), err
}

// run trains until TASK_STOP.
func (w *ftWorker) run(ctx context.Context) error {
	for {
		r, err := w.next(ctx)
		if err != nil {
			return err
		}
		if r.GetKind() == skipgridpb.TaskKind_TASK_STOP {
			return nil
		}
		if _, err := w.complete(ctx, r); err != nil {
			return err
		}
	}
}

// checkFtResult checks a finished 2-pass job of the 12 examples: every pass holds exactly
// the 12 examples in 4 chunks, and the model holds the initial rows (the fake worker pushes
// nothing), so a shard loaded twice or not at all shows.
func checkFtResult(t *testing.T, cfg Config, res *Result) {
	t.Helper()
	if res.TrainWords != 12 || res.Chunks != 4 || len(res.Epochs) != 2 {
		t.Fatalf("result: %d examples, %d chunks, %d passes; want 12, 4, 2", res.TrainWords,
			res.Chunks, len(res.Epochs))
	}
	for _, e := range res.Epochs {
		if e.Words != 12 || e.Chunks != 4 || e.LossSum != 6 || e.LossTerms != 12 {
			t.Errorf("pass %d: %d examples in %d chunks, loss sum %v over %d; want 12 in 4, "+
				"6 over 12", e.Epoch, e.Words, e.Chunks, e.LossSum, e.LossTerms)
		}
	}

	m, err := classify.Load(cfg.OutDir)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]float32, cfg.Dim)
	rows := m.Vectors.Len() + len(m.Bigrams)/cfg.Dim + 1
	for r := range rows {
		var got []float32
		switch {
		case r < m.Vectors.Len():
			got = m.Vectors.Row(r)
		case r == rows-1:
			got = m.EOS
		default:
			got = m.Bigrams[(r-m.Vectors.Len())*cfg.Dim:][:cfg.Dim]
		}
		classify.InitRow(cfg.Seed, uint32(r), want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("input row %d is not its initial value (-want +got):\n%s", r, diff)
		}
	}
	if diff := cmp.Diff(make([]float32, 3*cfg.Dim), m.Classifier); diff != "" {
		t.Errorf("classifier rows (-want +got):\n%s", diff)
	}
}

// TestFinetuneShardRestartRollsBack runs a 2-pass fine-tuning job on fake shards. After pass
// 0 (checkpoint 1) and two chunks of pass 1, shard 1 restarts: from checkpoint 1, or empty.
// Training goes back to what the shard holds, the restarted shard is configured with the
// fine-tuning tables again and gets its initial rows again only when it came back empty,
// and the job finishes with every chunk counted once per pass. In the last case a Stats call
// to shard 1 is in flight while it restarts and registers again: its answer, of the old
// incarnation, cannot stand for the look that the registration asks for, and the
// coordinator must ask again to find the restart.
func TestFinetuneShardRestartRollsBack(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ckpt     uint64
		back     int // tasks rolled back
		loads    int // the coordinator's pushes to shard 1 (one page each load)
		backToID uint64
		held     bool // a Stats call to shard 1 is in flight across the restart
	}{
		{"restored from checkpoint 1", 1, 2, 1, 1, false},
		{"came back empty", 0, 6, 2, 0, false},
		{"came back empty during a Stats call", 0, 6, 2, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ftConfig(t)
			cfg.StatsEvery = time.Hour // only the watch of training calls Stats after the start
			shards := []*ftPS{newFtPS(0), newFtPS(1)}
			fc := newFtCluster(t, cfg, shards)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			wait := fc.start(ctx)
			fc.registerPS(t)
			w := newFtWorker(t, fc.c)

			w.train(t, ctx, 4)
			waitFor(t, "checkpoint 1", func() bool {
				return shards[0].wrote(1) && shards[1].wrote(1)
			})
			w.train(t, ctx, 2)
			release := make(chan struct{})
			if tc.held {
				holdStats(t, fc, shards[1], release)
			}
			shards[1].restart(tc.ckpt)
			fc.registerPS(t)
			close(release)
			waitFor(t, "the rollback", func() bool {
				var n int
				var failed string
				inCore(fc.c, func(co *core) {
					n, failed = co.Durable.Recovery.ShardRestarts, co.FailReason
				})
				if failed != "" {
					t.Fatalf("the job failed: %s", failed)
				}
				return n == 1
			})
			if err := w.run(ctx); err != nil {
				t.Fatal(err)
			}
			res, err := wait()
			if err != nil {
				t.Fatal(err)
			}

			checkFtResult(t, cfg, res)
			rec := res.Recovery
			if rec.ShardRestarts != 1 || rec.ChunksRolledBack != tc.back || len(rec.Events) != 1 {
				t.Fatalf("recovery %+v; want 1 restart, %d chunks rolled back", rec, tc.back)
			}
			if ev := rec.Events[0]; ev.Shard != 1 || ev.Restored != (tc.ckpt != 0) ||
				ev.RolledBackTo != tc.backToID || ev.LeasesDropped != 0 {
				t.Errorf("event %+v; want shard 1 rolled back to checkpoint %d", ev, tc.backToID)
			}
			reqs, loads := shards[1].counts()
			if len(reqs) != 2 || loads != tc.loads {
				t.Fatalf("shard 1: %d configures, %d loading pushes; want 2 and %d", len(reqs),
					loads, tc.loads)
			}
			want := &skipgridpb.ConfigureRequest{JobId: "ft", Shard: 1, NumShards: 2,
				Rows: reqs[0].GetRows(), Dim: 4, Seed: cfg.Seed,
				Tables: []*skipgridpb.TableSpec{
					{Table: skipgridpb.Table_TABLE_INPUT, Init: skipgridpb.Init_INIT_ZERO},
					{Table: skipgridpb.Table_TABLE_CLASSIFIER, Init: skipgridpb.Init_INIT_ZERO,
						Rows: 3},
				}}
			for i, r := range reqs {
				if diff := cmp.Diff(want, r, protocmp.Transform()); diff != "" {
					t.Errorf("configure %d of shard 1 (-want +got):\n%s", i, diff)
				}
			}
			if _, l0 := shards[0].counts(); l0 != 1 || res.Finetune.LoadBytes == 0 {
				t.Errorf("shard 0 got %d loading pushes (want 1), load bytes %d",
					l0, res.Finetune.LoadBytes)
			}
		})
	}
}

// holdStats has the shards register again, which asks the coordinator for a look at each,
// and returns once shard p's Stats call is in flight; its answer, made now, is returned when
// release is closed.
func holdStats(t *testing.T, fc *fakeCluster, p *ftPS, release <-chan struct{}) {
	t.Helper()
	asked := make(chan struct{})
	p.holdNextStats(func() {
		close(asked)
		<-release
	})
	fc.registerPS(t)
	select {
	case <-asked:
	case <-time.After(20 * time.Second):
		t.Fatal("no Stats call to the shard after it registered again")
	}
}

// TestFinetuneResumeAfterStop stops a fine-tuning coordinator after pass 0 and two chunks of
// pass 1, and starts another on the same output directory and the same (live) shards: it
// resumes at 18 of 24 examples, so at learning rate 0.1 x (1 - 18/24) = 0.025, waits to
// lease until the shards are back, loads no rows into shards that hold them, and finishes
// with every chunk counted once per pass.
func TestFinetuneResumeAfterStop(t *testing.T) {
	cfg := ftConfig(t)
	cfg.Resume = true
	shards := []*ftPS{newFtPS(0), newFtPS(1)}
	fc := newFtCluster(t, cfg, shards)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	wait := fc.start(runCtx)
	fc.registerPS(t)
	w := newFtWorker(t, fc.c)
	w.train(t, ctx, 6)
	waitFor(t, "the state to hold the progress", func() bool {
		inCore(fc.c, func(*core) {}) // wake Run, which saves
		st, err := readState(t, cfg)
		return err == nil && st.Pass != nil && st.Pass.DoneTotal == 6
	})
	stop()
	if _, err := wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("stopped Run: %v, want context.Canceled", err)
	}
	st, err := readState(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	wantTask := &savedTask{Passes: 2, Words: 15, Labels: []string{"a", "b", "c"}}
	if diff := cmp.Diff(wantTask, st.Task); diff != "" || !st.HasVocab ||
		st.TrainWords != 12 {
		t.Errorf("saved task (-want +got):\n%s; has vocab %v, train words %d", diff,
			st.HasVocab, st.TrainWords)
	}

	fc2 := newFtCluster(t, cfg, shards)
	inCore(fc2.c, func(co *core) {
		if co.Phase != skipgridpb.Phase_PHASE_STARTING || !co.Finetune || co.set.Epochs != 2 ||
			co.TrainWords != 12 || co.Pass.DoneTotal != 6 || co.learningRate() != 0.025 ||
			co.Durable.Recovery.CoordinatorResumes != 1 {
			t.Errorf("resumed core: phase %v, finetune %v, passes %d, examples %d, done %d, "+
				"learning rate %v, resumes %d; want starting, true, 2, 12, 6, 0.025, 1",
				co.Phase, co.Finetune, co.set.Epochs, co.TrainWords, co.Pass.DoneTotal,
				co.learningRate(), co.Durable.Recovery.CoordinatorResumes)
		}
	})
	if err := fc2.c.saveState(true); err != nil {
		t.Fatal(err)
	}
	if st, err := readState(t, cfg); err != nil || !st.HasVocab || st.Task == nil ||
		st.Pass == nil || st.Pass.DoneTotal != 6 {
		t.Errorf("state saved by the resumed coordinator before Run: %v; want the task and "+
			"the pass with 6 tasks done", err)
	}
	if r, err := fc2.c.Lease(ctx, &skipgridpb.LeaseRequest{Name: "w"}); err != nil ||
		r.GetKind() != skipgridpb.TaskKind_TASK_WAIT {
		t.Errorf("lease before the resumed job has its shards: %v, %v; want TASK_WAIT", r, err)
	}

	wait2 := fc2.start(ctx)
	w.c = fc2.c
	r, err := w.next(ctx)
	if err != nil || r.GetWordsDone() != 18 || r.GetWordsPlanned() != 24 || r.GetEpoch() != 1 {
		t.Fatalf("first lease after the resume: %v, %v; want pass 1 at 18 of 24 examples", r,
			err)
	}
	if _, err := w.complete(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := w.run(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := wait2()
	if err != nil {
		t.Fatal(err)
	}
	checkFtResult(t, cfg, res)
	if res.Recovery.CoordinatorResumes != 1 || res.Recovery.ShardRestarts != 0 ||
		res.Finetune.LoadBytes != 0 {
		t.Errorf("recovery %+v, load bytes %d; want 1 resume, no restart, nothing loaded",
			res.Recovery, res.Finetune.LoadBytes)
	}
	for s, p := range shards {
		if _, loads := p.counts(); loads != 1 {
			t.Errorf("shard %d got %d loading pushes; want 1, before the stop", s, loads)
		}
	}
	if _, err := os.Stat(cfg.stateDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state dir of the finished job: %v; want it removed", err)
	}
}

// TestFinetuneResumeChangedFile: a stopped fine-tuning job does not resume once its labelled
// file has another example; the error names the difference and the state is kept.
func TestFinetuneResumeChangedFile(t *testing.T) {
	cfg := ftConfig(t)
	cfg.Resume = true
	shards := []*ftPS{newFtPS(0), newFtPS(1)}
	fc := newFtCluster(t, cfg, shards)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	wait := fc.start(runCtx)
	fc.registerPS(t)
	newFtWorker(t, fc.c).train(t, ctx, 1)
	waitFor(t, "a saved training pass", func() bool {
		inCore(fc.c, func(*core) {})
		st, err := readState(t, cfg)
		return err == nil && st.Pass != nil && st.Pass.DoneTotal == 1
	})
	stop()
	_, _ = wait()

	more := ftExamples + "__label__a red wine\n"
	if err := os.WriteFile(cfg.Finetune.TrainFile, []byte(more), 0o644); err != nil {
		t.Fatal(err)
	}
	fc2 := newFtCluster(t, cfg, shards)
	_, err := fc2.c.Run(ctx)
	if !errors.Is(err, ErrStateMismatch) || !strings.Contains(err.Error(),
		"examples (saved 12, now 13)") {
		t.Errorf("Run over a changed file: %v; want ErrStateMismatch naming the examples", err)
	}
	if st, err := readState(t, cfg); err != nil || st.Pass.DoneTotal != 1 {
		t.Errorf("state after the refused resume: %v; want it kept", err)
	}
}

// TestNeedsRows: which shards get their initial rows after a Configure.
func TestNeedsRows(t *testing.T) {
	held := &skipgridpb.StatsResponse{Dim: 4, LocalRows: 8}
	for _, tc := range []struct {
		name    string
		before  *skipgridpb.StatsResponse
		cr      *skipgridpb.ConfigureResponse
		resumed bool
		want    bool
		err     string
	}{
		{"no job before", &skipgridpb.StatsResponse{}, &skipgridpb.ConfigureResponse{}, false,
			true, ""},
		{"keeps no stats", nil, &skipgridpb.ConfigureResponse{}, true, true, ""},
		{"restored", held, &skipgridpb.ConfigureResponse{Restored: true}, false, false, ""},
		{"held by a resumed job", held, &skipgridpb.ConfigureResponse{}, true, false, ""},
		{"held by an unknown run", held, &skipgridpb.ConfigureResponse{}, false, false,
			"PS shard 1 at ps1:7000 already holds this job's rows"},
	} {
		got, err := needsRows(1, "ps1:7000", tc.before, tc.cr, tc.resumed)
		if got != tc.want || (err == nil) != (tc.err == "") ||
			(err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: needsRows = %v, %v; want %v, %q", tc.name, got, err, tc.want, tc.err)
		}
	}
}

// TestFinetuneResumeAfterShardRestart stops a fine-tuning coordinator after pass 0
// (checkpoint 1) and two chunks of pass 1; while it is down, shard 1 restarts from
// checkpoint 1. The resumed coordinator finds the new incarnation, rolls the two chunks back,
// saves a state that still holds the task and the pass, pushes no rows, and finishes with
// every chunk counted once per pass.
func TestFinetuneResumeAfterShardRestart(t *testing.T) {
	cfg := ftConfig(t)
	cfg.Resume = true
	shards := []*ftPS{newFtPS(0), newFtPS(1)}
	fc := newFtCluster(t, cfg, shards)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	wait := fc.start(runCtx)
	fc.registerPS(t)
	w := newFtWorker(t, fc.c)
	w.train(t, ctx, 4)
	waitFor(t, "checkpoint 1", func() bool { return shards[0].wrote(1) && shards[1].wrote(1) })
	w.train(t, ctx, 2)
	waitFor(t, "the state to hold the progress", func() bool {
		inCore(fc.c, func(*core) {})
		st, err := readState(t, cfg)
		return err == nil && st.Pass != nil && st.Pass.DoneTotal == 6
	})
	stop()
	_, _ = wait()
	shards[1].restart(1)

	fc2 := newFtCluster(t, cfg, shards)
	wait2 := fc2.start(ctx)
	var st *savedState
	waitFor(t, "a saved state of the rollback", func() bool {
		var err error
		st, err = readState(t, cfg)
		return err == nil && st.Durable.Recovery.ShardRestarts == 1
	})
	if !st.HasVocab || st.Task == nil || st.Pass == nil || st.Pass.DoneTotal != 4 {
		t.Fatalf("state saved after the rollback: has vocab %v, task %v, pass %+v; want the "+
			"task and 4 tasks done", st.HasVocab, st.Task, st.Pass)
	}
	w.c = fc2.c
	if err := w.run(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := wait2()
	if err != nil {
		t.Fatal(err)
	}
	checkFtResult(t, cfg, res)
	rec := res.Recovery
	if rec.CoordinatorResumes != 1 || rec.ShardRestarts != 1 || rec.ChunksRolledBack != 2 ||
		res.Finetune.LoadBytes != 0 {
		t.Errorf("recovery %+v, load bytes %d; want 1 resume, 1 restart, 2 chunks rolled "+
			"back, nothing loaded", rec, res.Finetune.LoadBytes)
	}
	if _, loads := shards[1].counts(); loads != 1 {
		t.Errorf("shard 1 got %d loading pushes; want 1, before the stop", loads)
	}
}
