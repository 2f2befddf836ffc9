package ps

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/skipgrid/skipgrid/proto/payload"
	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// Benchmarks use one shard of a 256K-row, dim-100 job and minibatches of 20,000 random rows.
const benchRows, benchDim, benchBatch = 1 << 18, 100, 20_000

func benchServer(b *testing.B) (*Server, []uint32) {
	b.Helper()
	cfg := DefaultConfig()
	cfg.Logger = slog.New(slog.DiscardHandler)
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	req := &skipgridpb.ConfigureRequest{JobId: testJob, NumShards: 1, Rows: benchRows,
		Dim: benchDim, Seed: 1, Tables: []*skipgridpb.TableSpec{
			{Table: input, Init: skipgridpb.Init_INIT_UNIFORM}}}
	if _, err := s.Configure(context.Background(), req); err != nil {
		b.Fatal(err)
	}

	rng := rand.New(rand.NewPCG(5, 6))
	seen := map[uint32]bool{}
	for len(seen) < benchBatch {
		seen[rng.Uint32N(benchRows)] = true
	}
	ids := make([]uint32, 0, benchBatch)
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return s, ids
}

func BenchmarkPull(b *testing.B) {
	s, ids := benchServer(b)
	for _, opt := range []payload.Options{{}, {Values: payload.ValuesFloat16},
		{Values: payload.ValuesFloat16, Compress: payload.CompressS2}} {
		b.Run(opt.Values.String()+"/"+opt.Compress.String(), func(b *testing.B) {
			req := &skipgridpb.PullRequest{Sender: "w", JobId: testJob,
				Keys: []*skipgridpb.Keys{keys(b, input, ids)}, ValueCodec: uint32(opt.Values),
				Compression: uint32(opt.Compress)}
			b.SetBytes(benchBatch * benchDim * 4)
			for b.Loop() {
				if _, err := s.Pull(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkPush(b *testing.B) {
	s, ids := benchServer(b)
	vals := make([]float32, benchBatch*benchDim)
	for i := range vals {
		vals[i] = float32(i%17) * 1e-4
	}
	req := &skipgridpb.PushRequest{Sender: "w", JobId: testJob,
		Rows: []*skipgridpb.Rows{rows(b, input, ids, benchDim, vals)}}
	b.SetBytes(benchBatch * benchDim * 4)
	for b.Loop() {
		if _, err := s.Push(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}
