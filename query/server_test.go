package query

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/rpc"
)

// serveLoopback serves live's Query service on a loopback port and returns
// a client of it.
func serveLoopback(t *testing.T, live *Live) skipgridpb.QueryClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(rpc.ServerOptions()...)
	skipgridpb.RegisterQueryServer(srv, NewServer(live))
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	conn, err := rpc.Dial(lis.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return skipgridpb.NewQueryClient(conn)
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// protoApprox compares messages, with scores to within float32 rounding.
var protoApprox = cmp.Options{protocmp.Transform(), cmpopts.EquateApprox(1e-6, 1e-6)}

func TestGRPCAnswers(t *testing.T) {
	cl := serveLoopback(t, Fixed(mustIndex(t, plane(), DefaultConfig())))
	ctx := testContext(t)

	// Unset k means DefaultK (all 6 other words here), unset metric cosine;
	// scores from TestNeighborsByHand.
	got, err := cl.Neighbors(ctx, &skipgridpb.NeighborsRequest{Words: []string{"a", "D"}})
	if err != nil {
		t.Fatal(err)
	}
	n := func(w string, s float64) *skipgridpb.Neighbor {
		return &skipgridpb.Neighbor{Word: w, Score: s}
	}
	want := &skipgridpb.NeighborsResponse{Results: []*skipgridpb.NeighborList{
		{Query: "a", Neighbors: []*skipgridpb.Neighbor{n("f", 1), n("b", 0.96), n("c", 0.8),
			n("d", 0.6), n("z", 0), n("e", -1)}},
		{Query: "D", Neighbors: []*skipgridpb.Neighbor{n("b", 0.8), n("a", 0.6), n("f", 0.6),
			n("c", 0), n("z", 0), n("e", -0.6)}},
	}}
	if diff := cmp.Diff(want, got, protoApprox); diff != "" {
		t.Errorf("neighbors (-want +got):\n%s", diff)
	}

	// Worked in TestHTTPAnswers: b - a + c = (0.2, 0.8) of unit rows.
	an, err := cl.Analogy(ctx, &skipgridpb.AnalogyRequest{A: "a", B: "b", C: "c", K: 2})
	if err != nil {
		t.Fatal(err)
	}
	wantAn := &skipgridpb.NeighborsResponse{Results: []*skipgridpb.NeighborList{
		{Query: "a : b :: c : ?", Neighbors: []*skipgridpb.Neighbor{n("f", 0.76),
			n("d", 0.2)}}}}
	if diff := cmp.Diff(wantAn, an, protoApprox); diff != "" {
		t.Errorf("analogy (-want +got):\n%s", diff)
	}

	sim, err := cl.Similarity(ctx, &skipgridpb.SimilarityRequest{Word1: "a", Word2: "b",
		Metric: skipgridpb.Metric_METRIC_EUCLIDEAN})
	if err != nil {
		t.Fatal(err)
	}
	// |(3,4) - (4,3)| = sqrt(2).
	if diff := cmp.Diff(&skipgridpb.SimilarityResponse{Score: 1.4142135623730951}, sim,
		protoApprox); diff != "" {
		t.Errorf("similarity (-want +got):\n%s", diff)
	}
}

func TestGRPCStatusCodes(t *testing.T) {
	cl := serveLoopback(t, Fixed(mustIndex(t, plane(), DefaultConfig())))
	notReady := serveLoopback(t, NewLive(&FileSource{Path: "never-loaded"}, quiet))
	ctx := testContext(t)
	many := make([]string, MaxWords+1)
	for i := range many {
		many[i] = "a"
	}

	tests := []struct {
		name    string
		call    func() (proto.Message, error)
		code    codes.Code
		mention string
	}{
		{"unknown word", func() (proto.Message, error) {
			return cl.Neighbors(ctx, &skipgridpb.NeighborsRequest{Words: []string{"nope"}})
		}, codes.NotFound, `"nope"`},
		{"k too big", func() (proto.Message, error) {
			return cl.Neighbors(ctx, &skipgridpb.NeighborsRequest{Words: []string{"a"},
				K: MaxK + 1})
		}, codes.InvalidArgument, "k is 1001"},
		{"too many words", func() (proto.Message, error) {
			return cl.Neighbors(ctx, &skipgridpb.NeighborsRequest{Words: many})
		}, codes.InvalidArgument, "101 query words"},
		{"no words", func() (proto.Message, error) {
			return cl.Neighbors(ctx, &skipgridpb.NeighborsRequest{})
		}, codes.InvalidArgument, "0 query words"},
		{"unknown metric", func() (proto.Message, error) {
			return cl.Neighbors(ctx, &skipgridpb.NeighborsRequest{Words: []string{"a"},
				Metric: 7})
		}, codes.InvalidArgument, "metric 7"},
		{"unknown method", func() (proto.Message, error) {
			return cl.Analogy(ctx, &skipgridpb.AnalogyRequest{A: "a", B: "b", C: "c",
				Method: 9})
		}, codes.InvalidArgument, "method 9"},
		{"analogy k too big", func() (proto.Message, error) {
			return cl.Analogy(ctx, &skipgridpb.AnalogyRequest{A: "a", B: "b", C: "c",
				K: 5000})
		}, codes.InvalidArgument, "k is 5000"},
		{"unknown analogy word", func() (proto.Message, error) {
			return cl.Analogy(ctx, &skipgridpb.AnalogyRequest{A: "a", B: "nope", C: "c"})
		}, codes.NotFound, `"nope"`},
		{"unknown similarity word", func() (proto.Message, error) {
			return cl.Similarity(ctx, &skipgridpb.SimilarityRequest{Word1: "nope", Word2: "a"})
		}, codes.NotFound, `"nope"`},
		{"not ready", func() (proto.Message, error) {
			return notReady.Similarity(ctx, &skipgridpb.SimilarityRequest{Word1: "a",
				Word2: "b"})
		}, codes.Unavailable, "no vectors loaded yet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.call()
			st, _ := status.FromError(err)
			if st.Code() != tt.code || !strings.Contains(st.Message(), tt.mention) {
				t.Errorf("got %v; want code %v and a message mentioning %s", err, tt.code,
					tt.mention)
			}
		})
	}
}
