package coordinator

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// Bounds of Config.HistoryPoints.
const (
	minHistoryPoints = 4
	maxHistoryPoints = 1 << 20
)

// History is the job's progress over time, for plots: one entry per sample in every slice,
// oldest first. Values are cumulative, so that a rate or a mean over any span is the
// difference of two samples, and stays exact when samples are thinned: the words per second
// between samples i and j are (Words[j]-Words[i]) / (T[j]-T[i]), and the mean training loss
// is (LossSum[j]-LossSum[i]) / (LossTerms[j]-LossTerms[i]) where LossTerms grew.
type History struct {
	// IntervalSeconds is the spacing of the newest samples (Config.HistoryEvery); older
	// samples are further apart.
	IntervalSeconds float64 `json:"interval_seconds"`
	// T is each sample's time in seconds since Run started.
	T []float64 `json:"t"`
	// Words is Status.WordsDone at each sample. It may step back when a lease is lost, since
	// it counts the live leases' heartbeat words.
	Words []uint64 `json:"words"`
	// LossSum and LossTerms sum the loss of every train chunk accepted up to each sample,
	// all epochs together.
	LossSum   []float64 `json:"loss_sum"`
	LossTerms []uint64  `json:"loss_terms"`
}

// sample is one point of the history.
type sample struct {
	t         float64
	words     uint64
	lossSum   float64
	lossTerms uint64
}

// history keeps at most max samples: the newest max/2 at full resolution, and older ones
// thinned to every stride-th sample, the stride doubling whenever the old part fills. Plots
// of a long job thus keep its whole span, with detail where it is recent.
type history struct {
	recentCap, oldCap int
	recent            []sample
	old               []sample
	// evicted counts the samples that left recent; the k-th (from 0) is kept in old when k
	// is a multiple of stride.
	evicted, stride int
}

// newHistory returns a history of at most points samples, points >= minHistoryPoints.
func newHistory(points int) *history {
	oldCap := points / 2 &^ 1 // even, so that thinning keeps the newest old sample
	return &history{recentCap: points - oldCap, oldCap: oldCap, stride: 1}
}

// add appends s, moving the oldest recent sample into the thinned part when recent is full.
func (h *history) add(s sample) {
	h.recent = append(h.recent, s)
	if len(h.recent) <= h.recentCap {
		return
	}
	out := h.recent[0]
	h.recent = h.recent[1:]

	k := h.evicted
	h.evicted++
	if k%h.stride != 0 {
		return
	}
	h.old = append(h.old, out)
	if len(h.old) <= h.oldCap {
		return
	}
	// Keep the even positions: samples 0, 2*stride, 4*stride... of those evicted.
	n := 0
	for i := 0; i < len(h.old); i += 2 {
		h.old[n] = h.old[i]
		n++
	}
	h.old = h.old[:n]
	h.stride *= 2
}

// len returns the number of samples kept.
func (h *history) len() int { return len(h.old) + len(h.recent) }

// snapshot returns the samples as columns.
func (h *history) snapshot(interval time.Duration) History {
	n := h.len()
	out := History{IntervalSeconds: interval.Seconds(), T: make([]float64, 0, n),
		Words: make([]uint64, 0, n), LossSum: make([]float64, 0, n),
		LossTerms: make([]uint64, 0, n)}
	for _, part := range [][]sample{h.old, h.recent} {
		for _, s := range part {
			out.T = append(out.T, s.t)
			out.Words = append(out.Words, s.words)
			out.LossSum = append(out.LossSum, s.lossSum)
			out.LossTerms = append(out.LossTerms, s.lossTerms)
		}
	}
	return out
}

// monitor holds what the status page shows beyond the core: the history, and the shards'
// latest Stats. Its lock is never held with the Coordinator's.
type monitor struct {
	// bg tracks the sampler and the stats poller, which end with Run.
	bg sync.WaitGroup

	mu struct {
		sync.Mutex
		hist *history
		// start and end are the times of the first sample and of the last (zero while
		// sampling goes on).
		start, end time.Time
		// stats holds each shard's latest Stats answer, by shard.
		stats []shardStats
	}
}

// shardStats is the latest Stats poll of one shard.
type shardStats struct {
	resp *skipgridpb.StatsResponse
	at   time.Time
	err  string
}

func newMonitor(cfg Config) *monitor {
	m := &monitor{}
	m.mu.hist = newHistory(cfg.HistoryPoints)
	m.mu.stats = make([]shardStats, cfg.NumPS)
	return m
}

// lossTotals sums the loss of every accepted train chunk, all epochs.
func (c *core) lossTotals() (sum float64, terms uint64) {
	for _, e := range c.Epoch {
		sum += e.LossSum
		terms += e.LossTerms
	}
	return sum, terms
}

// recordSample adds a history sample of the core's state now; last marks the final one.
func (c *Coordinator) recordSample(last bool) {
	c.mu.Lock()
	now := c.now()
	co := c.mu.core
	s := sample{words: co.wordsDone()}
	s.lossSum, s.lossTerms = co.lossTotals()
	c.mu.Unlock()

	m := &c.mon.mu
	m.Lock()
	defer m.Unlock()
	if m.hist.len() == 0 {
		m.start = now
	}
	s.t = now.Sub(m.start).Seconds()
	m.hist.add(s)
	if last {
		m.end = now
	}
}

// sampleHistory records a sample at once, then every HistoryEvery until ctx ends, and a last
// one then, so that the history ends with the job's final state.
func (c *Coordinator) sampleHistory(ctx context.Context) {
	tick := time.NewTicker(c.cfg.HistoryEvery)
	defer tick.Stop()
	for {
		c.recordSample(false)
		select {
		case <-ctx.Done():
			c.recordSample(true)
			return
		case <-tick.C:
		}
	}
}

// pollStats asks every shard of set for its Stats at once, then every StatsEvery until ctx
// ends.
func (c *Coordinator) pollStats(ctx context.Context, set *shardSet) {
	tick := time.NewTicker(c.cfg.StatsEvery)
	defer tick.Stop()
	for {
		c.pollShards(ctx, set)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// pollShards asks every shard of set for its Stats, in parallel, each call bounded by
// StatsEvery, and records the answers.
func (c *Coordinator) pollShards(ctx context.Context, set *shardSet) {
	var wg sync.WaitGroup
	for s, cl := range set.clients {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, c.cfg.StatsEvery)
			resp, err := cl.Stats(cctx, &skipgridpb.StatsRequest{})
			cancel()
			if ctx.Err() != nil {
				return // the job ended; keep the last answer rather than the cancellation
			}
			if err == nil && resp.GetShard() != uint32(s) {
				err = fmt.Errorf("the shard at %s answers as shard %d", set.addrs[s],
					resp.GetShard())
			}
			c.recordStats(s, set.addrs[s], resp, err)
		})
	}
	wg.Wait()
}

// recordStats keeps shard s's Stats answer, or the error of the call. The first failure
// after a success, and the first success after a failure, are logged.
func (c *Coordinator) recordStats(s int, addr string, resp *skipgridpb.StatsResponse,
	err error) {
	now := c.now()
	m := &c.mon.mu
	m.Lock()
	defer m.Unlock()
	st := &m.stats[s]
	if err != nil {
		if st.err == "" {
			c.log.Warn("PS stats call failed; the status page shows the last answer",
				"shard", s, "address", addr, "err", err)
		}
		st.err = err.Error()
		return
	}
	if st.err != "" {
		c.log.Info("PS stats call recovered", "shard", s, "address", addr)
	}
	*st = shardStats{resp: resp, at: now}
}
