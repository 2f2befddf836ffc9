package coordinator

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skipgrid/skipgrid/proto/payload"
	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/shard"
	"github.com/skipgrid/skipgrid/vocab"
)

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

// fakePS is a parameter-server shard for tests: it keeps its input rows in a map by global id
// and initialises row r's value j to r + j/8 (exact in float32). A row listed in nan holds
// NaN instead.
type fakePS struct {
	shard int
	nan   map[uint32]bool

	mu         sync.Mutex
	configures int
	m          *shard.Map
	dim        int
	rows       map[uint32][]float32
}

func initValue(row uint32, j int) float32 { return float32(row) + float32(j)/8 }

func (p *fakePS) Configure(_ context.Context, req *skipgridpb.ConfigureRequest,
	_ ...grpc.CallOption) (*skipgridpb.ConfigureResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.configures++
	if int(req.GetShard()) != p.shard {
		return nil, fmt.Errorf("fake PS %d configured as shard %d", p.shard, req.GetShard())
	}
	m, err := shard.NewMap(req.GetRows(), int(req.GetNumShards()))
	if err != nil {
		return nil, err
	}
	p.m, p.dim = m, int(req.GetDim())
	p.rows = make(map[uint32][]float32)
	for _, id := range m.ShardRows(p.shard) {
		row := make([]float32, p.dim)
		for j := range row {
			row[j] = initValue(id, j)
			if p.nan[id] {
				row[j] = float32(math.NaN())
			}
		}
		p.rows[id] = row
	}
	return &skipgridpb.ConfigureResponse{LocalRows: uint64(len(p.rows))}, nil
}

func (p *fakePS) Pull(_ context.Context, req *skipgridpb.PullRequest,
	_ ...grpc.CallOption) (*skipgridpb.PullResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var resp skipgridpb.PullResponse
	for _, k := range req.GetKeys() {
		var blk payload.Block
		if err := payload.Decode(k.GetPayload(), payload.DefaultLimits(), &blk); err != nil {
			return nil, err
		}
		var values []float32
		for _, id := range blk.IDs {
			row, ok := p.rows[id]
			if !ok {
				return nil, fmt.Errorf("fake PS %d does not own row %d", p.shard, id)
			}
			values = append(values, row...)
		}
		b, err := payload.Encode(nil, nil, p.dim, values,
			payload.Options{Compress: payload.Compression(req.GetCompression())})
		if err != nil {
			return nil, err
		}
		resp.Rows = append(resp.Rows, &skipgridpb.Rows{Table: k.GetTable(), Payload: b})
	}
	return &resp, nil
}

func (p *fakePS) Push(context.Context, *skipgridpb.PushRequest,
	...grpc.CallOption) (*skipgridpb.PushResponse, error) {
	return nil, status.Error(codes.Unimplemented, "fake PS takes no push")
}

func (p *fakePS) Stats(context.Context, *skipgridpb.StatsRequest,
	...grpc.CallOption) (*skipgridpb.StatsResponse, error) {
	return nil, status.Error(codes.Unimplemented, "fake PS keeps no stats")
}

func (p *fakePS) Checkpoint(context.Context, *skipgridpb.CheckpointRequest,
	...grpc.CallOption) (*skipgridpb.CheckpointResponse, error) {
	return nil, status.Error(codes.Unimplemented, "fake PS writes no checkpoints")
}

func (p *fakePS) SetBackups(context.Context, *skipgridpb.SetBackupsRequest,
	...grpc.CallOption) (*skipgridpb.SetBackupsResponse, error) {
	return nil, status.Error(codes.Unimplemented, "fake PS forwards to no backups")
}

// fakeCluster is a coordinator with fake PS shards and a fake clock.
type fakeCluster struct {
	c     *Coordinator
	clock *fakeClock
	ps    []*fakePS
}

func newFakeCluster(t *testing.T, cfg Config) *fakeCluster {
	t.Helper()
	var fakes []*fakePS
	var clients []skipgridpb.ParameterServerClient
	for s := range cfg.NumPS {
		p := &fakePS{shard: s}
		fakes, clients = append(fakes, p), append(clients, p)
	}
	return newClusterOn(t, cfg, fakes, clients)
}

// newClusterOn is a coordinator of cfg with a fake clock, whose dialer reaches clients[s] at
// psAddr(s); fakes are the shards registerPS registers.
func newClusterOn(t *testing.T, cfg Config, fakes []*fakePS,
	clients []skipgridpb.ParameterServerClient) *fakeCluster {
	t.Helper()
	fc := &fakeCluster{clock: &fakeClock{t: t0}, ps: fakes}
	dial := func(_ context.Context, addr string) (skipgridpb.ParameterServerClient, error) {
		for s, cl := range clients {
			if addr == psAddr(s) {
				return cl, nil
			}
		}
		return nil, fmt.Errorf("no fake PS at %s", addr)
	}
	c, err := New(cfg, dial)
	if err != nil {
		t.Fatal(err)
	}
	c.now = fc.clock.Now
	fc.c = c
	return fc
}

