package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/shard"
	"github.com/skipgrid/skipgrid/vectors"
	"github.com/skipgrid/skipgrid/vocab"
)

// tinyCorpus writes two files of 30 generated lines plus one empty line. Line i (0..29)
// holds alpha; beta when i is even; gamma when i%3 == 0; delta when i%5 == 0; omega on
// line 7 only. Counts: alpha 30, beta 15, gamma 10 (0, 3, ..., 27), delta 6 (0, 5, ...,
// 25), omega 1; 62 tokens on 31 lines, one of them empty.
func tinyCorpus(t *testing.T) []string {
	t.Helper()
	var lines []string
	for i := range 30 {
		words := []string{"alpha"}
		if i%2 == 0 {
			words = append(words, "beta")
		}
		if i%3 == 0 {
			words = append(words, "gamma")
		}
		if i%5 == 0 {
			words = append(words, "delta")
		}
		if i == 7 {
			words = append(words, "omega")
		}
		lines = append(lines, strings.Join(words, " "))
		if i == 9 {
			lines = append(lines, "")
		}
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.txt"), filepath.Join(dir, "b.txt")
	// a.txt: lines 0..9, the empty line, lines 10..14; b.txt: lines 15..29.
	write := func(p string, ls []string) {
		if err := os.WriteFile(p, []byte(strings.Join(ls, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(a, lines[:16])
	write(b, lines[16:])
	return []string{a, b}
}

// e2eConfig trains 3 epochs of dim 4 on 2 shards, min count 2, 40-byte chunks, 10 s leases.
func e2eConfig(t *testing.T, corpus []string) Config {
	cfg := DefaultConfig()
	cfg.JobID = "e2e"
	cfg.Corpus = corpus
	cfg.ChunkBytes = 40
	cfg.OutDir = filepath.Join(t.TempDir(), "out")
	cfg.NumPS = 2
	cfg.Dim = 4
	cfg.Epochs = 3
	cfg.MinCount = 2
	cfg.LeaseTimeout = 10 * time.Second
	cfg.Logger = testLogger(t)
	return cfg
}

// start runs Run in the background; the returned func waits for its result.
func (fc *fakeCluster) start(ctx context.Context) func() (*Result, error) {
	type out struct {
		res *Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := fc.c.Run(ctx)
		done <- out{res, err}
	}()
	return func() (*Result, error) {
		o := <-done
		return o.res, o.err
	}
}

// countThenLease has w count every chunk, then returns its first non-count lease.
func countThenLease(t *testing.T, ctx context.Context, w *fakeWorker) *skipgridpb.LeaseResponse {
	t.Helper()
	for {
		r, err := w.lease(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if r.GetKind() != skipgridpb.TaskKind_TASK_COUNT {
			return r
		}
		if ok, err := w.do(ctx, r); err != nil || !ok {
			t.Fatalf("count lease %d: accepted %v, err %v", r.GetLeaseId(), ok, err)
		}
	}
}

func TestEndToEnd(t *testing.T) {
	corpus := tinyCorpus(t)
	cfg := e2eConfig(t, corpus)
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	fc := newFakeCluster(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	wait := fc.start(ctx)
	fc.registerPS(t)

	// One worker counts everything, then takes epoch 0's chunk 0. Train words 30+15+10+6 =
	// 61 per epoch (omega is under min count 2), 183 for 3 epochs.
	slow := newFakeWorker(t, fc.c, "slow", corpus)
	r := countThenLease(t, ctx, slow)
	if r.GetKind() != kTrain || r.GetEpoch() != 0 || r.GetChunk().GetId() != 0 ||
		r.GetWordsPlanned() != 183 || r.GetWordsDone() != 0 {
		t.Fatalf("first train lease = %v, want epoch 0 chunk 0 of 183 planned words", r)
	}

	// It stalls past its deadline: the lease expires, its heartbeat and result are refused.
	late, err := slow.result(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	fc.clock.Advance(cfg.LeaseTimeout)
	hb, err := fc.c.Heartbeat(ctx, &skipgridpb.HeartbeatRequest{Name: "slow",
		LeaseId: r.GetLeaseId(), Words: 1})
	if err != nil || hb.GetValid() {
		t.Fatalf("heartbeat of an expired lease = %v, %v; want valid=false", hb, err)
	}
	cr, err := fc.c.Complete(ctx, late)
	if err != nil || cr.GetAccepted() {
		t.Fatalf("late complete = %v, %v; want accepted=false", cr, err)
	}

	// The chunk is leased again, under a new lease id, and this time completed.
	r2, err := slow.lease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r2.GetEpoch() != 0 || r2.GetChunk().GetId() != 0 || r2.GetLeaseId() == r.GetLeaseId() {
		t.Fatalf("re-lease = %v, want epoch 0 chunk 0 under a new id", r2)
	}
	if ok, err := slow.do(ctx, r2); err != nil || !ok {
		t.Fatalf("re-leased chunk: accepted %v, err %v", ok, err)
	}

	// Three workers finish the job.
	var g errgroup.Group
	for _, w := range []*fakeWorker{slow, newFakeWorker(t, fc.c, "w1", corpus),
		newFakeWorker(t, fc.c, "w2", corpus)} {
		g.Go(func() error { return w.run(ctx) })
	}
	res, runErr := wait()
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if runErr != nil {
		t.Fatal(runErr)
	}

	checkE2EOutputs(t, cfg, res)
	checkE2EResult(t, cfg, res)
	checkE2EHTTP(t, fc.c, res.Chunks)
}

// checkE2EOutputs checks vocab.txt, vectors.bin and run.json.
func checkE2EOutputs(t *testing.T, cfg Config, res *Result) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(cfg.OutDir, VocabFile))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("alpha 30\nbeta 15\ngamma 10\ndelta 6\n", string(b)); diff != "" {
		t.Errorf("vocab.txt (-want +got):\n%s", diff)
	}

	// Row r is the fake shards' initial value r + j/8: gathering put every row in place.
	v, err := vectors.ReadFile(filepath.Join(cfg.OutDir, VectorsFile),
		vectors.ReadOptions{Format: vectors.FormatBinary})
	if err != nil {
		t.Fatal(err)
	}
	wantVec := &vectors.Vectors{Words: []string{"alpha", "beta", "gamma", "delta"}, Dim: 4,
		Data: []float32{0, 0.125, 0.25, 0.375, 1, 1.125, 1.25, 1.375, 2, 2.125, 2.25, 2.375,
			3, 3.125, 3.25, 3.375}}
	if diff := cmp.Diff(wantVec.Words, v.Words); diff != "" {
		t.Errorf("vector words (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantVec.Data, v.Data); diff != "" || v.Dim != 4 {
		t.Errorf("vectors of dim %d (-want +got):\n%s", v.Dim, diff)
	}

	b, err = os.ReadFile(filepath.Join(cfg.OutDir, RunFile))
	if err != nil {
		t.Fatal(err)
	}
	var fromFile Result
	if err := json.Unmarshal(b, &fromFile); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(res, &fromFile); diff != "" {
		t.Errorf("run.json differs from the returned result (-returned +file):\n%s", diff)
	}
	entries, _ := os.ReadDir(cfg.OutDir)
	if len(entries) != 3 {
		t.Errorf("out dir holds %d entries, want the 3 outputs and no temporary file", len(entries))
	}
}

// checkE2EResult compares the run record with values worked out from the corpus.
func checkE2EResult(t *testing.T, cfg Config, res *Result) {
	t.Helper()
	plan, err := shard.PlanChunks(cfg.Corpus, cfg.ChunkBytes)
	if err != nil {
		t.Fatal(err)
	}
	epoch := func(e int) EpochResult {
		// 61 words, loss 0.25 per word.
		return EpochResult{Epoch: e, Words: 61, Chunks: len(plan), Loss: 0.25,
			LossSum: 15.25, LossTerms: 61}
	}
	want := &Result{
		JobID: "e2e",
		Settings: Settings{Model: "sg", Dim: 4, Window: 5, Negative: 5, Sample: 1e-3,
			Alpha: 0.025, MinAlpha: 0.025 * 1e-4, Epochs: 3, Seed: 1, MinCount: 2,
			Tokenizer: "words", MaxSentenceLen: 10000, BatchWords: 32768, ValueCodec: "float32",
			Compression: "none", ChunkBytes: 40, LeaseTimeoutSeconds: 10},
		Corpus: cfg.Corpus, NumPS: 2, VocabSize: 4, TrainWords: 61, Chunks: len(plan),
		// The fake clock moved only once, by 10 s, during training: 183 words in 10 s.
		PhaseSeconds:     PhaseSeconds{Training: 10, Total: 10},
		TrainWordsPerSec: 18.3,
		Epochs:           []EpochResult{epoch(0), epoch(1), epoch(2)},
		Retries:          Retries{LeasesExpired: 1, LateCompletes: 1},
		// 8 bytes pulled and 4 pushed per trained word, 183 words.
		Traffic: Traffic{BytesPulled: 1464, BytesPushed: 732, PulledPerTrainedWord: 8,
			PushedPerTrainedWord: 4, GatherBytes: res.Traffic.GatherBytes},
		Reader: ReaderStats{Lines: 31, EmptyLines: 1, Tokens: 62},
		// A checkpoint after each epoch, one for several when epochs end between two looks
		// of Run: 1 to 3, checked below; no shard restarted.
		Recovery: Recovery{Checkpoints: res.Recovery.Checkpoints,
			LastCheckpoint: uint64(res.Recovery.Checkpoints), Events: []RecoveryEvent{}},
	}
	if n := res.Recovery.Checkpoints; n < 1 || n > 3 {
		t.Errorf("%d checkpoints asked for; want one per epoch end, 1 to 3", n)
	}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	// At least the 4 rows x 4 float32 values came back.
	if res.Traffic.GatherBytes < 64 {
		t.Errorf("gather bytes = %d, want at least 64", res.Traffic.GatherBytes)
	}
	if len(plan) < 4 {
		t.Errorf("the corpus gave %d chunks; the test wants several", len(plan))
	}
}

// checkE2EHTTP checks /status and /metrics after the job.
func checkE2EHTTP(t *testing.T, c *Coordinator, chunks int) {
	t.Helper()
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	get := func(path string) string {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		return string(b)
	}

	var st Status
	if err := json.Unmarshal([]byte(get("/status")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Phase != "done" || st.WordsDone != 183 || st.Fraction != 1 || st.Epoch != 2 ||
		len(st.Workers) != 3 || len(st.PS) != 2 || st.PS[1].Address != psAddr(1) {
		t.Errorf("status = %+v; want done, 183 words, fraction 1, epoch 2, 3 workers, 2 shards",
			st)
	}

	metrics := get("/metrics")
	for _, line := range []string{
		"skipgrid_coordinator_words_trained_total 183",
		`skipgrid_coordinator_chunks_completed_total{kind="count"} ` + strconv.Itoa(chunks),
		`skipgrid_coordinator_chunks_completed_total{kind="train"} ` + strconv.Itoa(3*chunks),
		"skipgrid_coordinator_leases_expired_total 1",
		"skipgrid_coordinator_progress_ratio 1",
		"skipgrid_coordinator_loss 0.25",
		"skipgrid_coordinator_learning_rate 2.5e-06",
	} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("metrics lack %q:\n%s", line, metrics)
		}
	}
}

// noOutputs checks that the job wrote nothing.
func noOutputs(t *testing.T, cfg Config) {
	t.Helper()
	if _, err := os.Stat(cfg.OutDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("out dir %s exists (err %v); a failed job must write nothing", cfg.OutDir, err)
	}
}

func TestFailWritesNothing(t *testing.T) {
	corpus := tinyCorpus(t)
	cfg := e2eConfig(t, corpus)
	fc := newFakeCluster(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	wait := fc.start(ctx)
	fc.registerPS(t)

	w := newFakeWorker(t, fc.c, "w", corpus)
	r := countThenLease(t, ctx, w)
	const reason = "loss is NaN at epoch 0 step 3 (learning rate 1000)"
	if _, err := fc.c.Fail(ctx, &skipgridpb.FailRequest{Name: "w", LeaseId: r.GetLeaseId(),
		Reason: reason}); err != nil {
		t.Fatal(err)
	}

	res, err := wait()
	if !errors.Is(err, ErrJobFailed) || !strings.Contains(err.Error(), reason) {
		t.Fatalf("Run = %v, %v; want ErrJobFailed holding the reason", res, err)
	}
	noOutputs(t, cfg)
	after, _ := fc.c.Lease(ctx, &skipgridpb.LeaseRequest{Name: "w"})
	if after.GetKind() != kStop || !strings.Contains(after.GetStopReason(), reason) {
		t.Errorf("lease after the failure = %v, want stop with the reason", after)
	}
	if st := fc.c.Status(); st.Phase != "failed" || !strings.Contains(st.Error, reason) {
		t.Errorf("status phase %q error %q; want failed with the reason", st.Phase, st.Error)
	}
}

func TestNonFiniteRowWritesNothing(t *testing.T) {
	corpus := tinyCorpus(t)
	cfg := e2eConfig(t, corpus)
	cfg.Epochs = 1
	fc := newFakeCluster(t, cfg)
	for _, p := range fc.ps {
		p.nan = map[uint32]bool{2: true} // gamma's row, on whichever shard owns it
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	wait := fc.start(ctx)
	fc.registerPS(t)
	w := newFakeWorker(t, fc.c, "w", corpus)
	if err := w.run(ctx); err != nil {
		t.Fatal(err)
	}

	_, err := wait()
	if err == nil || !strings.Contains(err.Error(), `row 2 (word "gamma") value 0 is NaN`) {
		t.Fatalf("Run error = %v; want one naming gamma's NaN row", err)
	}
	noOutputs(t, cfg)
}

// Case 15: ten distinct words, each once; min count 5 leaves nothing. The job fails before
// any shard is configured.
func TestEmptyVocabularyConfiguresNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "15.txt")
	if err := os.WriteFile(path, []byte("one two three four five six seven eight nine ten\n"),
		0o644); err != nil {
		t.Fatal(err)
	}
	cfg := e2eConfig(t, []string{path})
	cfg.MinCount = 5
	fc := newFakeCluster(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	wait := fc.start(ctx)
	fc.registerPS(t)
	if err := newFakeWorker(t, fc.c, "w", []string{path}).run(ctx); err != nil {
		t.Fatal(err)
	}

	_, err := wait()
	if !errors.Is(err, vocab.ErrEmpty) {
		t.Fatalf("Run error = %v, want vocab.ErrEmpty", err)
	}
	for _, s := range []string{"10 distinct words", "highest count is 1", "--min-count"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	for i, p := range fc.ps {
		if p.configures != 0 {
			t.Errorf("shard %d configured %d times, want 0", i, p.configures)
		}
	}
	noOutputs(t, cfg)
}

func TestStartTimeoutNamesMissingShards(t *testing.T) {
	cfg := e2eConfig(t, tinyCorpus(t))
	cfg.NumPS = 3
	fc := newFakeCluster(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	wait := fc.start(ctx)
	if _, err := fc.c.Register(ctx, &skipgridpb.RegisterRequest{Role: skipgridpb.Role_ROLE_PS,
		Name: "ps1", Shard: 1, Address: psAddr(1)}); err != nil {
		t.Fatal(err)
	}
	// Advance the clock only once Run has taken its start time.
	for started := false; !started; time.Sleep(time.Millisecond) {
		fc.c.mu.Lock()
		started = !fc.c.mu.times.Start.IsZero()
		fc.c.mu.Unlock()
	}
	fc.clock.Advance(cfg.StartTimeout + time.Second)

	_, err := wait()
	if err == nil || !strings.Contains(err.Error(),
		"shard 0 (replica 0), shard 2 (replica 0) missing (3 shards x 1 copies)") {
		t.Fatalf("Run error = %v; want one naming shards 0 and 2", err)
	}
	if _, err := fc.c.Run(ctx); err == nil {
		t.Error("a second Run succeeded")
	}
}

func TestGetVocabBeforeBuild(t *testing.T) {
	fc := newFakeCluster(t, e2eConfig(t, tinyCorpus(t)))
	_, err := fc.c.GetVocab(context.Background(), &skipgridpb.GetVocabRequest{Name: "w"})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("GetVocab before the vocabulary = %v, want FailedPrecondition", err)
	}
	spec, err := fc.c.GetJob(context.Background(), &skipgridpb.GetJobRequest{Name: "w"})
	if err != nil {
		t.Fatal(err)
	}
	if spec.GetPhase() != skipgridpb.Phase_PHASE_STARTING || len(spec.GetPsAddresses()) != 2 ||
		spec.GetVocabSize() != 0 || spec.GetLeaseMs() != 10000 || spec.GetDim() != 4 {
		t.Errorf("job spec = %v; want starting, 2 empty addresses, no vocabulary, 10000 ms "+
			"leases, dim 4", spec)
	}
}
