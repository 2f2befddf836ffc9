package coordinator

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

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// ErrJobFailed is wrapped by the error Run returns when the job failed: a node reported a
// failure, the progress accounting did not add up, or a chunk used up its attempts.
var ErrJobFailed = errors.New("job failed")

// Coordinator runs one job. It implements skipgridpb.CoordinatorServer; its handlers are safe
// for concurrent use, never block on I/O, and may be called before Run starts (they answer
// TASK_WAIT until there is work).
type Coordinator struct {
	skipgridpb.UnimplementedCoordinatorServer

	cfg  Config
	dial Dialer
	log  *slog.Logger
	// now is the clock; tests replace it before Run.
	now func() time.Time
	// wake has room for one signal; handlers post to it after a change so that Run looks
	// at the state at once rather than at its next poll.
	wake chan struct{}
	ran  atomic.Bool
	// mon keeps the history and the shards' stats for the status page.
	mon *monitor
	// st saves and restores the job's state.
	st *stateKeeper

	mu struct {
		sync.Mutex
		core *core
		// vocabMsg caches the GetVocab answer once the vocabulary is built.
		vocabMsg *skipgridpb.Vocab
		// times records phase boundaries for Result and Status.
		times phaseTimes
		// ft is a fine-tuning job's labels and sizes, once its labelled file is read.
		ft *finetuneState
	}
}

// New checks cfg and returns a coordinator in PHASE_STARTING, or with cfg.Resume, in the
// phase of the job saved in the state directory (the only I/O New does is reading that
// state; a saved state of another job is an error wrapping ErrStateMismatch). dial is used
// by Run to reach the PS shards. Metrics are registered with cfg.Registerer when it is set.
func New(cfg Config, dial Dialer) (*Coordinator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("coordinator config: %w", err)
	}
	if dial == nil {
		return nil, errors.New("coordinator: no dialer given")
	}
	if err := cfg.CheckOutDir(); err != nil {
		return nil, err
	}
	if err := cfg.CheckNoStoppedJob(); err != nil {
		return nil, err
	}
	cfg.Alpha, cfg.MinAlpha = cfg.EffectiveAlpha()
	cfg.Corpus = append([]string(nil), cfg.Corpus...)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("role", "coordinator", "job", cfg.JobID)

	c := &Coordinator{cfg: cfg, dial: dial, log: log, now: time.Now,
		wake: make(chan struct{}, 1), mon: newMonitor(cfg)}
	set := coreSettings{NumPS: cfg.NumPS, Epochs: cfg.Epochs, LeaseTimeout: cfg.LeaseTimeout,
		MaxAttempts: cfg.MaxAttempts, Alpha: cfg.Alpha, MinAlpha: cfg.MinAlpha,
		Replicas: cfg.Replicas}
	c.mu.core = newCore(set, log, c.now())
	if err := c.openState(); err != nil {
		return nil, err
	}

	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(&collector{c: c}); err != nil {
			return nil, fmt.Errorf("coordinator: register metrics: %w", err)
		}
	}
	return c, nil
}

// locked runs f with the core under the mutex, then wakes Run.
func (c *Coordinator) locked(f func(co *core, now time.Time)) {
	c.mu.Lock()
	f(c.mu.core, c.now())
	c.mu.Unlock()

	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// NodeFailed releases at once the leases of the node called name (memberlist saw it die).
// Unknown names are ignored.
func (c *Coordinator) NodeFailed(name string) {
	c.locked(func(co *core, _ time.Time) { co.nodeFailed(name) })
}

// Register records a worker or a PS shard.
func (c *Coordinator) Register(_ context.Context, req *skipgridpb.RegisterRequest) (
	*skipgridpb.RegisterResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "register: empty node name")
	}

	var err error
	c.locked(func(co *core, now time.Time) {
		switch req.GetRole() {
		case skipgridpb.Role_ROLE_PS:
			err = co.registerCopy(req.GetName(), req.GetShard(), req.GetReplica(),
				req.GetAddress())
		case skipgridpb.Role_ROLE_WORKER:
			if co.registerWorker(req.GetName(), now) {
				c.log.Info("worker registered", "worker", req.GetName())
			}
		default:
			err = fmt.Errorf("%w: node %q registers as %v; only PS shards and workers register",
				errBadRequest, req.GetName(), req.GetRole())
		}
	})
	if err != nil {
		c.log.Warn("registration refused", "node", req.GetName(), "node_role", req.GetRole(),
			"shard", req.GetShard(), "replica", req.GetReplica(), "err", err)
		return nil, rpcError("register", err)
	}
	return &skipgridpb.RegisterResponse{JobId: c.cfg.JobID}, nil
}

