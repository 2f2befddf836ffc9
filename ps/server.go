package ps

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/shard"
)

// Server is one parameter-server shard. It implements skipgridpb.ParameterServerServer and is
// safe for concurrent use; register it with skipgridpb.RegisterParameterServerServer or call
// its methods directly (the in-memory transport).
type Server struct {
	skipgridpb.UnimplementedParameterServerServer

	cfg Config
	log *slog.Logger

	// configureMu serialises Configure; readers use job without it.
	configureMu sync.Mutex
	// job is set once, by Configure or by New from a checkpoint, and never changed
	// afterwards.
	job atomic.Pointer[job]

	stats counters
	// pool holds per-request scratch buffers (*scratch).
	pool sync.Pool
	// ck is the checkpoint bookkeeping (checkpoint.go).
	ck checkpointState
	// repl is the replication state (replica.go).
	repl replication
}

// counters are the traffic totals Stats and the metrics report.
type counters struct {
	pulls, pushes, rowsPulled, rowsPushed, pushesRejected atomic.Uint64
}

// job is a configured job: the request that configured it, its shard map and its tables.
type job struct {
	req *skipgridpb.ConfigureRequest
	// m is the shard map of ConfigureRequest.rows; a table with rows of its own has its own.
	m     *shard.Map
	shard int
	dim   int
	// localRows is this shard's share of ConfigureRequest.rows.
	localRows int
	// tables is indexed by skipgridpb.Table; nil where the job has no such table.
	tables [numTableKinds]*table
}

// numTableKinds is one past the largest skipgridpb.Table value this build knows.
const numTableKinds = int(skipgridpb.Table_TABLE_CLASSIFIER) + 1

// New returns an unconfigured server, or with Config.CheckpointDir set, a server configured
// from the newest usable checkpoint there (see Checkpoint). It fails when cfg is invalid,
// the checkpoint directory cannot be created or listed, or its metrics cannot be registered
// (for example a second server of the same shard on one Registerer).
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("node", cfg.Name, "shard", cfg.Shard)
	s.pool.New = func() any { return new(scratch) }
	s.ck.incarnation = newIncarnation()
	if err := s.restore(); err != nil {
		return nil, err
	}

	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(newCollector(s)); err != nil {
			return nil, fmt.Errorf("ps: registering metrics of shard %d: %w", cfg.Shard, err)
		}
	}
	return s, nil
}

// Configure allocates and initialises this shard's rows for a job. Repeating the exact same
// request is a no-op (on a shard restored from a checkpoint it answers restored and the
// checkpoint's id, and keeps the restored rows); any other request once configured is
// FailedPrecondition.
func (s *Server) Configure(ctx context.Context, req *skipgridpb.ConfigureRequest) (
	*skipgridpb.ConfigureResponse, error) {
	if err := s.checkConfigure(req); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}

	s.configureMu.Lock()
	defer s.configureMu.Unlock()

	if j := s.job.Load(); j != nil {
		if proto.Equal(j.req, req) {
			return s.configuredResponse(j), nil
		}
		return nil, status.Errorf(codes.FailedPrecondition, "configure: shard %d already "+
			"serves job %q (%d rows, dim %d, %d shards) and a different configuration needs "+
			"a fresh shard%s", s.cfg.Shard, j.req.GetJobId(), j.req.GetRows(), j.dim,
			j.req.GetNumShards(), s.restoredHint())
	}

	start := time.Now()
	j, err := s.buildJob(ctx, req)
	if err != nil {
		return nil, err
	}
	s.job.Store(j)
	s.log.Info("configured", "job", req.GetJobId(), "rows", req.GetRows(),
		"local_rows", j.localRows, "dim", j.dim, "tables", len(req.GetTables()),
		"took", time.Since(start))
	return &skipgridpb.ConfigureResponse{LocalRows: uint64(j.localRows)}, nil
}

// buildJob makes the shard map and the initialised tables of req, which has been checked.
func (s *Server) buildJob(ctx context.Context, req *skipgridpb.ConfigureRequest) (*job, error) {
	m, err := shard.NewMap(req.GetRows(), int(req.GetNumShards()))
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "configure: %v", err)
	}
	ids := m.ShardRows(s.cfg.Shard)
	j := &job{
		req:       proto.Clone(req).(*skipgridpb.ConfigureRequest),
		m:         m,
		shard:     s.cfg.Shard,
		dim:       int(req.GetDim()),
		localRows: len(ids),
	}

	// TODO(skipgrid): refuse tables larger than the memory the node may use, because an
	// oversized job now fails only when the allocation does.
	for _, spec := range req.GetTables() {
		if err := ctx.Err(); err != nil {
			return nil, status.FromContextError(err).Err()
		}
		tm, tids := m, ids
		if r := spec.GetRows(); r != 0 && r != req.GetRows() {
			if tm, err = shard.NewMap(r, int(req.GetNumShards())); err != nil {
				return nil, status.Errorf(codes.InvalidArgument, "configure: table %v: %v",
					spec.GetTable(), err)
			}
			tids = tm.ShardRows(s.cfg.Shard)
		}
		t := newTable(spec.GetTable(), tm, len(tids), j.dim)
		if spec.GetInit() == skipgridpb.Init_INIT_UNIFORM {
			for l, id := range tids {
				InitRow(req.GetSeed(), spec.GetTable(), id, t.row(uint32(l)))
			}
		}
		j.tables[spec.GetTable()] = t
	}
	return j, nil
}

