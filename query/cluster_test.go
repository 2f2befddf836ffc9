package query

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/grpc"

	"github.com/skipgrid/skipgrid/proto/payload"
	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/ps"
	"github.com/skipgrid/skipgrid/rpc"
	"github.com/skipgrid/skipgrid/shard"
)

const (
	clusterJob  = "job-q"
	clusterRows = 300
	clusterDim  = 8
	clusterSeed = 11
)

var quiet = slog.New(slog.DiscardHandler)

// fakeCoordinator answers GetJob and GetVocab for a job whose phase the
// test sets.
type fakeCoordinator struct {
	skipgridpb.UnimplementedCoordinatorServer
	mu    sync.Mutex
	phase skipgridpb.Phase
	addrs []string
	words []string
}

func (c *fakeCoordinator) setPhase(p skipgridpb.Phase) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.phase = p
}

func (c *fakeCoordinator) GetJob(context.Context, *skipgridpb.GetJobRequest) (
	*skipgridpb.JobSpec, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	spec := &skipgridpb.JobSpec{JobId: clusterJob, Phase: c.phase, Dim: clusterDim,
		PsAddresses: c.addrs}
	if c.phase >= skipgridpb.Phase_PHASE_TRAINING {
		spec.VocabSize = uint64(len(c.words))
	}
	return spec, nil
}

func (c *fakeCoordinator) GetVocab(context.Context, *skipgridpb.GetVocabRequest) (
	*skipgridpb.Vocab, error) {
	return &skipgridpb.Vocab{Words: c.words}, nil
}

// testCluster is a fake coordinator and two real PS shards, configured with
// the input table initialised uniformly (ps.InitRow).
type testCluster struct {
	coord  *fakeCoordinator
	shards []*ps.Server
	m      *shard.Map
}

func newTestCluster(t *testing.T) *testCluster {
	t.Helper()
	tc := &testCluster{coord: &fakeCoordinator{phase: skipgridpb.Phase_PHASE_COUNTING,
		addrs: []string{"ps-0:1", "ps-1:1"}}}
	for i := range clusterRows {
		tc.coord.words = append(tc.coord.words, fmt.Sprintf("w%d", i))
	}
	for s := range 2 {
		cfg := ps.DefaultConfig()
		cfg.Shard, cfg.Name, cfg.Logger = s, fmt.Sprintf("ps-%d", s), quiet
		srv, err := ps.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = srv.Configure(context.Background(), &skipgridpb.ConfigureRequest{
			JobId: clusterJob, Shard: uint32(s), NumShards: 2, Rows: clusterRows,
			Dim: clusterDim, Seed: clusterSeed,
			Tables: []*skipgridpb.TableSpec{{Table: skipgridpb.Table_TABLE_INPUT,
				Init: skipgridpb.Init_INIT_UNIFORM}},
		})
		if err != nil {
			t.Fatal(err)
		}
		tc.shards = append(tc.shards, srv)
	}
	m, err := shard.NewMap(clusterRows, 2)
	if err != nil {
		t.Fatal(err)
	}
	tc.m = m
	return tc
}

