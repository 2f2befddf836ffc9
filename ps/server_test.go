package ps

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/skipgrid/skipgrid/proto/payload"
	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig invalid: %v", err)
	}
	bad := Config{Shard: -1}
	err := bad.Validate()
	if err == nil {
		t.Fatal("Validate accepted a negative shard, no name and zero limits")
	}
	// Every problem is reported at once.
	for _, want := range []string{"Shard is -1", "Name is empty", "MaxRows is 0", "MaxDim is 0",
		"MaxBytes is 0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error %q lacks %q", err, want)
		}
	}
	if _, err := New(bad); err == nil {
		t.Error("New accepted an invalid config")
	}
}

func TestConfigure(t *testing.T) {
	s := newServer(t, 1)
	resp, err := s.Configure(context.Background(), configureReq(1, 3))
	if err != nil {
		t.Fatal(err)
	}
	local := uint64(len(owned(t, 1, 3)))
	if diff := cmp.Diff(&skipgridpb.ConfigureResponse{LocalRows: local}, resp,
		protocmp.Transform()); diff != "" {
		t.Errorf("Configure (-want +got):\n%s", diff)
	}
	st, _ := s.Stats(context.Background(), &skipgridpb.StatsRequest{})
	// Two tables of local rows of 4 float32 values.
	want := &skipgridpb.StatsResponse{Shard: 1, LocalRows: local, Dim: testDim,
		TableBytes: 2 * local * testDim * 4, Incarnation: s.Incarnation()}
	if diff := cmp.Diff(want, st, protocmp.Transform()); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
}

func TestConfigureRepeat(t *testing.T) {
	ctx := context.Background()
	s := configured(t, 0, 2)
	ids := owned(t, 0, 2)[:2]

	// A push, then the identical Configure: a no-op that must not reset the rows.
	deltas := []float32{1, 2, 3, 4, 5, 6, 7, 8}
	if _, err := push(t, s, rows(t, output, ids, testDim, deltas)); err != nil {
		t.Fatal(err)
	}
	resp, err := s.Configure(ctx, configureReq(0, 2))
	if err != nil {
		t.Fatalf("repeated Configure: %v", err)
	}
	if resp.GetLocalRows() != uint64(len(owned(t, 0, 2))) {
		t.Errorf("repeated Configure answered %d local rows, want %d", resp.GetLocalRows(),
			len(owned(t, 0, 2)))
	}
	// OUTPUT started at zero, so it holds exactly the pushed deltas.
	if diff := cmp.Diff(deltas, pull(t, s, output, ids)); diff != "" {
		t.Errorf("rows after repeated Configure (-want +got):\n%s", diff)
	}

	// Anything else, for this job or another, is refused.
	otherDim := configureReq(0, 2)
	otherDim.Dim = 8
	otherJob := configureReq(0, 2)
	otherJob.JobId = "job-2"
	otherInit := configureReq(0, 2)
	otherInit.Tables[1].Init = skipgridpb.Init_INIT_UNIFORM
	for name, req := range map[string]*skipgridpb.ConfigureRequest{
		"dim": otherDim, "job": otherJob, "init": otherInit} {
		if _, err := s.Configure(ctx, req); status.Code(err) != codes.FailedPrecondition {
			t.Errorf("Configure with another %s: %v, want FailedPrecondition", name, err)
		}
	}
}

