package query

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/skipgrid/skipgrid/proto/payload"
	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/shard"
	"github.com/skipgrid/skipgrid/vectors"
)

// ClusterConfig configures a ClusterSource.
type ClusterConfig struct {
	// Coordinator is the job's coordinator: GetJob gives the shard
	// addresses, the dimension and the vocabulary size, GetVocab the words.
	Coordinator skipgridpb.CoordinatorClient
	// Dial returns a client of the PS shard at addr. The source keeps each
	// client for the life of the source, by address; closing connections is
	// the business of whoever owns Dial.
	Dial func(ctx context.Context, addr string) (skipgridpb.ParameterServerClient, error)
	// Name is the sender name the source gives in its calls.
	Name string
	// PageRows is the most rows one pull asks a shard for.
	PageRows int
	// Parallel is the most shards pulled from at once.
	Parallel int
	// Timeout bounds each call to the coordinator or a shard.
	Timeout time.Duration
	// Index configures the indexes built.
	Index Config
	// Logger receives debug logs of each load; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultClusterConfig returns a configuration without the coordinator and
// Dial, which the caller must set: sender name "query", pages of 8192
// rows, 4 shards at once, 30 s a call, DefaultConfig() indexes.
func DefaultClusterConfig() ClusterConfig {
	return ClusterConfig{Name: "query", PageRows: 8192, Parallel: 4, Timeout: 30 * time.Second,
		Index: DefaultConfig()}
}

// Validate reports every problem with c at once.
func (c ClusterConfig) Validate() error {
	var errs []error
	if c.Coordinator == nil {
		errs = append(errs, errors.New("cluster source: Coordinator is nil"))
	}
	if c.Dial == nil {
		errs = append(errs, errors.New("cluster source: Dial is nil"))
	}
	if c.Name == "" {
		errs = append(errs, errors.New("cluster source: Name is empty; the shards refuse "+
			"calls without a sender"))
	}
	if lim := payload.DefaultLimits().MaxRows; c.PageRows < 1 || c.PageRows > lim {
		errs = append(errs, fmt.Errorf("cluster source: PageRows is %d, must be in [1, %d]",
			c.PageRows, lim))
	}
	if c.Parallel < 1 {
		errs = append(errs, fmt.Errorf("cluster source: Parallel is %d, must be at least 1",
			c.Parallel))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("cluster source: Timeout is %v, must be positive",
			c.Timeout))
	}
	if err := c.Index.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("cluster source: %w", err))
	}
	return errors.Join(errs...)
}

// ClusterSource loads the input vectors of a running job from its
// parameter-server shards. Each Load asks the coordinator for the job and
// the vocabulary, then pulls every row of the input table from the shard
// that owns it, a page at a time; rows are read while training pushes, so
// an index mixes rows from slightly different moments, as the shards
// themselves do (see package ps).
type ClusterSource struct {
	cfg ClusterConfig
	log *slog.Logger

	mu struct {
		sync.Mutex
		clients map[string]skipgridpb.ParameterServerClient
		// plan is the rows of each shard for planRows rows over
		// len(plan) shards, kept since it takes a pass over every row.
		plan     [][]uint32
		planRows uint64
	}
}

