package coordinator

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// times returns the sample times of h, oldest first.
func times(h *history) []float64 { return h.snapshot(time.Second).T }

func TestHistoryThinsOldSamples(t *testing.T) {
	// 8 points: the newest 4 at full resolution, 4 older ones thinned. Adding samples
	// 0..19 (t = index), worked by hand:
	//   0..3 fill recent; 4..7 push 0..3 into old (stride 1);
	//   8 pushes 4: old 0..4 overflows, keeps 0 2 4, stride 2;
	//   10 pushes 6, 12 pushes 8: old 0 2 4 6 8 overflows, keeps 0 4 8, stride 4;
	//   16 pushes 12 (5, 7, 9, 10, 11, 13, 14, 15 are not multiples of the stride).
	h := newHistory(8)
	for i := range 20 {
		h.add(sample{t: float64(i)})
		if h.len() > 8 {
			t.Fatalf("after sample %d the history holds %d samples, want at most 8", i,
				h.len())
		}
	}
	want := []float64{0, 4, 8, 12, 16, 17, 18, 19}
	if diff := cmp.Diff(want, times(h)); diff != "" {
		t.Errorf("sample times (-want +got):\n%s", diff)
	}
}

func TestHistoryStaysBoundedAndOrdered(t *testing.T) {
	for _, points := range []int{4, 5, 9, 3600} {
		h := newHistory(points)
		const n = 10000
		for i := range n {
			h.add(sample{t: float64(i)})
		}
		ts := times(h)
		if len(ts) > points {
			t.Errorf("history of %d points holds %d", points, len(ts))
		}
		// The first and the newest samples are always kept, in order.
		if ts[0] != 0 || ts[len(ts)-1] != n-1 {
			t.Errorf("history of %d points spans %v..%v, want 0..%d", points, ts[0],
				ts[len(ts)-1], n-1)
		}
		for i := 1; i < len(ts); i++ {
			if ts[i] <= ts[i-1] {
				t.Fatalf("history of %d points: t[%d]=%v after t[%d]=%v", points, i, ts[i],
					i-1, ts[i-1])
			}
		}
	}
}

func TestHistorySnapshotColumns(t *testing.T) {
	h := newHistory(4)
	h.add(sample{t: 0})
	h.add(sample{t: 1, words: 10, lossSum: 2.5, lossTerms: 5})
	want := History{IntervalSeconds: 0.5, T: []float64{0, 1}, Words: []uint64{0, 10},
		LossSum: []float64{0, 2.5}, LossTerms: []uint64{0, 5}}
	if diff := cmp.Diff(want, h.snapshot(500*time.Millisecond)); diff != "" {
		t.Errorf("snapshot (-want +got):\n%s", diff)
	}
}

func TestRecordSample(t *testing.T) {
	fc := newFakeCluster(t, e2eConfig(t, tinyCorpus(t)))
	c := fc.c
	c.recordSample(false)
	fc.clock.Advance(1500 * time.Millisecond)

	// Two epochs with accepted chunks and a live train lease of 7 words.
	c.mu.Lock()
	co := c.mu.core
	co.Epoch = []epochStats{{LossSum: 1.5, LossTerms: 3}, {LossSum: 0.5, LossTerms: 2}}
	co.TrainWords, co.set.Epochs = 100, 2
	co.Counters.AcceptedWords = 40
	co.Leases[1] = &lease{ID: 1, Kind: skipgridpb.TaskKind_TASK_TRAIN, Words: 7}
	c.mu.Unlock()
	c.recordSample(true)
	fc.clock.Advance(time.Second)

	// Words 40 + 7; loss sums 1.5 + 0.5 over 3 + 2 terms; elapsed stops at the last
	// sample, 1.5 s after the first.
	st := c.Status()
	want := History{IntervalSeconds: 1, T: []float64{0, 1.5}, Words: []uint64{0, 47},
		LossSum: []float64{0, 2}, LossTerms: []uint64{0, 5}}
	if diff := cmp.Diff(want, st.History); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	if st.ElapsedSeconds != 1.5 {
		t.Errorf("elapsed = %v, want 1.5", st.ElapsedSeconds)
	}
}

// statsPS answers Stats with resp or err; its other methods are not called.
type statsPS struct {
	skipgridpb.ParameterServerClient
	resp *skipgridpb.StatsResponse
	err  error
}

func (p *statsPS) Stats(context.Context, *skipgridpb.StatsRequest,
	...grpc.CallOption) (*skipgridpb.StatsResponse, error) {
	return p.resp, p.err
}

func TestPollShards(t *testing.T) {
	fc := newFakeCluster(t, e2eConfig(t, tinyCorpus(t)))
	fc.registerPS(t)
	c := fc.c
	good := &statsPS{resp: &skipgridpb.StatsResponse{Shard: 0, LocalRows: 3, Dim: 4,
		TableBytes: 96, Pulls: 5, Pushes: 6, RowsPulled: 7, RowsPushed: 8, PushesRejected: 1}}
	wrong := &statsPS{resp: &skipgridpb.StatsResponse{Shard: 0}} // at shard 1's address
	set := &shardSet{addrs: []string{psAddr(0), psAddr(1)},
		clients: []skipgridpb.ParameterServerClient{good, wrong}}
	ctx := context.Background()
	c.pollShards(ctx, set)

	// Shard 0's answer is copied; shard 1 answers as shard 0, an error.
	st := c.Status()
	want0 := PSStatus{Shard: 0, Name: "ps0", Address: psAddr(0), Registered: true,
		Alive: true, StatsAt: t0, LocalRows: 3, Dim: 4, TableBytes: 96, Pulls: 5, Pushes: 6,
		RowsPulled: 7, RowsPushed: 8, PushesRejected: 1}
	if diff := cmp.Diff(want0, st.PS[0]); diff != "" {
		t.Errorf("shard 0 (-want +got):\n%s", diff)
	}
	if got, want := st.PS[1].StatsError, "the shard at ps1:7000 answers as shard 0"; got != want {
		t.Errorf("shard 1 stats error = %q, want %q", got, want)
	}

	// A failing call keeps the last answer and says why.
	good.resp, good.err = nil, errors.New("unreachable")
	c.pollShards(ctx, set)
	got := c.Status().PS[0]
	if got.StatsError != "unreachable" || got.LocalRows != 3 || got.StatsAt != t0 {
		t.Errorf("after a failed poll shard 0 = %+v; want the last answer and the error", got)
	}
}
