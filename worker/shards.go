package worker

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// refreshEvery bounds how often a worker whose shard calls fail asks the coordinator for the
// shards' addresses again.
const refreshEvery = time.Second

// shardLinks are a job's connections to its PS shards. A shard can move: a backup takes over
// from a dead primary, or a restarted shard comes back at another address. After a failed
// call the next one first asks the coordinator for the current addresses (at most once every
// refreshEvery) and dials any that changed.
type shardLinks struct {
	mu      sync.Mutex
	addrs   []string
	clients []skipgridpb.ParameterServerClient
	// stale is set by a failed call; lastAsked is the last time the coordinator was asked.
	stale     bool
	lastAsked time.Time
	// acked counts, by shard, the pushes and rows the shard acknowledged.
	acked []ackCount
}

// ackCount is one shard's acknowledged pushes and rows.
type ackCount struct {
	pushes, rows atomic.Uint64
}

// linksOrNil returns j's links; nil before the job is built.
func (j *trainJob) linksOrNil() *shardLinks {
	if j == nil {
		return nil
	}
	return j.links
}

// len returns the number of shards.
func (l *shardLinks) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}

// dialShards dials every address of spec.
func (w *Worker) dialShards(ctx context.Context, spec *skipgridpb.JobSpec) (*shardLinks,
	error) {
	l := &shardLinks{}
	for s, addr := range spec.GetPsAddresses() {
		c, err := w.dial(ctx, addr)
		if err != nil {
			return nil, fmt.Errorf("dial shard %d at %s: %w", s, addr, err)
		}
		l.addrs = append(l.addrs, addr)
		l.clients = append(l.clients, c)
	}
	l.acked = make([]ackCount, len(l.clients))
	return l, nil
}

// client returns shard s's client, first following a move of the shard when a call has
// failed since the last look.
func (w *Worker) client(ctx context.Context, l *shardLinks,
	s int) skipgridpb.ParameterServerClient {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stale && time.Since(l.lastAsked) >= refreshEvery {
		l.lastAsked = time.Now()
		l.stale = false
		w.followMoves(ctx, l)
	}
	return l.clients[s]
}

// failed marks the links for a look at the coordinator's addresses before the next call.
func (l *shardLinks) failed() {
	l.mu.Lock()
	l.stale = true
	l.mu.Unlock()
}

// followMoves asks the coordinator for the shards' addresses and dials those that changed;
// l.mu is held. Errors are logged: the caller retries its call on the old client.
func (w *Worker) followMoves(ctx context.Context, l *shardLinks) {
	spec, err := w.coord.GetJob(ctx, &skipgridpb.GetJobRequest{Name: w.cfg.Name})
	if err != nil {
		w.log.Warn("asking the coordinator for shard addresses failed", "err", err)
		return
	}
	addrs := spec.GetPsAddresses()
	if len(addrs) != len(l.addrs) {
		w.log.Warn("coordinator names a different number of shards; keeping the old ones",
			"shards", len(addrs), "had", len(l.addrs))
		return
	}
	for s, addr := range addrs {
		if addr == l.addrs[s] || addr == "" {
			continue
		}
		c, err := w.dial(ctx, addr)
		if err != nil {
			w.log.Warn("dialling a moved shard failed", "shard", s, "address", addr, "err", err)
			continue
		}
		w.log.Info("shard moved; calls go to its new address", "shard", s, "address", addr,
			"was", l.addrs[s])
		l.addrs[s], l.clients[s] = addr, c
	}
}