func TestBadRequests(t *testing.T) {
	ctx := context.Background()
	fresh := newServer(t, 0)
	s := configured(t, 0, 2)
	mine, theirs := owned(t, 0, 2), owned(t, 1, 2)

	small := DefaultConfig()
	small.Logger = slog.New(slog.DiscardHandler)
	small.Limits.MaxBytes = 64 // 4 rows of dim 4 in float32
	tiny, err := New(small)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tiny.Configure(ctx, configureReq(0, 1)); err != nil {
		t.Fatal(err)
	}
	onlyInput := newServer(t, 0)
	req := configureReq(0, 2)
	req.Tables = req.Tables[:1]
	if _, err := onlyInput.Configure(ctx, req); err != nil {
		t.Fatal(err)
	}

	cfg := func(edit func(r *cfgReq)) func() error {
		return func() error {
			r := configureReq(0, 2)
			edit(r)
			_, err := fresh.Configure(ctx, r)
			return err
		}
	}
	pullFrom := func(srv *Server, edit func(r *pullReq)) func() error {
		return func() error {
			r := &skipgridpb.PullRequest{Sender: "w7", JobId: testJob,
				Keys: []*skipgridpb.Keys{keys(t, input, mine[:3])}}
			edit(r)
			_, err := srv.Pull(ctx, r)
			return err
		}
	}
	pushTo := func(srv *Server, edit func(r *pushReq)) func() error {
		return func() error {
			r := &skipgridpb.PushRequest{Sender: "w7", JobId: testJob,
				Rows: []*skipgridpb.Rows{rows(t, input, mine[:1], testDim, []float32{1, 2, 3, 4})}}
			edit(r)
			_, err := srv.Push(ctx, r)
			return err
		}
	}
	noop := func(*pullReq) {}

	tests := []struct {
		name string
		call func() error
		code codes.Code
		msg  string // a part the message must hold
	}{
		// Unavailable, so that workers retry until the coordinator configures the shard.
		{"pull before configure", pullFrom(fresh, noop), codes.Unavailable,
			"not configured"},
		{"push before configure", pushTo(fresh, func(*pushReq) {}),
			codes.Unavailable, "not configured"},
		{"configure empty job", cfg(func(r *cfgReq) { r.JobId = "" }),
			codes.InvalidArgument, "job_id is empty"},
		{"configure other shard", cfg(func(r *cfgReq) { r.Shard = 1 }),
			codes.InvalidArgument, "request for shard 1 reached shard 0"},
		{"configure no shards", cfg(func(r *cfgReq) { r.NumShards = 0 }),
			codes.InvalidArgument, "num_shards is 0"},
		{"configure no rows", cfg(func(r *cfgReq) { r.Rows = 0 }),
			codes.InvalidArgument, "rows is 0"},
		{"configure too many rows", cfg(func(r *cfgReq) { r.Rows = 1<<32 + 1 }),
			codes.InvalidArgument, "rows is 4294967297"},
		{"configure dim 0", cfg(func(r *cfgReq) { r.Dim = 0 }),
			codes.InvalidArgument, "dim is 0"},
		{"configure dim over limit", cfg(func(r *cfgReq) { r.Dim = 4097 }),
			codes.InvalidArgument, "dim is 4097"},
		{"configure no tables", cfg(func(r *cfgReq) { r.Tables = nil }),
			codes.InvalidArgument, "no tables"},
		{"configure unknown table", cfg(func(r *cfgReq) { r.Tables[0].Table = 9 }),
			codes.InvalidArgument, "tables[0]: table 9 is unknown"},
		{"configure table twice", cfg(func(r *cfgReq) { r.Tables[1].Table = input }),
			codes.InvalidArgument, "tables[1]: table TABLE_INPUT is listed twice"},
		{"configure unknown init", cfg(func(r *cfgReq) { r.Tables[1].Init = 0 }),
			codes.InvalidArgument, "tables[1]: init INIT_UNSPECIFIED is unknown"},

		{"pull other job", pullFrom(s, func(r *pullReq) { r.JobId = "job-9" }),
			codes.FailedPrecondition, `serves job "job-1", not "job-9"`},
		{"pull without sender", pullFrom(s, func(r *pullReq) { r.Sender = "" }),
			codes.InvalidArgument, "pull without sender"},
		{"pull unknown codec", pullFrom(s, func(r *pullReq) { r.ValueCodec = 7 }),
			codes.InvalidArgument, "value codec 7 is unknown"},
		{"pull unknown compression", pullFrom(s, func(r *pullReq) { r.Compression = 3 }),
			codes.InvalidArgument, "compression 3 is unknown"},
		{"pull unspecified table", pullFrom(s, func(r *pullReq) { r.Keys[0].Table = 0 }),
			codes.InvalidArgument, "table TABLE_UNSPECIFIED is not part of job"},
		{"pull table not in job", pullFrom(onlyInput, func(r *pullReq) {
			r.Keys[0].Table = output
		}), codes.InvalidArgument, "table TABLE_OUTPUT is not part of job"},
		{"pull corrupt keys", pullFrom(s, func(r *pullReq) {
			r.Keys[0].Payload = []byte{9, 0, 0, 0}
		}), codes.InvalidArgument, "keys[0]: payload: unknown version"},
		{"pull keys with values", pullFrom(s, func(r *pullReq) {
			r.Keys[0] = &skipgridpb.Keys{Table: input, Payload: rows(t, input, mine[:1], 4,
				[]float32{1, 2, 3, 4}).GetPayload()}
		}), codes.InvalidArgument, "keys[0] must carry ids and no values"},
		{"pull row out of range", pullFrom(s, func(r *pullReq) {
			r.Keys = append(r.Keys, keys(t, input, []uint32{mine[0], 1000, 5000}))
		}), codes.InvalidArgument,
			`pull from w7: row 1000 is out of range (table TABLE_INPUT of job "job-1" has 1000 rows)`},
		{"pull row of another shard", pullFrom(s, func(r *pullReq) {
			r.Keys[0] = keys(t, input, slices.Sorted(slices.Values(
				[]uint32{mine[0], theirs[0], theirs[1]})))
		}), codes.InvalidArgument, "pull from w7: row " + itoa(theirs[0]) +
			" belongs to shard 1, not shard 0"},
		// 3 + 2 rows of 16 bytes exceed the 64-byte limit (4 rows).
		{"pull too large", pullFrom(tiny, func(r *pullReq) {
			r.Keys = append(r.Keys, keys(t, output, []uint32{0, 1}))
		}), codes.ResourceExhausted, "5 rows of dim 4 take 80 bytes, above the limit of 64"},

		{"push other job", pushTo(s, func(r *pushReq) { r.JobId = "" }),
			codes.FailedPrecondition, `not ""`},
		{"push without sender", pushTo(s, func(r *pushReq) { r.Sender = "" }),
			codes.InvalidArgument, "push without sender"},
		{"push NaN", pushTo(s, func(r *pushReq) {
			r.Rows = append(r.Rows, rows(t, output, mine[1:3], 4,
				[]float32{0, 0, 0, 0, 0, float32(math.NaN()), 0, 0}))
		}), codes.InvalidArgument,
			"push from w7: row " + itoa(mine[2]) + " holds a non-finite value"},
		{"push Inf", pushTo(s, func(r *pushReq) {
			r.Rows[0] = rows(t, input, mine[:1], 4, []float32{float32(math.Inf(-1)), 0, 0, 0})
		}), codes.InvalidArgument,
			"push from w7: row " + itoa(mine[0]) + " holds a non-finite value"},
		{"push wrong dim", pushTo(s, func(r *pushReq) {
			r.Rows[0] = rows(t, input, mine[:1], 2, []float32{1, 2})
		}), codes.InvalidArgument, "rows[0] has dim 2, the job's dim is 4"},
		{"push without ids", pushTo(s, func(r *pushReq) {
			r.Rows[0] = rows(t, input, nil, 4, []float32{1, 2, 3, 4})
		}), codes.InvalidArgument, "rows[0] carries values without row ids"},
		{"push row of another shard", pushTo(s, func(r *pushReq) {
			r.Rows[0] = rows(t, input, theirs[:1], 4, []float32{1, 2, 3, 4})
		}), codes.InvalidArgument, "push from w7: row " + itoa(theirs[0]) + " belongs to shard 1"},
		{"push table not in job", pushTo(onlyInput, func(r *pushReq) {
			r.Rows[0].Table = output
		}), codes.InvalidArgument, "table TABLE_OUTPUT is not part of job"},
		{"push corrupt rows", pushTo(s, func(r *pushReq) {
			r.Rows[0].Payload = r.Rows[0].Payload[:len(r.Rows[0].Payload)-1]
		}), codes.InvalidArgument, "rows[0]: payload: corrupt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if status.Code(err) != tc.code {
				t.Fatalf("code %v (%v), want %v", status.Code(err), err, tc.code)
			}
			if msg := status.Convert(err).Message(); !strings.Contains(msg, tc.msg) {
				t.Errorf("message %q lacks %q", msg, tc.msg)
			}
		})
	}
}