// GetJob returns the job's settings, phase and PS addresses; vocab_size and train_words once
// the vocabulary is built.
func (c *Coordinator) GetJob(context.Context, *skipgridpb.GetJobRequest) (*skipgridpb.JobSpec,
	error) {
	spec := c.jobSpec()
	c.locked(func(co *core, _ time.Time) {
		spec.Phase = co.Phase
		spec.PsAddresses = co.psAddresses()
		if co.Vocab != nil {
			spec.VocabSize = uint64(co.Vocab.Len())
			spec.TrainWords = co.TrainWords
		}
		c.fillFinetuneLocked(spec)
	})
	return spec, nil
}

// jobSpec returns the fixed part of the JobSpec.
func (c *Coordinator) jobSpec() *skipgridpb.JobSpec {
	cfg := c.cfg
	return &skipgridpb.JobSpec{
		JobId:          cfg.JobID,
		Model:          cfg.Model,
		Dim:            uint32(cfg.Dim),
		Window:         uint32(cfg.Window),
		Negative:       uint32(cfg.Negative),
		Sample:         cfg.Sample,
		Alpha:          cfg.Alpha,
		MinAlpha:       cfg.MinAlpha,
		Epochs:         uint32(cfg.Epochs),
		Seed:           cfg.Seed,
		Tokenizer:      cfg.Tokenizer,
		MaxSentenceLen: uint32(cfg.MaxSentenceLen),
		BatchWords:     uint32(cfg.BatchWords),
		ValueCodec:     uint32(cfg.ValueCodec),
		Compression:    uint32(cfg.Compression),
		LeaseMs:        uint32(cfg.LeaseTimeout / time.Millisecond),
		Replicas:       uint32(cfg.Replicas),
	}
}

// GetVocab returns the final vocabulary; FailedPrecondition until it is built.
func (c *Coordinator) GetVocab(context.Context, *skipgridpb.GetVocabRequest) (*skipgridpb.Vocab,
	error) {
	c.mu.Lock()
	msg := c.mu.vocabMsg
	phase := c.mu.core.Phase
	c.mu.Unlock()
	if msg == nil {
		return nil, status.Errorf(codes.FailedPrecondition,
			"get vocab: the vocabulary is not built yet (phase %s); ask again later",
			phaseName(phase))
	}
	// NB: the message shares the vocabulary's slices; callers must not modify it.
	return msg, nil
}

// Lease hands the caller its next task.
func (c *Coordinator) Lease(_ context.Context, req *skipgridpb.LeaseRequest) (
	*skipgridpb.LeaseResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "lease: empty node name")
	}
	var resp *skipgridpb.LeaseResponse
	c.locked(func(co *core, now time.Time) { resp = co.lease(req.GetName(), now) })
	return resp, nil
}

// Heartbeat extends a lease and records its progress.
func (c *Coordinator) Heartbeat(_ context.Context, req *skipgridpb.HeartbeatRequest) (
	*skipgridpb.HeartbeatResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "heartbeat: empty node name")
	}
	resp := &skipgridpb.HeartbeatResponse{}
	c.locked(func(co *core, now time.Time) {
		resp.Valid, resp.WordsDone = co.heartbeat(req.GetName(), req.GetLeaseId(),
			req.GetWords(), now)
	})
	return resp, nil
}

// Complete takes the result of a lease.
func (c *Coordinator) Complete(_ context.Context, req *skipgridpb.CompleteRequest) (
	*skipgridpb.CompleteResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "complete: empty node name")
	}
	var accepted bool
	var err error
	c.locked(func(co *core, now time.Time) { accepted, err = co.complete(req, now) })
	if err != nil {
		return nil, rpcError("complete", err)
	}
	return &skipgridpb.CompleteResponse{Accepted: accepted}, nil
}

// Fail fails the job with the reporter's reason.
func (c *Coordinator) Fail(_ context.Context, req *skipgridpb.FailRequest) (
	*skipgridpb.FailResponse, error) {
	reason := req.GetReason()
	if reason == "" {
		reason = "no reason given"
	}
	c.locked(func(co *core, _ time.Time) {
		co.fail(fmt.Sprintf("node %q (lease %d) reported: %s", req.GetName(), req.GetLeaseId(),
			reason))
	})
	return &skipgridpb.FailResponse{}, nil
}

// rpcError maps a core error to a gRPC status.
func rpcError(op string, err error) error {
	code := codes.Internal
	if errors.Is(err, errBadRequest) {
		code = codes.InvalidArgument
	}
	return status.Errorf(code, "%s: %v", op, err)
}