// NewClusterSource returns a source for the job cfg.Coordinator runs.
func NewClusterSource(cfg ClusterConfig) (*ClusterSource, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &ClusterSource{cfg: cfg, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.mu.clients = make(map[string]skipgridpb.ParameterServerClient)
	return s, nil
}

// String returns "cluster".
func (s *ClusterSource) String() string { return "cluster" }

// Load builds an index of the job's input vectors as the shards hold them
// now. Before the job trains (no vocabulary, or shards not all registered)
// it fails with an error wrapping ErrNotReady; rows holding NaN or infinite
// values fail it too.
func (s *ClusterSource) Load(ctx context.Context) (*Index, error) {
	spec, words, err := s.job(ctx)
	if err != nil {
		return nil, err
	}
	addrs, dim, n := spec.GetPsAddresses(), int(spec.GetDim()), len(words)
	plan, err := s.plan(uint64(n), len(addrs))
	if err != nil {
		return nil, err
	}

	v := &vectors.Vectors{Words: words, Dim: dim, Data: make([]float32, n*dim)}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.cfg.Parallel)
	for sh, addr := range addrs {
		g.Go(func() error { return s.pullShard(gctx, spec, sh, addr, plan[sh], v) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return adopt(v, s.cfg.Index)
}

// job returns the job's spec and words, checking that its vectors exist.
func (s *ClusterSource) job(ctx context.Context) (*skipgridpb.JobSpec, []string, error) {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	spec, err := s.cfg.Coordinator.GetJob(cctx, &skipgridpb.GetJobRequest{Name: s.cfg.Name})
	if err != nil {
		return nil, nil, fmt.Errorf("get job from the coordinator: %w", err)
	}
	if err := checkSpec(spec); err != nil {
		return nil, nil, err
	}

	voc, err := s.cfg.Coordinator.GetVocab(cctx, &skipgridpb.GetVocabRequest{Name: s.cfg.Name})
	if err != nil {
		return nil, nil, fmt.Errorf("get vocabulary from the coordinator: %w", err)
	}
	if uint64(len(voc.GetWords())) != spec.GetVocabSize() {
		return nil, nil, fmt.Errorf("the coordinator's vocabulary has %d words and its job "+
			"%d rows", len(voc.GetWords()), spec.GetVocabSize())
	}
	return spec, voc.GetWords(), nil
}

// checkSpec says why a job's vectors cannot be read yet, or at all.
func checkSpec(spec *skipgridpb.JobSpec) error {
	switch spec.GetPhase() {
	case skipgridpb.Phase_PHASE_TRAINING, skipgridpb.Phase_PHASE_GATHERING,
		skipgridpb.Phase_PHASE_DONE:
	case skipgridpb.Phase_PHASE_FAILED:
		return fmt.Errorf("job %q failed; its vectors are not served", spec.GetJobId())
	default:
		return fmt.Errorf("%w: job %q is in phase %v; vectors exist once training starts",
			ErrNotReady, spec.GetJobId(), spec.GetPhase())
	}
	if spec.GetDim() < 1 || spec.GetVocabSize() == 0 || spec.GetVocabSize() > maxRows {
		return fmt.Errorf("%w: job %q has dimension %d and %d rows", ErrNotReady,
			spec.GetJobId(), spec.GetDim(), spec.GetVocabSize())
	}
	addrs := spec.GetPsAddresses()
	if len(addrs) == 0 {
		return fmt.Errorf("%w: job %q lists no parameter-server shards", ErrNotReady,
			spec.GetJobId())
	}
	for i, a := range addrs {
		if a == "" {
			return fmt.Errorf("%w: shard %d of job %q has not registered", ErrNotReady, i,
				spec.GetJobId())
		}
	}
	return nil
}

// plan returns the rows of each shard, ascending, for rows rows over shards
// shards.
func (s *ClusterSource) plan(rows uint64, shards int) ([][]uint32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.plan != nil && s.mu.planRows == rows && len(s.mu.plan) == shards {
		return s.mu.plan, nil
	}
	m, err := shard.NewMap(rows, shards)
	if err != nil {
		return nil, fmt.Errorf("shard map of the job: %w", err)
	}
	plan := make([][]uint32, shards)
	for sh := range plan {
		plan[sh] = m.ShardRows(sh)
	}
	s.mu.plan, s.mu.planRows = plan, rows
	return plan, nil
}

// client returns the cached client of the shard at addr, dialling it the
// first time.
func (s *ClusterSource) client(ctx context.Context, addr string) (
	skipgridpb.ParameterServerClient, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.mu.clients[addr]; ok {
		return c, nil
	}
	c, err := s.cfg.Dial(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("dial PS shard at %s: %w", addr, err)
	}
	s.mu.clients[addr] = c
	return c, nil
}

// pullShard pulls the input rows ids of shard sh into v, a page at a time.
func (s *ClusterSource) pullShard(ctx context.Context, spec *skipgridpb.JobSpec, sh int,
	addr string, ids []uint32, v *vectors.Vectors) error {
	cl, err := s.client(ctx, addr)
	if err != nil {
		return err
	}
	comp := payload.Compression(spec.GetCompression())
	if !comp.Valid() {
		comp = payload.CompressNone
	}

	var blk payload.Block
	for lo := 0; lo < len(ids); lo += s.cfg.PageRows {
		page := ids[lo:min(lo+s.cfg.PageRows, len(ids))]
		what := fmt.Sprintf("pull input rows %d..%d (%d rows) from PS shard %d at %s",
			page[0], page[len(page)-1], len(page), sh, addr)
		b, err := s.pullPage(ctx, cl, spec, page, comp)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := decodePage(b, page, v, &blk); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	s.log.Debug("pulled shard", "shard", sh, "addr", addr, "rows", len(ids))
	return nil
}

// pullPage pulls the input rows page and returns the answer's payload.
func (s *ClusterSource) pullPage(ctx context.Context, cl skipgridpb.ParameterServerClient,
	spec *skipgridpb.JobSpec, page []uint32, comp payload.Compression) ([]byte, error) {
	keys, err := payload.Encode(nil, page, 0, nil, payload.Options{Compress: comp})
	if err != nil {
		return nil, fmt.Errorf("encode keys: %w", err)
	}
	req := &skipgridpb.PullRequest{
		Sender: s.cfg.Name, JobId: spec.GetJobId(),
		Keys:       []*skipgridpb.Keys{{Table: skipgridpb.Table_TABLE_INPUT, Payload: keys}},
		ValueCodec: uint32(payload.ValuesFloat32), Compression: uint32(comp),
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	resp, err := cl.Pull(cctx, req)
	if err != nil {
		return nil, err
	}
	rows := resp.GetRows()
	if len(rows) != 1 || rows[0].GetTable() != skipgridpb.Table_TABLE_INPUT {
		return nil, fmt.Errorf("the answer holds %d row blocks, want one of the input table",
			len(rows))
	}
	return rows[0].GetPayload(), nil
}

// decodePage decodes the values of the rows page from b into v, checking
// their shape and that every value is finite.
func decodePage(b []byte, page []uint32, v *vectors.Vectors, blk *payload.Block) error {
	lim := payload.Limits{MaxRows: len(page), MaxDim: v.Dim,
		MaxBytes: len(page) * (4*v.Dim + 5)}
	if err := payload.Decode(b, lim, blk); err != nil {
		return fmt.Errorf("decode values: %w", err)
	}
	if blk.N != len(page) || blk.Dim != v.Dim {
		return fmt.Errorf("the answer holds %d rows of dim %d, want %d of dim %d", blk.N,
			blk.Dim, len(page), v.Dim)
	}
	for i, id := range page {
		row := blk.Row(i)
		for j, f := range row {
			if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
				return fmt.Errorf("row %d (word %q) value %d is %v", id, v.Words[id], j, f)
			}
		}
		copy(v.Row(int(id)), row)
	}
	return nil
}
