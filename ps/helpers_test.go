package ps

import (
	"context"
	"log/slog"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skipgrid/skipgrid/proto/payload"
	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/shard"
)

const (
	testJob  = "job-1"
	testRows = 1000
	testDim  = 4
	testSeed = 42
)

var (
	input  = skipgridpb.Table_TABLE_INPUT
	output = skipgridpb.Table_TABLE_OUTPUT
)

// bitwise compares float32 values by their bits, so NaN, -0 and tiny drifts all count.
var bitwise = cmp.Comparer(func(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b)
})

// newServer returns a server for shard with quiet logs and the default limits.
func newServer(t testing.TB, shardIdx int) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Shard = shardIdx
	cfg.Name = "ps-test"
	cfg.Logger = slog.New(slog.DiscardHandler)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// configureReq is the test job: INPUT uniform, OUTPUT zero.
func configureReq(shardIdx, numShards int) *skipgridpb.ConfigureRequest {
	return &skipgridpb.ConfigureRequest{
		JobId: testJob, Shard: uint32(shardIdx), NumShards: uint32(numShards),
		Rows: testRows, Dim: testDim, Seed: testSeed,
		Tables: []*skipgridpb.TableSpec{
			{Table: input, Init: skipgridpb.Init_INIT_UNIFORM},
			{Table: output, Init: skipgridpb.Init_INIT_ZERO},
		},
	}
}

// configured returns shard shardIdx of numShards, configured with the test job.
func configured(t testing.TB, shardIdx, numShards int) *Server {
	t.Helper()
	s := newServer(t, shardIdx)
	if _, err := s.Configure(context.Background(), configureReq(shardIdx, numShards)); err != nil {
		t.Fatal(err)
	}
	return s
}

// owned returns the ids shardIdx of numShards owns, from the shard package.
func owned(t testing.TB, shardIdx, numShards int) []uint32 {
	t.Helper()
	m, err := shard.NewMap(testRows, numShards)
	if err != nil {
		t.Fatal(err)
	}
	return m.ShardRows(shardIdx)
}

func keys(t testing.TB, table skipgridpb.Table, ids []uint32) *skipgridpb.Keys {
	t.Helper()
	b, err := payload.Encode(nil, ids, 0, nil, payload.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &skipgridpb.Keys{Table: table, Payload: b}
}

func rows(t testing.TB, table skipgridpb.Table, ids []uint32, dim int,
	values []float32) *skipgridpb.Rows {
	t.Helper()
	b, err := payload.Encode(nil, ids, dim, values, payload.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &skipgridpb.Rows{Table: table, Payload: b}
}

// pull reads rows ids of table as float32 values.
func pull(t testing.TB, s *Server, table skipgridpb.Table, ids []uint32) []float32 {
	t.Helper()
	resp, err := s.Pull(context.Background(), &skipgridpb.PullRequest{
		Sender: "w", JobId: testJob, Keys: []*skipgridpb.Keys{keys(t, table, ids)}})
	if err != nil {
		t.Fatal(err)
	}
	var blk payload.Block
	err = payload.Decode(resp.GetRows()[0].GetPayload(), payload.DefaultLimits(), &blk)
	if err != nil {
		t.Fatal(err)
	}
	if blk.IDs != nil || blk.N != len(ids) || blk.Dim != testDim {
		t.Fatalf("pull answer has ids %v, n %d, dim %d; want no ids, n %d, dim %d",
			blk.IDs, blk.N, blk.Dim, len(ids), testDim)
	}
	return blk.Values
}

func push(t testing.TB, s *Server, blocks ...*skipgridpb.Rows) (*skipgridpb.PushResponse, error) {
	t.Helper()
	return s.Push(context.Background(), &skipgridpb.PushRequest{
		Sender: "w", JobId: testJob, Rows: blocks})
}
