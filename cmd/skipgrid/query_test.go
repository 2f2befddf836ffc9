package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/grpc"

	"github.com/skipgrid/skipgrid/proto/payload"
	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/ps"
	"github.com/skipgrid/skipgrid/query"
	"github.com/skipgrid/skipgrid/rpc"
	"github.com/skipgrid/skipgrid/vectors"
)

// planeFile writes 2-D vectors whose scores are easy to work by hand and
// returns the file's path:
//
//	a (3, 4), b (4, 3), c (0, 2), d (1, 0), e (-3, -4), f (6, 8)
//
// with unit rows a (0.6, 0.8), b (0.8, 0.6), c (0, 1), d (1, 0),
// e (-0.6, -0.8), f (0.6, 0.8).
func planeFile(t *testing.T) string {
	t.Helper()
	v := &vectors.Vectors{
		Words: []string{"a", "b", "c", "d", "e", "f"},
		Dim:   2,
		Data:  []float32{3, 4, 4, 3, 0, 2, 1, 0, -3, -4, 6, 8},
	}
	path := filepath.Join(t.TempDir(), "plane.bin")
	if err := vectors.WriteFile(path, v, vectors.FormatBinary); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestQueryCommandsText(t *testing.T) {
	path := planeFile(t)
	tests := []struct {
		args []string
		want string
	}{{
		// Cosines with a: f 1, b 0.96, c 0.8. Cosines with d: b 0.8, then a
		// and f tie at 0.6, the earlier row first.
		args: []string{"neighbors", "--vectors", path, "a", "d", "--k", "3"},
		want: "a, cosine:\n  f  1\n  b  0.96\n  c  0.8\n\n" +
			"d, cosine:\n  b  0.8\n  a  0.6\n  f  0.6\n",
	}, {
		// |a - x|: b sqrt(2), c sqrt(13); A is found as a.
		args: []string{"neighbors", "--vectors", path, "A", "--k", "2", "--metric",
			"euclidean"},
		want: "A (as a), euclidean:\n  b  1.41421\n  c  3.60555\n",
	}, {
		// b - a + c of unit rows = (0.2, 0.8): f 0.12+0.64, d 0.2.
		args: []string{"analogy", "--vectors", path, "a", "b", "c", "--k", "2"},
		want: "a : b :: c : ?, 3cosadd:\n  f  0.76\n  d  0.2\n",
	}, {
		args: []string{"similarity", "--vectors", path, "a", "b", "--metric", "dot"},
		want: "24\n", // 3*4 + 4*3
	}}
	for _, tt := range tests {
		out, err := runCLI(t, tt.args...)
		if err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		if diff := cmp.Diff(tt.want, out); diff != "" {
			t.Errorf("%v (-want +got):\n%s", tt.args, diff)
		}
	}
}

func TestQueryCommandsJSON(t *testing.T) {
	path := planeFile(t)
	out, err := runCLI(t, "neighbors", "--vectors", path, "a", "--k", "2", "--metric", "dot",
		"--json")
	if err != nil {
		t.Fatal(err)
	}
	var got query.NeighborsReply
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// a·f = 18+32, a·b = 12+12.
	want := query.NeighborsReply{Metric: "dot", K: 2, Results: []query.WordResult{{
		Query: "a", Word: "a", Neighbors: []query.Neighbor{{Word: "f", Score: 50},
			{Word: "b", Score: 24}},
	}}}
	if diff := cmp.Diff(want, got, cmpopts.EquateApprox(1e-6, 0)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	out, err = runCLI(t, "analogy", "--vectors", path, "a", "b", "c", "--k", "1",
		"--method", "3cosmul", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var an query.AnalogyReply
	if err := json.Unmarshal([]byte(out), &an); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// e has cosines -1, -0.96, -0.8 with a, b, c: shifted 0, 0.02, 0.1, so
	// 0.02*0.1/(0+0.001); f scores only 0.98*0.9/1.001. Dividing by about
	// 0.001 magnifies float32 rounding, hence the looser tolerance.
	wantAn := query.AnalogyReply{A: "a", B: "b", C: "c", Method: "3cosmul", K: 1,
		Neighbors: []query.Neighbor{{Word: "e", Score: 2}}}
	if diff := cmp.Diff(wantAn, an, cmpopts.EquateApprox(1e-5, 0)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestQueryCommandErrors(t *testing.T) {
	path := planeFile(t)
	tests := []struct {
		args    []string
		mention string
	}{
		{[]string{"neighbors", "--vectors", path, "nope"}, `unknown word "nope"`},
		{[]string{"neighbors", "--vectors", path}, "at least one WORD"},
		{[]string{"neighbors", "--vectors", path, "a", "--metric", "l1"}, "--metric"},
		{[]string{"neighbors", "--vectors", path, "a", "--k", "0"}, "k is 0"},
		{[]string{"neighbors", "--vectors", path, "a", "--parallel", "-2"}, "--parallel"},
		{[]string{"analogy", "--vectors", path, "a", "b"}, "3 arg"},
		{[]string{"analogy", "--vectors", path, "a", "b", "c", "--method", "x"}, "--method"},
		{[]string{"similarity", "--vectors", path, "a", "zz"}, `"zz"`},
		{[]string{"neighbors", "a"}, `"vectors" not set`},
		{[]string{"serve", "--addr", "127.0.0.1:0"}, "either --vectors"},
		{[]string{"serve", "--vectors", path, "--cluster", "x:1"}, "either --vectors"},
		{[]string{"serve", "--vectors", filepath.Join(t.TempDir(), "none.bin")}, "none.bin"},
	}
	for _, tt := range tests {
		_, err := runCLI(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.mention) {
			t.Errorf("%v: error %v; want one mentioning %s", tt.args, err, tt.mention)
		}
	}
}

func TestNeighborsBenchMode(t *testing.T) {
	path := planeFile(t)
	dir := writeFiles(t, map[string]string{"q.txt": "a 10\n\nb\nC\n"})
	out, err := runCLI(t, "neighbors", "--vectors", path, "--bench-queries",
		filepath.Join(dir, "q.txt"), "--bench-batch", "2", "--bench-rounds", "3",
		"--parallel", "1")
	if err != nil {
		t.Fatal(err)
	}
	var got benchResult
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// 3 words (a, b, C) asked 3 times each, over 6 words of dimension 2.
	if got.Queries != 9 || got.Words != 6 || got.Dim != 2 || got.Batch != 2 ||
		got.Parallel != 1 || got.K != 10 || got.PerSecond <= 0 {
		t.Errorf("bench result %+v", got)
	}
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	return addr
}

// TestServeVectors runs serve on a vectors file and asks it over HTTP and
// gRPC, then stops it by cancelling its context.
func TestServeVectors(t *testing.T) {
	path := planeFile(t)
	httpAddr, grpcAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	root := newRootCmd()
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	root.SetArgs([]string{"--log-level", "error", "serve", "--vectors", path,
		"--addr", httpAddr, "--grpc-addr", grpcAddr})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("serve did not stop within 10s of its context's end")
		}
	}()

	// a·b = 24 over HTTP, once the server answers.
	body := pollHTTP(t, "http://"+httpAddr+"/v1/similarity?w1=a&w2=b&metric=dot")
	var sim query.SimilarityReply
	if err := json.Unmarshal(body, &sim); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if diff := cmp.Diff(query.SimilarityReply{W1: "a", W2: "b", Metric: "dot", Score: 24},
		sim, cmpopts.EquateApprox(1e-6, 0)); diff != "" {
		t.Errorf("HTTP (-want +got):\n%s", diff)
	}

	// cos(a, c) = 0.8 over gRPC.
	conn, err := rpc.Dial(grpcAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	resp, err := skipgridpb.NewQueryClient(conn).Similarity(rctx,
		&skipgridpb.SimilarityRequest{Word1: "a", Word2: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetScore(); got < 0.8-1e-6 || got > 0.8+1e-6 {
		t.Errorf("gRPC similarity %v, want 0.8", got)
	}
}

// pollHTTP GETs url until it answers 200 or 10 seconds pass, and returns
// the body.
func pollHTTP(t *testing.T, url string) []byte {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return b.Bytes()
			}
			err = fmt.Errorf("status %d: %s", resp.StatusCode, b.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// queryCoordinator is a coordinator that only describes a training job of
// one PS shard and three words.
type queryCoordinator struct {
	skipgridpb.UnimplementedCoordinatorServer
	psAddr string
}

func (c *queryCoordinator) GetJob(context.Context, *skipgridpb.GetJobRequest) (
	*skipgridpb.JobSpec, error) {
	return &skipgridpb.JobSpec{JobId: "job", Phase: skipgridpb.Phase_PHASE_TRAINING, Dim: 4,
		VocabSize: 3, PsAddresses: []string{c.psAddr}}, nil
}

func (c *queryCoordinator) GetVocab(context.Context, *skipgridpb.GetVocabRequest) (
	*skipgridpb.Vocab, error) {
	return &skipgridpb.Vocab{Words: []string{"x", "y", "z"}}, nil
}

// TestServeCluster serves the live rows of a job (a fake coordinator and a
// real PS shard, both over loopback gRPC) and checks a similarity against
// the rows the shard was initialised with (ps.InitRow).
func TestServeCluster(t *testing.T) {
	shardSrv, err := ps.New(ps.Config{Shard: 0, Name: "ps-0", Limits: payload.DefaultLimits(),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	const seed = 5
	_, err = shardSrv.Configure(context.Background(), &skipgridpb.ConfigureRequest{
		JobId: "job", NumShards: 1, Rows: 3, Dim: 4, Seed: seed,
		Tables: []*skipgridpb.TableSpec{{Table: skipgridpb.Table_TABLE_INPUT,
			Init: skipgridpb.Init_INIT_UNIFORM}},
	})
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(rpc.ServerOptions()...)
	skipgridpb.RegisterParameterServerServer(gs, shardSrv)
	psAddr := serveLoopback(t, gs)
	cs := grpc.NewServer(rpc.ServerOptions()...)
	skipgridpb.RegisterCoordinatorServer(cs, &queryCoordinator{psAddr: psAddr})
	coordAddr := serveLoopback(t, cs)

	httpAddr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	root := newRootCmd()
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	root.SetArgs([]string{"--log-level", "error", "serve", "--cluster", coordAddr,
		"--addr", httpAddr, "--refresh", "50ms"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()

	body := pollHTTP(t, "http://"+httpAddr+"/v1/similarity?w1=x&w2=z")
	var got query.SimilarityReply
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	// The cosine of rows 0 and 2 as the shard initialised them.
	r0, r2 := make([]float32, 4), make([]float32, 4)
	ps.InitRow(seed, skipgridpb.Table_TABLE_INPUT, 0, r0)
	ps.InitRow(seed, skipgridpb.Table_TABLE_INPUT, 2, r2)
	var dot, n0, n2 float64
	for j := range r0 {
		dot += float64(r0[j]) * float64(r2[j])
		n0 += float64(r0[j]) * float64(r0[j])
		n2 += float64(r2[j]) * float64(r2[j])
	}
	want := query.SimilarityReply{W1: "x", W2: "z", Metric: "cosine",
		Score: dot / math.Sqrt(n0*n2)}
	if diff := cmp.Diff(want, got, cmpopts.EquateApprox(1e-6, 1e-6)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// serveLoopback serves gs on a loopback port until the test ends and
// returns the address.
func serveLoopback(t *testing.T, gs *grpc.Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return lis.Addr().String()
}
