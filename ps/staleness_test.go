package ps

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// pullVersions pulls rows ids of table and returns the versions the answer gives.
func pullVersions(t *testing.T, s *Server, ids []uint32) []uint32 {
	t.Helper()
	resp, err := s.Pull(context.Background(), &skipgridpb.PullRequest{
		Sender: "w", JobId: testJob, Keys: []*skipgridpb.Keys{keys(t, input, ids)}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetRows()[0].GetVersions()
}

// pushAt pushes delta to row id with the version it was pulled at (or none).
func pushAt(t *testing.T, s *Server, id uint32, delta []float32, vers []uint32) error {
	t.Helper()
	_, err := s.Push(context.Background(), &skipgridpb.PushRequest{Sender: "w",
		JobId: testJob, Rows: []*skipgridpb.Rows{{Table: input,
			Payload:  rows(t, input, []uint32{id}, testDim, delta).GetPayload(),
			Versions: vers}}})
	return err
}

// TestStalenessDamping: row 9 is pulled at version 0; then three pushes of other workers
// reach it. A delta computed from version 0 arriving after one of them applies whole; after
// three, a third of it; a delta sent without a version applies whole. Every push counts in
// the row's version, which a pull reports.
func TestStalenessDamping(t *testing.T) {
	s := configured(t, 0, 1)
	const id = 9
	start := pull(t, s, input, []uint32{id})
	if v := pullVersions(t, s, []uint32{id, 10}); !cmp.Equal(v, []uint32{0, 0}) {
		t.Fatalf("versions of fresh rows %v; want [0 0]", v)
	}

	one := []float32{1, 1, 1, 1}
	if err := pushAt(t, s, id, one, []uint32{0}); err != nil { // fresh: whole
		t.Fatal(err)
	}
	if err := pushAt(t, s, id, []float32{6, 6, 6, 6}, []uint32{0}); err != nil {
		t.Fatal(err) // one push since version 0: whole
	}
	if err := pushAt(t, s, id, one, nil); err != nil { // no version: whole
		t.Fatal(err)
	}
	if err := pushAt(t, s, id, []float32{3, 3, 3, 3}, []uint32{0}); err != nil {
		t.Fatal(err) // three pushes since version 0: a third
	}

	got := pull(t, s, input, []uint32{id})
	want := make([]float32, testDim)
	for i := range want {
		want[i] = ((start[i] + 1) + 6) + 1 + 3*(float32(1)/3)
	}
	if d := cmp.Diff(want, got, bitwise); d != "" {
		t.Errorf("row after damped pushes (-want +got):\n%s", d)
	}
	if v := pullVersions(t, s, []uint32{id}); !cmp.Equal(v, []uint32{4}) {
		t.Errorf("version after four pushes %v; want [4]", v)
	}

	err := pushAt(t, s, id, one, []uint32{1, 2})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("two versions for one row: %v; want InvalidArgument", err)
	}
}