// source returns a ClusterSource over the cluster, with small pages so that
// each shard takes several pulls.
func (tc *testCluster) source(t *testing.T) *ClusterSource {
	t.Helper()
	cfg := DefaultClusterConfig()
	cfg.Coordinator = rpc.InMemCoordinator{Server: tc.coord}
	cfg.Dial = func(_ context.Context, addr string) (skipgridpb.ParameterServerClient, error) {
		for i, a := range tc.coord.addrs {
			if a == addr {
				return rpc.InMemPS{Server: tc.shards[i]}, nil
			}
		}
		return nil, fmt.Errorf("no shard at %s", addr)
	}
	cfg.PageRows = 64
	cfg.Logger = quiet
	src, err := NewClusterSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// set pushes the delta that makes row's input vector equal to want.
func (tc *testCluster) set(t *testing.T, row uint32, want []float32) {
	t.Helper()
	cur := make([]float32, clusterDim)
	ps.InitRow(clusterSeed, skipgridpb.Table_TABLE_INPUT, row, cur)
	delta := make([]float32, clusterDim)
	for j := range delta {
		delta[j] = want[j] - cur[j]
	}
	b, err := payload.Encode(nil, []uint32{row}, clusterDim, delta, payload.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tc.shards[tc.m.Shard(row)].Push(context.Background(), &skipgridpb.PushRequest{
		Sender: "test", JobId: clusterJob,
		Rows: []*skipgridpb.Rows{{Table: skipgridpb.Table_TABLE_INPUT, Payload: b}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestClusterSourceNotReady(t *testing.T) {
	tc := newTestCluster(t)
	src := tc.source(t)
	_, err := src.Load(context.Background())
	if !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "COUNTING") {
		t.Errorf("Load while counting: %v; want ErrNotReady naming the phase", err)
	}

	tc.coord.setPhase(skipgridpb.Phase_PHASE_FAILED)
	if _, err := src.Load(context.Background()); err == nil || errors.Is(err, ErrNotReady) {
		t.Errorf("Load of a failed job: %v; want an error that is not ErrNotReady", err)
	}
}

// TestClusterSourceLoads checks that every row comes back as the shards
// initialised it (ps.InitRow, computed here independently of any pull), and
// that a refresh after a push shows the pushed vector.
func TestClusterSourceLoads(t *testing.T) {
	tc := newTestCluster(t)
	tc.coord.setPhase(skipgridpb.Phase_PHASE_TRAINING)
	live := NewLive(tc.source(t), quiet)
	if err := live.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	x, err := live.Index()
	if err != nil {
		t.Fatal(err)
	}
	if x.Len() != clusterRows || x.Dim() != clusterDim {
		t.Fatalf("index of %d rows of dim %d, want %d of %d", x.Len(), x.Dim(), clusterRows,
			clusterDim)
	}
	want := make([]float32, clusterDim)
	for r := range clusterRows {
		ps.InitRow(clusterSeed, skipgridpb.Table_TABLE_INPUT, uint32(r), want)
		if diff := cmp.Diff(want, x.Vector(nil, r), cmpopts.EquateApprox(1e-6, 0)); diff != "" {
			t.Fatalf("row %d (-init +loaded):\n%s", r, diff)
		}
		if x.Word(r) != fmt.Sprintf("w%d", r) {
			t.Fatalf("word %d is %q", r, x.Word(r))
		}
	}

	// Training moves w3 to 10 times w5 (rows on whichever shards own them):
	// w5's nearest word becomes w3, at cosine 1.
	w5 := make([]float32, clusterDim)
	ps.InitRow(clusterSeed, skipgridpb.Table_TABLE_INPUT, 5, w5)
	for j := range w5 {
		w5[j] *= 10
	}
	tc.set(t, 3, w5)
	if err := live.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	x2, _ := live.Index()
	got, err := x2.Neighbors("w5", 1, MetricCosine)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Neighbor{{"w3", 1}}, got, approx); diff != "" {
		t.Errorf("after the push (-want +got):\n%s", diff)
	}
	if n, _ := live.Loads(); n != 2 {
		t.Errorf("Loads() = %d, want 2", n)
	}
	// The earlier index is unchanged: w3 is still its initial vector there.
	ps.InitRow(clusterSeed, skipgridpb.Table_TABLE_INPUT, 3, want)
	if diff := cmp.Diff(want, x.Vector(nil, 3), cmpopts.EquateApprox(1e-6, 0)); diff != "" {
		t.Errorf("the earlier index changed after the refresh (-init +now):\n%s", diff)
	}
}

// nanPS answers every pull with rows whose first value is NaN.
type nanPS struct {
	skipgridpb.ParameterServerClient
	dim int
}

func (p nanPS) Pull(_ context.Context, req *skipgridpb.PullRequest, _ ...grpc.CallOption) (
	*skipgridpb.PullResponse, error) {
	var blk payload.Block
	lim := payload.DefaultLimits()
	if err := payload.Decode(req.GetKeys()[0].GetPayload(), lim, &blk); err != nil {
		return nil, err
	}
	vals := make([]float32, blk.N*p.dim)
	vals[0] = float32(math.NaN())
	b, err := payload.Encode(nil, nil, p.dim, vals, payload.Options{})
	if err != nil {
		return nil, err
	}
	return &skipgridpb.PullResponse{Rows: []*skipgridpb.Rows{
		{Table: skipgridpb.Table_TABLE_INPUT, Payload: b}}}, nil
}

func TestClusterSourceRefusesNaN(t *testing.T) {
	tc := newTestCluster(t)
	tc.coord.setPhase(skipgridpb.Phase_PHASE_TRAINING)
	cfg := DefaultClusterConfig()
	cfg.Coordinator = rpc.InMemCoordinator{Server: tc.coord}
	cfg.Dial = func(context.Context, string) (skipgridpb.ParameterServerClient, error) {
		return nanPS{dim: clusterDim}, nil
	}
	cfg.Logger = quiet
	src, err := NewClusterSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Load(context.Background())
	if err == nil || !strings.Contains(err.Error(), "NaN") {
		t.Errorf("Load of NaN rows: %v; want an error naming the NaN", err)
	}
}

func TestClusterConfigValidate(t *testing.T) {
	cfg := ClusterConfig{PageRows: 0, Timeout: -1}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	// Every problem is reported at once.
	for _, want := range []string{"Coordinator", "Dial", "Name", "PageRows", "Parallel",
		"Timeout", "query config"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

// TestLiveRunRefreshes runs a Live with a short period and waits for it to
// pick up a push made after its first load.
func TestLiveRunRefreshes(t *testing.T) {
	tc := newTestCluster(t)
	live := NewLive(tc.source(t), quiet)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- live.Run(ctx, 5*time.Millisecond) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	// Counting: nothing loads, and queries are not ready.
	if _, err := live.Index(); !errors.Is(err, ErrNotReady) {
		t.Fatalf("Index() before any load: %v, want ErrNotReady", err)
	}
	tc.coord.setPhase(skipgridpb.Phase_PHASE_TRAINING)
	waitFor(t, "a first load", func() bool { n, _ := live.Loads(); return n >= 1 })

	w5 := make([]float32, clusterDim)
	ps.InitRow(clusterSeed, skipgridpb.Table_TABLE_INPUT, 5, w5)
	tc.set(t, 3, w5)
	waitFor(t, "w3 to become w5's neighbour", func() bool {
		x, err := live.Index()
		if err != nil {
			return false
		}
		got, err := x.Neighbors("w5", 1, MetricCosine)
		return err == nil && got[0].Word == "w3"
	})
}

// waitFor polls cond until it holds or 10 seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
