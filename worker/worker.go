package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// Dialer returns a client for a parameter-server address: in memory in the embedded
// cluster, gRPC otherwise.
type Dialer func(ctx context.Context, addr string) (skipgridpb.ParameterServerClient, error)

// Config configures one worker process.
type Config struct {
	// Name identifies the worker to the coordinator and in gossip; stable across restarts.
	Name string
	// Threads is the number of training goroutines; each holds its own lease.
	Threads int
	// RPCTimeout bounds every single call.
	RPCTimeout time.Duration
	// RetryFor is how long an unreachable coordinator or shard is retried before giving up.
	RetryFor time.Duration
	// Logger receives the worker's logs; nil means slog.Default().
	Logger *slog.Logger
	// Registerer receives the worker's metrics (skipgrid_worker_*, labelled with the
	// worker's name); nil registers none.
	Registerer prometheus.Registerer
}

// DefaultConfig returns a one-thread worker configuration with the given name.
func DefaultConfig(name string) Config {
	return Config{Name: name, Threads: 1, RPCTimeout: 30 * time.Second, RetryFor: 2 * time.Minute}
}

// Validate reports every invalid field at once.
func (c Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("name: empty"))
	}
	if c.Threads < 1 || c.Threads > 1024 {
		errs = append(errs, fmt.Errorf("threads: %d outside 1..1024", c.Threads))
	}
	if c.RPCTimeout <= 0 {
		errs = append(errs, fmt.Errorf("rpc timeout: %v must be positive", c.RPCTimeout))
	}
	if c.RetryFor <= 0 {
		errs = append(errs, fmt.Errorf("retry for: %v must be positive", c.RetryFor))
	}
	return errors.Join(errs...)
}

// Worker runs lease loops against one coordinator.
type Worker struct {
	cfg   Config
	log   *slog.Logger
	coord skipgridpb.CoordinatorClient
	dial  Dialer
	met   *metrics
	// pushSeq numbers this worker's pushes; it starts at the clock's nanoseconds so that a
	// restarted worker of the same name does not repeat a number a shard remembers.
	pushSeq atomic.Uint64

	mu struct {
		sync.Mutex
		train *trainJob // built once the vocabulary is final
		ft    *ftJob    // a fine-tuning job's, built on its first train lease
	}
}

// New checks cfg and returns a worker; it does no I/O. Its metrics are registered with
// cfg.Registerer when it is set.
func New(cfg Config, coord skipgridpb.CoordinatorClient, dial Dialer) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("worker config: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("node", cfg.Name, "role", "worker")
	met, err := newMetrics(cfg.Registerer, cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("worker %s: register metrics: %w", cfg.Name, err)
	}
	w := &Worker{cfg: cfg, log: log, coord: coord, dial: dial, met: met}
	w.pushSeq.Store(uint64(time.Now().UnixNano()))
	return w, nil
}

// Run registers with the coordinator and works until the coordinator says stop, ctx ends, or
// a thread fails. A job that ends normally returns nil.
func (w *Worker) Run(ctx context.Context) error {
	err := w.retry(ctx, "register with coordinator", func(ctx context.Context) error {
		_, err := w.coord.Register(ctx, &skipgridpb.RegisterRequest{
			Role: skipgridpb.Role_ROLE_WORKER, Name: w.cfg.Name,
		})
		return err
	})
	if err != nil {
		return err
	}
	w.log.Info("registered", "threads", w.cfg.Threads)

	g, ctx := errgroup.WithContext(ctx)
	for t := range w.cfg.Threads {
		g.Go(func() error { return w.loop(ctx, t) })
	}
	err = g.Wait()
	w.logAcked()
	return err
}

// logAcked logs, per shard, the pushes and rows the shards acknowledged to this worker: the
// updates a shard (or the copy that took over from it) must hold.
func (w *Worker) logAcked() {
	w.mu.Lock()
	links := w.mu.train.linksOrNil()
	if w.mu.ft != nil {
		links = w.mu.ft.rows.links
	}
	w.mu.Unlock()
	if links == nil {
		return
	}
	for s := range links.acked {
		w.log.Info("pushes acknowledged by shard", "shard", s,
			"pushes", links.acked[s].pushes.Load(), "rows", links.acked[s].rows.Load())
	}
}

// loop leases and runs tasks until told to stop.
func (w *Worker) loop(ctx context.Context, id int) error {
	var th *thread
	var ft *ftThread // set instead of th when the job fine-tunes
	for {
		var lease *skipgridpb.LeaseResponse
		err := w.retry(ctx, "lease", func(ctx context.Context) error {
			var err error
			lease, err = w.coord.Lease(ctx, &skipgridpb.LeaseRequest{Name: w.cfg.Name})
			return err
		})
		if err != nil {
			return err
		}

		switch lease.GetKind() {
		case skipgridpb.TaskKind_TASK_STOP:
			w.log.Info("stopping", "thread", id, "reason", lease.GetStopReason())
			return nil
		case skipgridpb.TaskKind_TASK_WAIT:
			if err := sleep(ctx, time.Duration(lease.GetWaitMs())*time.Millisecond); err != nil {
				return err
			}
		case skipgridpb.TaskKind_TASK_COUNT:
			if err := w.count(ctx, lease); err != nil {
				return err
			}
		case skipgridpb.TaskKind_TASK_TRAIN:
			if th == nil && ft == nil {
				if ft, err = w.finetuneThread(ctx); err != nil {
					return err
				}
			}
			if ft != nil {
				if err := w.finetune(ctx, ft, lease); err != nil {
					return err
				}
				break
			}
			if th == nil {
				job, err := w.trainJob(ctx)
				if err != nil {
					return err
				}
				if th, err = newThread(job); err != nil {
					return err
				}
			}
			if err := w.train(ctx, th, lease); err != nil {
				return err
			}
		default:
			return fmt.Errorf("coordinator sent unknown task kind %v", lease.GetKind())
		}
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