func psAddr(s int) string { return fmt.Sprintf("ps%d:7000", s) }

// registerPS registers every fake shard.
func (fc *fakeCluster) registerPS(t *testing.T) {
	t.Helper()
	for s := range fc.ps {
		_, err := fc.c.Register(context.Background(), &skipgridpb.RegisterRequest{
			Role: skipgridpb.Role_ROLE_PS, Name: fmt.Sprintf("ps%d", s), Shard: uint32(s),
			Address: psAddr(s)})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// fakeWorker does a worker's job by calling the coordinator's methods directly. It tokenizes
// with strings.Fields and reads a chunk by the line rule: every line that starts at an
// offset in [start, end).
type fakeWorker struct {
	name  string
	c     *Coordinator
	files map[string][]byte
	voc   *vocab.Vocab
}

func newFakeWorker(t *testing.T, c *Coordinator, name string, paths []string) *fakeWorker {
	t.Helper()
	w := &fakeWorker{name: name, c: c, files: map[string][]byte{}}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		w.files[p] = b
	}
	_, err := c.Register(context.Background(), &skipgridpb.RegisterRequest{
		Role: skipgridpb.Role_ROLE_WORKER, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// lines returns the token lists of the chunk's lines, empty lines included.
func (w *fakeWorker) lines(ch *skipgridpb.Chunk) [][]string {
	data := w.files[ch.GetPath()]
	var out [][]string
	for off := 0; off < len(data); {
		end := bytes.IndexByte(data[off:], '\n')
		next := len(data)
		if end >= 0 {
			next = off + end + 1
		} else {
			end = len(data) - off
		}
		if int64(off) >= ch.GetStart() && int64(off) < ch.GetEnd() {
			out = append(out, strings.Fields(string(data[off:off+end])))
		}
		off = next
	}
	return out
}

// result computes the Complete of a count or train lease. A train result reports loss 0.25
// per word and 8 bytes pulled, 4 pushed per word.
func (w *fakeWorker) result(ctx context.Context, r *skipgridpb.LeaseResponse) (
	*skipgridpb.CompleteRequest, error) {
	req := &skipgridpb.CompleteRequest{Name: w.name, LeaseId: r.GetLeaseId()}
	lines := w.lines(r.GetChunk())
	if r.GetKind() == skipgridpb.TaskKind_TASK_COUNT {
		c := vocab.NewCounter()
		for _, l := range lines {
			req.Lines++
			if len(l) == 0 {
				req.EmptyLines++
			}
			for _, tok := range l {
				c.Add([]byte(tok))
				req.Tokens++
			}
		}
		req.Words, req.Counts = c.Sorted()
		return req, nil
	}

	if w.voc == nil {
		msg, err := w.c.GetVocab(ctx, &skipgridpb.GetVocabRequest{Name: w.name})
		if err != nil {
			return nil, err
		}
		if w.voc, err = vocab.New(msg.GetWords(), msg.GetCounts()); err != nil {
			return nil, err
		}
	}
	for _, l := range lines {
		for _, tok := range l {
			if _, ok := w.voc.ID([]byte(tok)); ok {
				req.WordsTrained++
			}
		}
	}
	req.LossSum = 0.25 * float64(req.WordsTrained)
	req.LossTerms = req.WordsTrained
	req.BytesPulled, req.BytesPushed = 8*req.WordsTrained, 4*req.WordsTrained
	return req, nil
}

// do runs one lease: a heartbeat with half the words, then the result. It reports whether
// the result was accepted.
func (w *fakeWorker) do(ctx context.Context, r *skipgridpb.LeaseResponse) (bool, error) {
	req, err := w.result(ctx, r)
	if err != nil {
		return false, err
	}
	hb, err := w.c.Heartbeat(ctx, &skipgridpb.HeartbeatRequest{Name: w.name,
		LeaseId: r.GetLeaseId(), Words: req.GetWordsTrained() / 2})
	if err != nil || !hb.GetValid() {
		return false, err
	}
	resp, err := w.c.Complete(ctx, req)
	return resp.GetAccepted(), err
}

// lease asks for the next task until it is not TASK_WAIT.
func (w *fakeWorker) lease(ctx context.Context) (*skipgridpb.LeaseResponse, error) {
	for {
		r, err := w.c.Lease(ctx, &skipgridpb.LeaseRequest{Name: w.name})
		if err != nil || r.GetKind() != skipgridpb.TaskKind_TASK_WAIT {
			return r, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// run works until TASK_STOP.
func (w *fakeWorker) run(ctx context.Context) error {
	for {
		r, err := w.lease(ctx)
		if err != nil {
			return err
		}
		if r.GetKind() == skipgridpb.TaskKind_TASK_STOP {
			return nil
		}
		if _, err := w.do(ctx, r); err != nil {
			return err
		}
	}
}