// Short names for the request types in tables of cases.
type (
	cfgReq  = skipgridpb.ConfigureRequest
	pullReq = skipgridpb.PullRequest
	pushReq = skipgridpb.PushRequest
)

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

func TestPullFloat16Overflow(t *testing.T) {
	s := configured(t, 0, 1)
	// OUTPUT starts at zero; after this push row 0 holds 70000, beyond float16's 65504.
	big := rows(t, output, []uint32{0}, 4, []float32{70000, 0, 0, 0})
	if _, err := push(t, s, big); err != nil {
		t.Fatal(err)
	}
	_, err := s.Pull(context.Background(), &skipgridpb.PullRequest{Sender: "w", JobId: testJob,
		Keys:       []*skipgridpb.Keys{keys(t, output, []uint32{0})},
		ValueCodec: uint32(payload.ValuesFloat16)})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("float16 pull of 70000: %v, want FailedPrecondition", err)
	}
}

func TestPullCodecs(t *testing.T) {
	s := configured(t, 0, 1)
	ids := []uint32{0, 3, 999}
	want := pull(t, s, input, ids)
	for _, codec := range []payload.ValueCodec{payload.ValuesFloat32, payload.ValuesFloat16} {
		for _, c := range []payload.Compression{payload.CompressNone, payload.CompressS2,
			payload.CompressZstd} {
			resp, err := s.Pull(context.Background(), &skipgridpb.PullRequest{
				Sender: "w", JobId: testJob, Keys: []*skipgridpb.Keys{keys(t, input, ids)},
				ValueCodec: uint32(codec), Compression: uint32(c)})
			if err != nil {
				t.Fatal(err)
			}
			p := resp.GetRows()[0].GetPayload()
			// Byte 1 of the payload is its flags: codec in bits 1-2, compression in 3-4.
			if got, wantFlags := p[1], byte(codec)<<1|byte(c)<<3; got != wantFlags {
				t.Errorf("%s/%s: flags %#02x, want %#02x", codec, c, got, wantFlags)
			}
			var blk payload.Block
			if err := payload.Decode(p, payload.DefaultLimits(), &blk); err != nil {
				t.Fatal(err)
			}
			// float16 keeps 11 significant bits: each value within 2^-11 of it, relatively
			// (values here are at least 2^-14 in magnitude or tiny enough for 2^-25).
			for i, v := range blk.Values {
				tol := float64(0)
				if codec == payload.ValuesFloat16 {
					tol = max(math.Abs(float64(want[i]))/2048, 0x1p-25)
				}
				if math.Abs(float64(v-want[i])) > tol {
					t.Errorf("%s/%s: value %d is %g, want %g within %g", codec, c, i, v,
						want[i], tol)
				}
			}
		}
	}
}

