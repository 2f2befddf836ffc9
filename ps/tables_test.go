package ps

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/shard"
)

var classifier = skipgridpb.Table_TABLE_CLASSIFIER

// TestTableRows configures a fine-tuning job on two shards: the input table with the
// request's 1000 rows, the classifier with 6 rows of its own placed by a 6-row shard map.
func TestTableRows(t *testing.T) {
	const labels = 6
	cm, err := shard.NewMap(labels, 2)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for sh := range 2 {
		s := newServer(t, sh)
		req := configureReq(sh, 2)
		req.Tables = []*skipgridpb.TableSpec{
			{Table: input, Init: skipgridpb.Init_INIT_ZERO},
			{Table: classifier, Init: skipgridpb.Init_INIT_ZERO, Rows: labels},
		}
		resp, err := s.Configure(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		// local_rows counts the shard's share of the request's rows, not the classifier's.
		if want := uint64(len(owned(t, sh, 2))); resp.GetLocalRows() != want {
			t.Errorf("shard %d: local rows %d, want %d", sh, resp.GetLocalRows(), want)
		}

		ids := cm.ShardRows(sh)
		seen += len(ids)
		if len(ids) == 0 {
			continue
		}
		vals := make([]float32, len(ids)*testDim)
		for i := range vals {
			vals[i] = float32(i + 1)
		}
		if _, err := push(t, s, rows(t, classifier, ids, testDim, vals)); err != nil {
			t.Fatalf("shard %d: push classifier rows %v: %v", sh, ids, err)
		}
		if diff := cmp.Diff(vals, pull(t, s, classifier, ids)); diff != "" {
			t.Errorf("shard %d: classifier rows (-pushed +pulled):\n%s", sh, diff)
		}

		// Row 6 is past the classifier's rows, though far inside the input table's.
		_, err = s.Pull(context.Background(), &skipgridpb.PullRequest{Sender: "w",
			JobId: testJob, Keys: []*skipgridpb.Keys{keys(t, classifier, []uint32{labels})}})
		if status.Code(err) != codes.InvalidArgument ||
			!strings.Contains(err.Error(), "table TABLE_CLASSIFIER of job \"job-1\" has 6 rows") {
			t.Errorf("shard %d: pull of classifier row 6: %v, want InvalidArgument", sh, err)
		}
	}
	if seen != labels {
		t.Errorf("the shards own %d classifier rows together, want %d", seen, labels)
	}
}

func TestTableRowsRefused(t *testing.T) {
	s := newServer(t, 0)
	req := configureReq(0, 1)
	req.Tables[1].Rows = 1<<32 + 1
	_, err := s.Configure(context.Background(), req)
	if status.Code(err) != codes.InvalidArgument ||
		!strings.Contains(err.Error(), "tables[1]: rows is 4294967297") {
		t.Errorf("configure with 2^32+1 rows: %v, want InvalidArgument naming tables[1]", err)
	}
}
