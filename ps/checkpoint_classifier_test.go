package ps

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/shard"
)

// ftLabels is the classifier's row count in the fine-tuning checkpoint test: a table whose
// rows differ from the request's, so it has a shard map of its own.
const ftLabels = 7

// finetuneReq is a fine-tuning job as the coordinator configures it: the input table with
// the request's rows, the classifier with ftLabels rows of its own, both zero.
func finetuneReq(shardIdx, numShards int) *skipgridpb.ConfigureRequest {
	req := configureReq(shardIdx, numShards)
	req.Tables = []*skipgridpb.TableSpec{
		{Table: input, Init: skipgridpb.Init_INIT_ZERO},
		{Table: classifier, Init: skipgridpb.Init_INIT_ZERO, Rows: ftLabels},
	}
	return req
}

// ftDeltas returns n rows of seeded deltas, each a multiple of 1/64 in [-8, 8), so that
// sums of two are exact in float32.
func ftDeltas(rng *rand.Rand, n int) []float32 {
	d := make([]float32, n*testDim)
	for i := range d {
		d[i] = float32(rng.IntN(1024)-512) / 64
	}
	return d
}

// TestCheckpointClassifierTable checkpoints both shards of a fine-tuning job after two
// pushes to every row of the input and classifier tables, restores each into a new Server
// from the directory, and checks every row of both tables bit for bit against the sums of
// the deltas, and that the classifier keeps its own row count.
func TestCheckpointClassifierTable(t *testing.T) {
	cm, err := shard.NewMap(ftLabels, 2)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(11, 5))
	for sh := range 2 {
		s := ckptServer(t, sh, dir)
		if _, err := s.Configure(context.Background(), finetuneReq(sh, 2)); err != nil {
			t.Fatal(err)
		}
		inIDs, clsIDs := owned(t, sh, 2), cm.ShardRows(sh)
		if len(inIDs) == 0 || len(clsIDs) == 0 {
			t.Fatalf("shard %d owns %d input and %d classifier rows; the test needs both",
				sh, len(inIDs), len(clsIDs))
		}

		// Two pushes of known deltas onto zero rows: each value must be d1 + d2.
		wantIn := make([]float32, len(inIDs)*testDim)
		wantCls := make([]float32, len(clsIDs)*testDim)
		for range 2 {
			din, dcls := ftDeltas(rng, len(inIDs)), ftDeltas(rng, len(clsIDs))
			if _, err := push(t, s, rows(t, input, inIDs, testDim, din),
				rows(t, classifier, clsIDs, testDim, dcls)); err != nil {
				t.Fatal(err)
			}
			for i, d := range din {
				wantIn[i] += d
			}
			for i, d := range dcls {
				wantCls[i] += d
			}
		}
		if diff := cmp.Diff(wantCls, pull(t, s, classifier, clsIDs), bitwise); diff != "" {
			t.Fatalf("shard %d: classifier rows before the checkpoint (-want +got):\n%s", sh,
				diff)
		}
		checkpoint(t, s, 4)

		// A push after the checkpoint is what a crash loses: the restore must not see it.
		if _, err := push(t, s, rows(t, classifier, clsIDs, testDim,
			ftDeltas(rng, len(clsIDs)))); err != nil {
			t.Fatal(err)
		}

		r := ckptServer(t, sh, dir)
		if diff := cmp.Diff(wantIn, pull(t, r, input, inIDs), bitwise); diff != "" {
			t.Errorf("shard %d: restored input rows (-want +got):\n%s", sh, diff)
		}
		if diff := cmp.Diff(wantCls, pull(t, r, classifier, clsIDs), bitwise); diff != "" {
			t.Errorf("shard %d: restored classifier rows (-want +got):\n%s", sh, diff)
		}
		if !slices.ContainsFunc(wantCls, func(v float32) bool { return v != 0 }) {
			t.Fatalf("shard %d: the classifier deltas sum to zero; the check proves nothing",
				sh)
		}

		// The restored classifier keeps its own ftLabels rows, not the request's 1000.
		_, err = r.Pull(context.Background(), &skipgridpb.PullRequest{Sender: "w",
			JobId: testJob, Keys: []*skipgridpb.Keys{keys(t, classifier, []uint32{ftLabels})}})
		if status.Code(err) != codes.InvalidArgument ||
			!strings.Contains(err.Error(), "has 7 rows") {
			t.Errorf("shard %d: restored pull of classifier row %d: %v, want InvalidArgument",
				sh, ftLabels, err)
		}
		// The coordinator's identical Configure is answered as restored and keeps the rows.
		resp, err := r.Configure(context.Background(), finetuneReq(sh, 2))
		if err != nil {
			t.Fatal(err)
		}
		if !resp.GetRestored() || resp.GetCheckpointId() != 4 {
			t.Errorf("shard %d: Configure after restore: %v, want restored from 4", sh, resp)
		}
		if diff := cmp.Diff(wantCls, pull(t, r, classifier, clsIDs), bitwise); diff != "" {
			t.Errorf("shard %d: classifier rows after Configure (-want +got):\n%s", sh, diff)
		}
	}
}