// checkConfigure reports every problem with a Configure request at once.
func (s *Server) checkConfigure(req *skipgridpb.ConfigureRequest) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if req.GetJobId() == "" {
		bad("job_id is empty")
	}
	if int(req.GetShard()) != s.cfg.Shard {
		bad("request for shard %d reached shard %d", req.GetShard(), s.cfg.Shard)
	}
	if n := req.GetNumShards(); n == 0 || n > maxShard+1 || req.GetShard() >= n {
		bad("num_shards is %d, must be in [1, %d] and above shard %d", n, maxShard+1,
			req.GetShard())
	}
	if r := req.GetRows(); r == 0 || r > 1<<32 {
		bad("rows is %d, must be in [1, 2^32]", r)
	}
	if d := req.GetDim(); d == 0 || int64(d) > int64(s.cfg.Limits.MaxDim) {
		bad("dim is %d, must be in [1, %d] (Limits.MaxDim)", d, s.cfg.Limits.MaxDim)
	}
	if len(req.GetTables()) == 0 {
		bad("no tables")
	}
	var seen [numTableKinds]bool
	for i, spec := range req.GetTables() {
		t, init := spec.GetTable(), spec.GetInit()
		switch {
		case t <= skipgridpb.Table_TABLE_UNSPECIFIED || int(t) >= numTableKinds:
			bad("tables[%d]: table %v is unknown", i, t)
		case seen[t]:
			bad("tables[%d]: table %v is listed twice", i, t)
		default:
			seen[t] = true
		}
		if init != skipgridpb.Init_INIT_ZERO && init != skipgridpb.Init_INIT_UNIFORM {
			bad("tables[%d]: init %v is unknown", i, init)
		}
		if r := spec.GetRows(); r > 1<<32 {
			bad("tables[%d]: rows is %d, must be at most 2^32 (0: the request's rows)", i, r)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("configure job %q: %w", req.GetJobId(), err)
	}
	return nil
}

// Stats reports the shard's size and traffic. It answers before Configure too, with zero size.
func (s *Server) Stats(context.Context, *skipgridpb.StatsRequest) (*skipgridpb.StatsResponse,
	error) {
	resp := &skipgridpb.StatsResponse{
		Shard:          uint32(s.cfg.Shard),
		Pulls:          s.stats.pulls.Load(),
		Pushes:         s.stats.pushes.Load(),
		RowsPulled:     s.stats.rowsPulled.Load(),
		RowsPushed:     s.stats.rowsPushed.Load(),
		PushesRejected: s.stats.pushesRejected.Load(),
	}
	if j := s.job.Load(); j != nil {
		resp.LocalRows = uint64(j.localRows)
		resp.Dim = uint32(j.dim)
		resp.TableBytes = j.tableBytes()
	}
	s.fillCheckpointStats(resp)
	s.replicationStats(resp)
	return resp, nil
}

// jobFor returns the configured job if its id is jobID. Before Configure the error is
// Unavailable, which callers retry: the coordinator configures a shard before training,
// and again when the shard restarted without a checkpoint. Another job's id is
// FailedPrecondition.
func (s *Server) jobFor(op, sender, jobID string) (*job, error) {
	j := s.job.Load()
	if j == nil {
		return nil, status.Errorf(codes.Unavailable, "%s from %s: shard %d is not "+
			"configured yet; the coordinator configures it before training", op, sender,
			s.cfg.Shard)
	}
	if jobID != j.req.GetJobId() {
		return nil, status.Errorf(codes.FailedPrecondition, "%s from %s: shard %d serves job "+
			"%q, not %q", op, sender, s.cfg.Shard, j.req.GetJobId(), jobID)
	}
	return j, nil
}

// table returns the job's table t, or an InvalidArgument error.
func (j *job) table(op, sender string, t skipgridpb.Table) (*table, error) {
	if t >= 0 && int(t) < numTableKinds && j.tables[t] != nil {
		return j.tables[t], nil
	}
	return nil, status.Errorf(codes.InvalidArgument, "%s from %s: table %v is not part of "+
		"job %q", op, sender, t, j.req.GetJobId())
}

// checkIDs returns an InvalidArgument error for the first id of table t that is out of range
// or owned by another shard.
func (j *job) checkIDs(op, sender string, t *table, ids []uint32) error {
	rows := t.m.Rows()
	for _, id := range ids {
		if uint64(id) >= rows {
			return status.Errorf(codes.InvalidArgument, "%s from %s: row %d is out of range "+
				"(table %v of job %q has %d rows)", op, sender, id, t.id, j.req.GetJobId(), rows)
		}
		if owner := t.m.Shard(id); owner != j.shard {
			return status.Errorf(codes.InvalidArgument, "%s from %s: row %d belongs to "+
				"shard %d, not shard %d", op, sender, id, owner, j.shard)
		}
	}
	return nil
}

func (j *job) tableBytes() uint64 {
	var n uint64
	for _, t := range j.tables {
		if t != nil {
			n += t.bytes()
		}
	}
	return n
}
