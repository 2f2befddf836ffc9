package ps

import (
	"context"
	"math"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/skipgrid/skipgrid/proto/payload"
	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// TestOverGRPC serves a shard on a loopback listener and drives it through a real client, so
// the service registration, the messages and the status codes are checked on the wire.
func TestOverGRPC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	skipgridpb.RegisterParameterServerServer(srv, newServer(t, 0))
	go srv.Serve(lis) //nolint:errcheck // Serve returns when Stop is called
	defer srv.Stop()

	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := skipgridpb.NewParameterServerClient(conn)

	// Before Configure: Unavailable (callers retry) crosses the wire as such.
	_, err = c.Pull(ctx, &skipgridpb.PullRequest{Sender: "w", JobId: testJob})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("pull before configure: %v, want Unavailable", err)
	}

	resp, err := c.Configure(ctx, configureReq(0, 1))
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetLocalRows() != testRows {
		t.Errorf("local rows %d, want %d (one shard holds all)", resp.GetLocalRows(), testRows)
	}

	// Push to OUTPUT (zero at start), then pull it back zstd-compressed.
	ids := []uint32{2, 500, 999}
	deltas := []float32{1, 2, 3, 4, 0.5, 0.25, -1, -2, 8, 16, 32, 64}
	if _, err := c.Push(ctx, &skipgridpb.PushRequest{Sender: "w", JobId: testJob,
		Rows: []*skipgridpb.Rows{rows(t, output, ids, testDim, deltas)}}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Pull(ctx, &skipgridpb.PullRequest{Sender: "w", JobId: testJob,
		Keys: []*skipgridpb.Keys{keys(t, output, ids)}, Compression: uint32(payload.CompressZstd)})
	if err != nil {
		t.Fatal(err)
	}
	var blk payload.Block
	err = payload.Decode(got.GetRows()[0].GetPayload(), payload.DefaultLimits(), &blk)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(deltas, blk.Values); diff != "" {
		t.Errorf("pulled rows (-want +got):\n%s", diff)
	}

	// A NaN push is InvalidArgument with its message intact.
	_, err = c.Push(ctx, &skipgridpb.PushRequest{Sender: "w9", JobId: testJob,
		Rows: []*skipgridpb.Rows{rows(t, output, ids[:1], testDim,
			[]float32{0, float32(math.NaN()), 0, 0})}})
	wantMsg := "push from w9: row 2 holds a non-finite value"
	if status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != wantMsg {
		t.Errorf("NaN push: %v, want InvalidArgument %q", err, wantMsg)
	}

	st, err := c.Stats(ctx, &skipgridpb.StatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetPushes() != 1 || st.GetPushesRejected() != 1 || st.GetRowsPulled() != 3 {
		t.Errorf("stats %v; want 1 push, 1 rejected, 3 rows pulled", st)
	}
}
