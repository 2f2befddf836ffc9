package ps

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/rpc"
)

// flakyBackup is a backup shard reached in memory whose pushes fail with Unavailable while
// down is set, before reaching the shard.
type flakyBackup struct {
	rpc.InMemPS
	down atomic.Bool
}

func (f *flakyBackup) Push(ctx context.Context, in *skipgridpb.PushRequest,
	opts ...grpc.CallOption) (*skipgridpb.PushResponse, error) {
	if f.down.Load() {
		return nil, status.Error(codes.Unavailable, "backup down")
	}
	return f.InMemPS.Push(ctx, in, opts...)
}

// replicatedPair returns a configured primary of shard 0 of 1 whose one backup is a second
// configured server behind a flakyBackup.
func replicatedPair(t *testing.T) (*Server, *Server, *flakyBackup) {
	t.Helper()
	backup := configured(t, 0, 1)
	link := &flakyBackup{InMemPS: rpc.InMemPS{Server: backup}}

	cfg := DefaultConfig()
	cfg.Name, cfg.Logger = "ps-primary", slog.New(slog.DiscardHandler)
	cfg.Dial = func(_ context.Context, addr string) (skipgridpb.ParameterServerClient, error) {
		if addr != "backup:1" {
			t.Errorf("dialled %q, want backup:1", addr)
		}
		return link, nil
	}
	primary, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := primary.Configure(ctx, configureReq(0, 1)); err != nil {
		t.Fatal(err)
	}
	_, err = primary.SetBackups(ctx, &skipgridpb.SetBackupsRequest{JobId: testJob,
		Addresses: []string{"backup:1"}})
	if err != nil {
		t.Fatal(err)
	}
	return primary, backup, link
}

// TestPushForwardedOnceToBackup pushes one delta to a primary with a backup: both copies
// hold start value + delta, and the backup counts it as forwarded.
func TestPushForwardedOnceToBackup(t *testing.T) {
	primary, backup, _ := replicatedPair(t)
	ids := []uint32{3, 7}
	start := pull(t, primary, input, ids)
	if d := cmp.Diff(start, pull(t, backup, input, ids), bitwise); d != "" {
		t.Fatalf("replicas start apart (-primary +backup):\n%s", d)
	}

	delta := []float32{1, 2, 3, 4, -1, -2, -3, -4}
	req := &skipgridpb.PushRequest{Sender: "w", JobId: testJob, Seq: 11,
		Rows: []*skipgridpb.Rows{rows(t, input, ids, testDim, delta)}}
	if _, err := primary.Push(context.Background(), req); err != nil {
		t.Fatal(err)
	}

	want := make([]float32, len(start))
	for i := range want {
		want[i] = start[i] + delta[i]
	}
	for name, s := range map[string]*Server{"primary": primary, "backup": backup} {
		if d := cmp.Diff(want, pull(t, s, input, ids), bitwise); d != "" {
			t.Errorf("%s rows after one push (-want +got):\n%s", name, d)
		}
	}
	st, _ := backup.Stats(context.Background(), &skipgridpb.StatsRequest{})
	if st.GetPushesForwarded() != 1 || st.GetPushes() != 1 {
		t.Errorf("backup stats forwarded %d pushes %d; want 1 and 1", st.GetPushesForwarded(),
			st.GetPushes())
	}
}

// TestPushRetriedWhileBackupDown is the failure a replica must survive: the primary applies
// a push while its backup is down, so the push is not acknowledged; the sender retries the
// same (sender, seq) once the backup is back. Each copy then holds the delta exactly once.
func TestPushRetriedWhileBackupDown(t *testing.T) {
	primary, backup, link := replicatedPair(t)
	ids := []uint32{5}
	start := pull(t, primary, input, ids)
	delta := []float32{0.5, 0.25, -0.5, 1}
	req := &skipgridpb.PushRequest{Sender: "w", JobId: testJob, Seq: 1,
		Rows: []*skipgridpb.Rows{rows(t, input, ids, testDim, delta)}}

	link.down.Store(true)
	_, err := primary.Push(context.Background(), req)
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("push with the backup down: %v; want Unavailable", err)
	}
	link.down.Store(false)
	for range 2 { // the retry, and a second one whose answer was lost
		if _, err := primary.Push(context.Background(), req); err != nil {
			t.Fatalf("retried push: %v", err)
		}
	}

	want := []float32{start[0] + 0.5, start[1] + 0.25, start[2] - 0.5, start[3] + 1}
	for name, s := range map[string]*Server{"primary": primary, "backup": backup} {
		if d := cmp.Diff(want, pull(t, s, input, ids), bitwise); d != "" {
			t.Errorf("%s rows (-want +got):\n%s", name, d)
		}
	}
	pst, _ := primary.Stats(context.Background(), &skipgridpb.StatsRequest{})
	bst, _ := backup.Stats(context.Background(), &skipgridpb.StatsRequest{})
	if pst.GetPushes() != 1 || pst.GetPushesDuplicate() != 2 || bst.GetPushes() != 1 ||
		bst.GetPushesDuplicate() != 1 || pst.GetForwardFailures() == 0 {
		t.Errorf("primary pushes %d duplicates %d forward failures %d, backup pushes %d "+
			"duplicates %d; want 1, 2, >0, 1, 1", pst.GetPushes(), pst.GetPushesDuplicate(),
			pst.GetForwardFailures(), bst.GetPushes(), bst.GetPushesDuplicate())
	}
}

// TestSeqWindow checks that a sender's sequence numbers are remembered for dedupWindow
// pushes and forgotten after, that senders do not share numbers, and that 0 is never
// deduplicated.
func TestSeqWindow(t *testing.T) {
	var r replication
	if !r.claim("a", 1) || r.claim("a", 1) || !r.claim("b", 1) {
		t.Fatal("seq 1: want new for a, repeat for a, new for b")
	}
	if !r.claim("a", 0) || !r.claim("a", 0) {
		t.Fatal("seq 0 must never count as a repeat")
	}
	for seq := uint64(2); seq <= dedupWindow; seq++ {
		r.claim("a", seq)
	}
	if r.claim("a", 1) {
		t.Fatal("seq 1 forgotten while still inside the window")
	}
	r.claim("a", dedupWindow+1) // pushes seq 1 out
	if !r.claim("a", 1) {
		t.Fatal("seq 1 still remembered after dedupWindow newer pushes")
	}
}

// TestSetBackupsNeedsDialer refuses backups on a shard that cannot reach them.
func TestSetBackupsNeedsDialer(t *testing.T) {
	s := configured(t, 0, 1)
	_, err := s.SetBackups(context.Background(), &skipgridpb.SetBackupsRequest{
		JobId: testJob, Addresses: []string{"x:1"}})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("SetBackups without a dialer: %v; want FailedPrecondition", err)
	}
}