func TestRejectedPushLeavesTablesUntouched(t *testing.T) {
	var logs bytes.Buffer
	cfg := DefaultConfig()
	cfg.Logger = slog.New(slog.NewJSONHandler(&logs,
		&slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Configure(context.Background(), configureReq(0, 1)); err != nil {
		t.Fatal(err)
	}
	all := owned(t, 0, 1)
	beforeIn, beforeOut := pull(t, s, input, all), pull(t, s, output, all)

	// Two valid blocks, then a block whose second row holds a NaN.
	_, err = s.Push(context.Background(), &skipgridpb.PushRequest{Sender: "worker-3",
		JobId: testJob, Rows: []*skipgridpb.Rows{
			rows(t, input, []uint32{1, 2}, 4, []float32{1, 1, 1, 1, 2, 2, 2, 2}),
			rows(t, output, []uint32{1}, 4, []float32{3, 3, 3, 3}),
			rows(t, output, []uint32{5, 6}, 4, []float32{1, 1, 1, 1, 1, float32(math.NaN()), 1, 1}),
		}})
	wantMsg := "push from worker-3: row 6 holds a non-finite value"
	if status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != wantMsg {
		t.Fatalf("push with NaN: %v; want InvalidArgument %q", err, wantMsg)
	}

	if diff := cmp.Diff(beforeIn, pull(t, s, input, all), bitwise); diff != "" {
		t.Errorf("INPUT changed by a rejected push (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(beforeOut, pull(t, s, output, all), bitwise); diff != "" {
		t.Errorf("OUTPUT changed by a rejected push (-before +after):\n%s", diff)
	}
	st, _ := s.Stats(context.Background(), &skipgridpb.StatsRequest{})
	if st.GetPushesRejected() != 1 || st.GetPushes() != 0 || st.GetRowsPushed() != 0 {
		t.Errorf("stats after a rejected push: %v; want 1 rejected, 0 pushes, 0 rows", st)
	}
	var line struct{ Msg, Sender string }
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil || line.Msg != "push rejected" ||
		line.Sender != "worker-3" {
		t.Errorf("log %q (%v); want one \"push rejected\" line with sender worker-3",
			logs.String(), err)
	}
}

// TestConcurrentPushesSum runs pushes from many goroutines to overlapping rows, with pulls
// between them, and checks every row holds exactly the sum. Deltas are multiples of 1/8 and
// sums stay below 2^10, so float32 adds them exactly in any order. Run it under -race.
func TestConcurrentPushesSum(t *testing.T) {
	s := configured(t, 0, 1)
	const goroutines, pushesEach, rowsPer = 8, 40, 30
	delta := func(g, p, r, d int) float32 { return float32((g+p+r+d)%5+1) / 8 }

	var wg sync.WaitGroup
	errs := make(chan error, goroutines*2)
	for g := range goroutines {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for p := range pushesEach {
				// Rows g, g+1, ... g+rowsPer-1: every goroutine overlaps its neighbours.
				ids := make([]uint32, rowsPer)
				vals := make([]float32, 0, rowsPer*testDim)
				for r := range rowsPer {
					ids[r] = uint32(g + r)
					for d := range testDim {
						vals = append(vals, delta(g, p, g+r, d))
					}
				}
				b, _ := payload.Encode(nil, ids, testDim, vals, payload.Options{})
				_, err := s.Push(context.Background(), &skipgridpb.PushRequest{Sender: "w",
					JobId: testJob, Rows: []*skipgridpb.Rows{{Table: output, Payload: b}}})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range pushesEach {
				k, _ := payload.Encode(nil, []uint32{0, 10, 20, 30}, 0, nil, payload.Options{})
				_, err := s.Pull(context.Background(), &skipgridpb.PullRequest{Sender: "r",
					JobId: testJob, Keys: []*skipgridpb.Keys{{Table: output, Payload: k}}})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// Row id receives delta(g, p, id, d) from every goroutine g with g <= id < g+rowsPer.
	n := goroutines + rowsPer - 1
	ids := make([]uint32, n)
	want := make([]float32, n*testDim)
	for id := range n {
		ids[id] = uint32(id)
		for d := range testDim {
			var sum float64
			for g := range goroutines {
				if g <= id && id < g+rowsPer {
					for p := range pushesEach {
						sum += float64(delta(g, p, id, d))
					}
				}
			}
			want[id*testDim+d] = float32(sum)
		}
	}
	if diff := cmp.Diff(want, pull(t, s, output, ids), bitwise); diff != "" {
		t.Errorf("rows after concurrent pushes (-want +got):\n%s", diff)
	}
	st, _ := s.Stats(context.Background(), &skipgridpb.StatsRequest{})
	if want := uint64(goroutines * pushesEach * rowsPer); st.GetRowsPushed() != want {
		t.Errorf("rows_pushed %d, want %d", st.GetRowsPushed(), want)
	}
}

func TestStatsAndMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := DefaultConfig()
	cfg.Shard = 2
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.Registerer = reg
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg); err == nil {
		t.Error("a second server of shard 2 registered on the same registry")
	}
	if _, err := s.Configure(context.Background(), configureReq(2, 3)); err != nil {
		t.Fatal(err)
	}
	ids := owned(t, 2, 3)

	pull(t, s, input, ids[:5])                                    // 1 pull, 5 rows
	pull(t, s, output, ids[:2])                                   // 1 pull, 2 rows
	push(t, s, rows(t, input, ids[:3], 4, make([]float32, 12)))   // 1 push, 3 rows
	push(t, s, rows(t, input, ids[:1], 4, []float32{0, 0, 0, 1})) // 1 push, 1 row
	push(t, s, rows(t, input, ids[:1], 3, []float32{0, 0, 0}))    // rejected: dim 3

	local := uint64(len(ids))
	want := &skipgridpb.StatsResponse{Shard: 2, LocalRows: local, Dim: 4,
		TableBytes: 2 * local * 4 * 4, Pulls: 2, Pushes: 2, RowsPulled: 7, RowsPushed: 4,
		PushesRejected: 1,
		// No checkpoint yet: every push counts as one a crash would lose.
		PushesSinceCheckpoint: 2, RowsPushedSinceCheckpoint: 4, Incarnation: s.Incarnation()}
	st, _ := s.Stats(context.Background(), &skipgridpb.StatsRequest{})
	if diff := cmp.Diff(want, st, protocmp.Transform()); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		m := f.GetMetric()[0]
		if l := m.GetLabel(); len(l) != 1 || l[0].GetName() != "shard" || l[0].GetValue() != "2" {
			t.Errorf("%s labels %v, want shard=2", f.GetName(), l)
		}
		got[f.GetName()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	wantMetrics := map[string]float64{
		"skipgrid_ps_pulls_total": 2, "skipgrid_ps_pushes_total": 2,
		"skipgrid_ps_rows_pulled_total": 7, "skipgrid_ps_rows_pushed_total": 4,
		"skipgrid_ps_pushes_rejected_total": 1, "skipgrid_ps_table_bytes": float64(2 * local * 16),
		"skipgrid_ps_local_rows": float64(local),
	}
	if diff := cmp.Diff(wantMetrics, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
}

func TestStatsBeforeConfigure(t *testing.T) {
	s := newServer(t, 3)
	st, err := s.Stats(context.Background(), &skipgridpb.StatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := &skipgridpb.StatsResponse{Shard: 3, Incarnation: s.Incarnation()}
	if diff := cmp.Diff(want, st, protocmp.Transform()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
