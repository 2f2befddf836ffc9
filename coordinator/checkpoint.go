package coordinator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/vocab"
)

// ErrShardDown is wrapped, with ErrJobFailed, by Run's error when a PS shard did not answer
// for Config.ShardDownTimeout. The job's saved state is kept, so that a coordinator
// started again with Config.Resume continues it once the shard is back.
var ErrShardDown = errors.New("PS shard down")

// watchEvery is how often Run asks every shard for its Stats during training, to tell a
// restarted shard (a new incarnation) or one that stopped answering.
const watchEvery = 500 * time.Millisecond

// watchTimeout bounds one such call.
const watchTimeout = 5 * time.Second

// durable is the part of the core that checkpoints and recovery keep. It is plain data,
// saved with the rest of the core.
type durable struct {
	// Results holds each training task's accepted result (zero until accepted), so that a
	// rollback can take a task's words and loss out of its epoch.
	Results []taskResult `json:"results,omitempty"`
	// Checkpoints lists the checkpoints a shard may still restore, oldest first.
	Checkpoints []checkpointRecord `json:"checkpoints,omitempty"`
	// LastCheckpoint is the id of the newest checkpoint asked for (0: none yet); ids
	// increase across restarts of the coordinator.
	LastCheckpoint uint64 `json:"last_checkpoint"`
	// LastCheckpointAt is when it was asked for.
	LastCheckpointAt time.Time `json:"last_checkpoint_at"`
	// ClosedRounds is the number of leading epochs that were complete at the newest
	// checkpoint: an epoch that completes beyond it calls for the next checkpoint.
	ClosedRounds int `json:"closed_rounds"`
	// Shards holds what the coordinator last heard from each shard.
	Shards   []shardWatch `json:"shards,omitempty"`
	Recovery Recovery     `json:"recovery"`
}

// taskResult is the accepted result of one training task.
type taskResult struct {
	Words     uint64  `json:"w,omitempty"`
	LossSum   float64 `json:"l,omitempty"`
	LossTerms uint64  `json:"t,omitempty"`
}

// checkpointRecord is the progress of training when a checkpoint was asked for: every task
// done then had pushed all its updates, so a shard restored from this checkpoint lacks only
// what the tasks done later pushed.
type checkpointRecord struct {
	ID uint64    `json:"id"`
	At time.Time `json:"at"`
	// Done holds the training tasks done when the checkpoint was asked for.
	Done bitset `json:"done"`
	// Acked marks, by shard, the shards that wrote the checkpoint.
	Acked []bool `json:"acked"`
}

// shardWatch is what the coordinator knows of one shard's life.
type shardWatch struct {
	// Incarnation is the shard's, from its Stats (0: not heard yet).
	Incarnation uint64 `json:"incarnation"`
	// LastAt is the time of its last Stats answer; the three after it are from that answer.
	LastAt          time.Time `json:"last_at"`
	LastCheckpoint  uint64    `json:"last_checkpoint"`
	LastRowsSince   uint64    `json:"last_rows_since"`
	LastPushesSince uint64    `json:"last_pushes_since"`
	// LastPushes is the pushes the shard had applied at that answer.
	LastPushes uint64 `json:"last_pushes"`
	// FailingSince is the first failed call since the last answer (zero while it answers).
	FailingSince time.Time `json:"failing_since"`
	// Recheck asks Run to look at the shard at once: it registered again since the last
	// Stats call to it was sent.
	Recheck bool `json:"-"`
	// NoCheckpoints is set once the shard said it keeps none; Unwatched once it said it
	// keeps no stats (the shard cannot be watched).
	NoCheckpoints bool `json:"no_checkpoints"`
	Unwatched     bool `json:"unwatched"`
}

// Recovery records the checkpoints of a job and the shard restarts it survived; it is part
// of run.json.
type Recovery struct {
	// Checkpoints counts the checkpoints asked for; LastCheckpoint is the newest id.
	Checkpoints    int    `json:"checkpoints"`
	LastCheckpoint uint64 `json:"last_checkpoint"`
	// ShardRestarts counts the shards that came back with a new incarnation.
	ShardRestarts int `json:"shard_restarts"`
	// UpdatesLostEstimate sums the events' estimates of the row updates lost.
	UpdatesLostEstimate uint64 `json:"updates_lost_estimate"`
	// ChunksRolledBack sums the (epoch, chunk) tasks trained again because of restarts.
	ChunksRolledBack int `json:"chunks_rolled_back"`
	// CoordinatorResumes counts the starts of the coordinator that resumed the job.
	CoordinatorResumes int `json:"coordinator_resumes"`
	// Failovers counts the backups that took over from a lost primary (replicas.go).
	Failovers int `json:"failovers"`
	// Events lists the shard restarts, in order.
	Events []RecoveryEvent `json:"events"`
}

// RecoveryEvent is one shard restart and what it cost.
type RecoveryEvent struct {
	Shard int       `json:"shard"`
	At    time.Time `json:"at"`
	// Restored says the shard came back with the rows of checkpoint RestoredCheckpoint;
	// otherwise it came back empty and was initialised afresh.
	Restored           bool   `json:"restored"`
	RestoredCheckpoint uint64 `json:"restored_checkpoint"`
	// RolledBackTo is the checkpoint whose progress training went back to (0: the start of
	// training). The tasks done since then went back to the pool, each still to be accepted
	// exactly once in its epoch; the live train leases were dropped.
	RolledBackTo     uint64 `json:"rolled_back_to"`
	ChunksRolledBack int    `json:"chunks_rolled_back"`
	LeasesDropped    int    `json:"leases_dropped"`
	// UpdatesLostEstimate and PushesLostEstimate are rows_pushed_since_checkpoint and
	// pushes_since_checkpoint of the shard's last Stats answer before it died, at
	// LastPolled, counted since checkpoint EstimateSince. They are an estimate from that
	// poll: pushes after it are missing; when the shard restored an older checkpoint than
	// EstimateSince the pushes between the two are missing too, and when it restored a newer
	// one the figure includes pushes that checkpoint holds. Zero with LastPolled zero means
	// unknown.
	UpdatesLostEstimate uint64    `json:"updates_lost_estimate"`
	PushesLostEstimate  uint64    `json:"pushes_lost_estimate"`
	LastPolled          time.Time `json:"last_polled"`
	EstimateSince       uint64    `json:"estimate_since_checkpoint"`
	// DownSince is the first failed call to the shard, or its last answer when no call
	// failed; RecoverySeconds runs from it to the rollback.
	DownSince       time.Time `json:"down_since"`
	RecoverySeconds float64   `json:"recovery_seconds"`
	// Failover marks a backup taking over from the primary at FailoverFrom: nothing was
	// rolled back, because the backup held every push the primary acknowledged. The pushes
	// the primary had applied at its last Stats answer and those the backup had applied at
	// its last one are kept as evidence.
	Failover              bool   `json:"failover,omitempty"`
	FailoverFrom          string `json:"failover_from,omitempty"`
	FailoverTo            string `json:"failover_to,omitempty"`
	PrimaryPushesLastPoll uint64 `json:"primary_pushes_last_poll,omitempty"`
	BackupPushes          uint64 `json:"backup_pushes,omitempty"`
}

// watch returns shard s's watch record, sizing the list on first use.
func (c *core) watch(s int) *shardWatch {
	if len(c.Durable.Shards) != len(c.PS) {
		c.Durable.Shards = append(c.Durable.Shards,
			make([]shardWatch, len(c.PS)-len(c.Durable.Shards))...)
	}
	return &c.Durable.Shards[s]
}

// noteReregistered marks shard s for a look: a shard that registers again may have
// restarted.
func (c *core) noteReregistered(s int) {
	c.watch(s).Recheck = true
}

// recordResult keeps the accepted result of training task i.
func (c *core) recordResult(i int, req *skipgridpb.CompleteRequest) {
	d := &c.Durable
	if len(d.Results) != c.Pass.total() {
		d.Results = make([]taskResult, c.Pass.total())
	}
	d.Results[i] = taskResult{Words: req.GetWordsTrained(), LossSum: req.GetLossSum(),
		LossTerms: req.GetLossTerms()}
}

// observe records a Stats answer of the shard's current incarnation.
func (w *shardWatch) observe(resp *skipgridpb.StatsResponse, now time.Time) {
	w.LastAt, w.LastCheckpoint = now, resp.GetCheckpointId()
	w.LastRowsSince, w.LastPushesSince = resp.GetRowsPushedSinceCheckpoint(),
		resp.GetPushesSinceCheckpoint()
	w.LastPushes = resp.GetPushes()
	w.FailingSince = time.Time{}
}

// checkpointDue reports whether training calls for a checkpoint now: an epoch completed
// since the last one, or every (when positive) has passed since it.
func (c *core) checkpointDue(every time.Duration, now time.Time) bool {
	p := c.Pass
	if p == nil || p.Kind != skipgridpb.TaskKind_TASK_TRAIN {
		return false
	}
	if p.openRound() > c.Durable.ClosedRounds {
		return true
	}
	last := c.Durable.LastCheckpointAt
	if last.IsZero() {
		last = c.TrainingStart
	}
	return every > 0 && !p.complete() && now.Sub(last) >= every
}

// beginCheckpoint records the next checkpoint's id and the progress it covers.
func (c *core) beginCheckpoint(now time.Time) checkpointRecord {
	d := &c.Durable
	d.LastCheckpoint++
	rec := checkpointRecord{ID: d.LastCheckpoint, At: now, Done: newBitset(c.Pass.Done),
		Acked: make([]bool, len(c.PS))}
	d.Checkpoints = append(d.Checkpoints, rec)
	d.ClosedRounds, d.LastCheckpointAt = c.Pass.openRound(), now
	d.Recovery.Checkpoints++
	d.Recovery.LastCheckpoint = rec.ID
	return rec
}

// endCheckpoint records which shards wrote checkpoint id and forgets the records no shard
// can restore any more: each shard keeps its newest two files.
func (c *core) endCheckpoint(id uint64, acked []bool) {
	d := &c.Durable
	for i := range d.Checkpoints {
		if d.Checkpoints[i].ID == id {
			d.Checkpoints[i].Acked = acked
		}
	}
	floor := id
	for s := range c.PS {
		if c.watch(s).NoCheckpoints {
			continue
		}
		n := 0
		second := uint64(0)
		for i := len(d.Checkpoints) - 1; i >= 0 && n < 2; i-- {
			if d.Checkpoints[i].Acked[s] {
				n++
				second = d.Checkpoints[i].ID
			}
		}
		if n < 2 {
			second = 0
		}
		floor = min(floor, second)
	}
	keep := d.Checkpoints[:0]
	for _, r := range d.Checkpoints {
		if r.ID >= floor {
			keep = append(keep, r)
		}
	}
	d.Checkpoints = keep
}

// recordAtOrBefore returns the newest checkpoint record with an id at most id, or nil.
func (d *durable) recordAtOrBefore(id uint64) *checkpointRecord {
	for i := len(d.Checkpoints) - 1; i >= 0; i-- {
		if d.Checkpoints[i].ID <= id {
			return &d.Checkpoints[i]
		}
	}
	return nil
}

// rollback returns every training task done but not in keep to the pool, drops every live
// train lease, and recomputes the epochs' sums from the tasks still done. It reports the
// tasks returned and the leases dropped.
func (c *core) rollback(keep bitset) (chunks, leases int) {
	p := c.Pass
	if p == nil || p.Kind != skipgridpb.TaskKind_TASK_TRAIN {
		return 0, 0
	}
	train := func(l *lease) bool { return l.Kind == skipgridpb.TaskKind_TASK_TRAIN }
	for _, id := range c.sortedLeaseIDs(train) {
		p.release(c.Leases[id].Task)
		delete(c.Leases, id)
		leases++
	}
	for i, done := range p.Done {
		if !done || keep.has(i) {
			continue
		}
		p.Done[i] = false
		p.DoneInRound[i/p.Chunks]--
		p.DoneTotal--
		p.Attempts[i] = 0
		p.release(i)
		if i < len(c.Durable.Results) {
			c.Durable.Results[i] = taskResult{}
		}
		chunks++
	}
	c.recountEpochs()
	c.Durable.ClosedRounds = min(c.Durable.ClosedRounds, p.openRound())
	return chunks, leases
}

// recountEpochs sets the epochs' sums and the accepted words from the tasks done.
func (c *core) recountEpochs() {
	for r := range c.Epoch {
		c.Epoch[r] = epochStats{}
	}
	c.Counters.AcceptedWords = 0
	for i, res := range c.Durable.Results {
		if !c.Pass.Done[i] {
			continue
		}
		e := &c.Epoch[i/c.Pass.Chunks]
		e.Words = addSat(e.Words, res.Words)
		e.LossSum += res.LossSum
		e.LossTerms += res.LossTerms
		c.Counters.AcceptedWords = addSat(c.Counters.AcceptedWords, res.Words)
	}
}

// recoverFrom rolls training back for shard s, restarted: to the checkpoint it restored, or
// to the start of training when it came back empty. st is the new incarnation's Stats, cr
// its answer to Configure.
func (c *core) recoverFrom(s int, st *skipgridpb.StatsResponse,
	cr *skipgridpb.ConfigureResponse, now time.Time) RecoveryEvent {
	w := c.watch(s)
	ev := RecoveryEvent{Shard: s, At: now, Restored: cr.GetRestored(),
		RestoredCheckpoint: cr.GetCheckpointId(), UpdatesLostEstimate: w.LastRowsSince,
		PushesLostEstimate: w.LastPushesSince, LastPolled: w.LastAt,
		EstimateSince: w.LastCheckpoint, DownSince: w.FailingSince}
	if ev.DownSince.IsZero() {
		ev.DownSince = w.LastAt
	}
	if ev.DownSince.IsZero() {
		ev.DownSince = now
	}

	var keep bitset
	if cr.GetRestored() {
		if rec := c.Durable.recordAtOrBefore(cr.GetCheckpointId()); rec != nil {
			ev.RolledBackTo, keep = rec.ID, rec.Done
		}
	}
	ev.ChunksRolledBack, ev.LeasesDropped = c.rollback(keep)
	ev.RecoverySeconds = now.Sub(ev.DownSince).Seconds()

	w.Incarnation = st.GetIncarnation()
	w.observe(st, now)
	r := &c.Durable.Recovery
	r.ShardRestarts++
	r.UpdatesLostEstimate += ev.UpdatesLostEstimate
	r.ChunksRolledBack += ev.ChunksRolledBack
	r.Events = append(r.Events, ev)
	c.LastActivity = now
	return ev
}

// configureRequest is the Configure of shard s for a pretraining job of rows rows.
func (c *Coordinator) configureRequest(s int, rows uint64) *skipgridpb.ConfigureRequest {
	return &skipgridpb.ConfigureRequest{
		JobId: c.cfg.JobID, Shard: uint32(s), NumShards: uint32(c.cfg.NumPS), Rows: rows,
		Dim: uint32(c.cfg.Dim), Seed: c.cfg.Seed,
		Tables: []*skipgridpb.TableSpec{
			{Table: skipgridpb.Table_TABLE_INPUT, Init: skipgridpb.Init_INIT_UNIFORM},
			{Table: skipgridpb.Table_TABLE_OUTPUT, Init: skipgridpb.Init_INIT_ZERO},
		},
	}
}

// loopState is what one look at the core decides.
type loopState struct {
	done       bool
	checkpoint bool
	poll       []int
}

// train waits for every training task to be done, as awaitPass does, and meanwhile asks the
// shards for checkpoints (at the end of every epoch and every Config.CheckpointEvery),
// watches them (a restarted shard rolls training back to the checkpoint it restored, one
// silent for Config.ShardDownTimeout fails the job) and saves the coordinator's state. It
// returns once the pass is complete, the last epoch's checkpoint asked for, and every shard
// answered with the incarnation it had.
func (c *Coordinator) train(ctx context.Context, set *shardSet) error {
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	start, lastLog := time.Now(), time.Now()
	var lastPoll time.Time
	c.log.Info("waiting", "for", "training to finish")

	for {
		ls, err := c.look(lastPoll)
		if err != nil {
			return err
		}
		if ls.poll != nil {
			if len(ls.poll) == len(set.clients) {
				lastPoll = c.now()
			}
			if err := c.watchShards(ctx, set, ls.poll); err != nil {
				return err
			}
			if err := c.watchBackups(ctx, set); err != nil {
				return err
			}
		}
		if ls.checkpoint {
			c.checkpointShards(ctx, set)
			lastPoll = time.Time{} // a poll now resets the shards' counts since it
		}
		_ = c.saveState(ls.checkpoint)
		if ls.done && c.finished() {
			_ = c.saveState(true)
			return nil
		}

		if time.Since(lastLog) >= logEvery {
			lastLog = time.Now()
			c.log.Info("waiting", "for", "training to finish",
				"elapsed", lastLog.Sub(start).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for training to finish: %w", context.Cause(ctx))
		case <-c.wake:
		case <-tick.C:
		}
	}
}

// look expires leases and decides what train does next: fail (a failed job, or a stall),
// poll shards, take a checkpoint, or stop.
func (c *Coordinator) look(lastPoll time.Time) (loopState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	co, now := c.mu.core, c.now()
	co.tick(now)
	if co.Phase == skipgridpb.Phase_PHASE_FAILED {
		return loopState{}, fmt.Errorf("%w: %s", ErrJobFailed, co.FailReason)
	}
	p := co.Pass
	if idle := now.Sub(co.LastActivity); !p.complete() && idle > c.cfg.StallTimeout {
		return loopState{}, fmt.Errorf("training stalled: no worker called in for %v, %d of "+
			"%d chunk tasks left; start workers or check that they reach the coordinator",
			idle.Round(time.Second), p.total()-p.DoneTotal, p.total())
	}

	var ls loopState
	ls.checkpoint = co.checkpointDue(c.cfg.CheckpointEvery, now)
	pollAll := lastPoll.IsZero() || now.Sub(lastPoll) >= watchEvery
	// The last look before gathering asks every shard, so that a shard that died at the
	// end is not read from.
	if p.complete() && !ls.checkpoint {
		ls.done, pollAll = true, true
	}
	for s := range co.PS {
		if w := co.watch(s); pollAll || w.Recheck {
			ls.poll = append(ls.poll, s)
		}
	}
	return ls, nil
}

// finished reports whether training is over for good: every task done, the last
// checkpoint asked for, and no shard silent or restarted at the last look.
func (c *Coordinator) finished() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	co := c.mu.core
	if !co.Pass.complete() || co.checkpointDue(c.cfg.CheckpointEvery, c.now()) {
		return false
	}
	for s := range co.PS {
		if w := co.watch(s); !w.Unwatched && !w.FailingSince.IsZero() {
			return false
		}
	}
	return true
}

// watchShards asks shards which for their Stats, in parallel, and acts on the answers. A
// shard that registered again at another address is dialled there first.
func (c *Coordinator) watchShards(ctx context.Context, set *shardSet, which []int) error {
	// The look a registration asked for is taken now, before the calls go out: a shard that
	// registers again while its call is in flight may have answered from before its
	// restart, so it keeps its mark and is asked once more.
	c.locked(func(co *core, _ time.Time) {
		for _, s := range which {
			co.watch(s).Recheck = false
		}
	})
	c.followMoves(ctx, set, which)
	resps := make([]*skipgridpb.StatsResponse, len(which))
	errs := make([]error, len(which))
	var wg sync.WaitGroup
	for i, s := range which {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, watchTimeout)
			defer cancel()
			resps[i], errs[i] = set.clients[s].Stats(cctx, &skipgridpb.StatsRequest{})
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("watching PS shards: %w", context.Cause(ctx))
	}
	for i, s := range which {
		if err := c.judgeShard(ctx, set, s, resps[i], errs[i]); err != nil {
			return err
		}
	}
	return nil
}

// judgeShard acts on one Stats call to shard s: it adopts a first answer, records a normal
// one, counts the time a shard stays silent (failing the job past ShardDownTimeout), and
// recovers from a restart.
func (c *Coordinator) judgeShard(ctx context.Context, set *shardSet, s int,
	resp *skipgridpb.StatsResponse, err error) error {
	if err == nil && resp.GetShard() != uint32(s) {
		err = fmt.Errorf("the shard at %s answers as shard %d", set.addrs[s], resp.GetShard())
	}
	var restarted, promote bool
	var failErr error
	c.locked(func(co *core, now time.Time) {
		w := co.watch(s)
		switch {
		case status.Code(err) == codes.Unimplemented:
			if !w.Unwatched {
				c.log.Warn("PS shard keeps no stats; its restarts go unnoticed", "shard", s)
			}
			w.Unwatched = true
		case err != nil:
			promote, failErr = c.silentShard(co, w, set, s, err, now)
		case w.Incarnation == 0 && resp.GetRestored() && co.Durable.LastCheckpoint == 0:
			co.fail(fmt.Sprintf("PS shard %d at %s restored checkpoint %d of job %q, but this "+
				"job has taken no checkpoint: the checkpoint is of an earlier run; clear the "+
				"shard's checkpoint directory for a new job, or resume the coordinator with "+
				"its earlier output directory", s, set.addrs[s], resp.GetCheckpointId(),
				c.cfg.JobID))
			failErr = fmt.Errorf("%w: %s", ErrJobFailed, co.FailReason)
		case w.Incarnation == 0 && !resp.GetRestored():
			w.Incarnation = resp.GetIncarnation()
			w.observe(resp, now)
		case resp.GetIncarnation() != w.Incarnation:
			restarted = true
		default:
			if !w.FailingSince.IsZero() {
				c.log.Info("PS shard answers again", "shard", s,
					"silent_for", now.Sub(w.FailingSince).Round(time.Millisecond))
			}
			w.observe(resp, now)
		}
	})
	if failErr != nil {
		return failErr
	}
	if restarted && c.hasBackup(s) {
		c.log.Warn("PS shard restarted; its backup, which holds every acknowledged update, "+
			"takes over instead of a rollback", "shard", s, "address", set.addrs[s])
		promote = true
	}
	switch {
	case promote:
		return c.promote(ctx, set, s)
	case restarted:
		return c.recoverShard(ctx, set, s, resp)
	}
	return nil
}

// followMoves dials the shards of which whose registered address is no longer the one set
// holds: a shard that restarted elsewhere. A failed dial is logged and tried again at the
// next poll.
func (c *Coordinator) followMoves(ctx context.Context, set *shardSet, which []int) {
	addrs := make([]string, len(set.addrs))
	c.locked(func(co *core, _ time.Time) { copy(addrs, co.psAddresses()) })
	for _, s := range which {
		if addrs[s] == set.addrs[s] || addrs[s] == "" {
			continue
		}
		cl, err := c.dial(ctx, addrs[s])
		if err != nil {
			c.log.Warn("dialling a PS shard at its new address failed", "shard", s,
				"address", addrs[s], "err", err)
			continue
		}
		c.log.Warn("PS shard registered at a new address; calls go there now", "shard", s,
			"address", addrs[s], "was", set.addrs[s])
		set.addrs[s], set.clients[s] = addrs[s], cl
	}
}

// hasBackup reports whether shard s has a live backup.
func (c *Coordinator) hasBackup(s int) bool {
	var ok bool
	c.locked(func(co *core, _ time.Time) { ok = len(co.PS[s].live()) > 0 })
	return ok
}

// silentShard records a failed call to shard s. It asks for a failover once the shard has
// been silent for FailoverAfter and has a live backup, and fails the job once it has been
// silent for ShardDownTimeout; c.mu is held.
func (c *Coordinator) silentShard(co *core, w *shardWatch, set *shardSet, s int, err error,
	now time.Time) (bool, error) {
	rows, total := len(set.rows[s]), 0
	for _, r := range set.rows {
		total += len(r)
	}
	if w.FailingSince.IsZero() {
		w.FailingSince = now
		if len(co.PS[s].live()) > 0 {
			c.log.Warn("PS shard does not answer; its backup takes over unless it is back",
				"shard", s, "address", set.addrs[s], "owns_rows", rows, "err", err,
				"failover_after", c.cfg.FailoverAfter)
		} else {
			c.log.Warn("PS shard does not answer; workers retry its calls until it is back",
				"shard", s, "address", set.addrs[s], "owns_rows", rows, "err", err,
				"fails_job_after", c.cfg.ShardDownTimeout)
		}
	}
	silent := now.Sub(w.FailingSince)
	if len(co.PS[s].live()) > 0 && silent > c.cfg.FailoverAfter {
		return true, nil
	}
	if silent <= c.cfg.ShardDownTimeout {
		return false, nil
	}
	co.fail(fmt.Sprintf("PS shard %d at %s (owns %d of %d rows) has not answered for %v, "+
		"longer than the shard down timeout of %v (last error: %v); the job cannot finish "+
		"without it. Its state is kept in %s: restart the shard with its checkpoint "+
		"directory, then the coordinator with the same output directory, to resume",
		s, set.addrs[s], rows, total, silent.Round(100*time.Millisecond), c.cfg.ShardDownTimeout,
		err, c.cfg.stateDir()))
	return false, fmt.Errorf("%w (%w): %s", ErrJobFailed, ErrShardDown, co.FailReason)
}

// recoverShard configures restarted shard s again (a shard restored from a checkpoint keeps
// its rows; an empty one is initialised: a fine-tuning job's by loadShard) and rolls
// training back to what the shard holds. st is the shard's Stats answer.
func (c *Coordinator) recoverShard(ctx context.Context, set *shardSet, s int,
	st *skipgridpb.StatsResponse) error {
	req := c.configureRequest(s, uint64(countRows(set.rows)))
	tk := c.finetuneTask()
	if tk != nil {
		req.Tables = tk.tables()
	}
	what := fmt.Sprintf("configure restarted PS shard %d at %s", s, set.addrs[s])
	cr, err := c.configureCopy(ctx, set.clients[s], what, req, len(set.rows[s]))
	if err != nil {
		return err
	}
	if tk != nil {
		if err := c.reloadRows(ctx, set, s, tk, st, cr); err != nil {
			return err
		}
	}

	var ev RecoveryEvent
	c.locked(func(co *core, now time.Time) { ev = co.recoverFrom(s, st, cr, now) })
	c.log.Warn("PS shard restarted; training rolled back to what it holds",
		"shard", s, "restored", ev.Restored, "restored_checkpoint", ev.RestoredCheckpoint,
		"rolled_back_to_checkpoint", ev.RolledBackTo, "chunks_rolled_back", ev.ChunksRolledBack,
		"leases_dropped", ev.LeasesDropped, "updates_lost_estimate", ev.UpdatesLostEstimate,
		"pushes_lost_estimate", ev.PushesLostEstimate,
		"estimate", fmt.Sprintf("rows pushed since checkpoint %d in the shard's last stats "+
			"answer before it died, polled at %s; pushes after that poll are not counted",
			ev.EstimateSince, ev.LastPolled.Format(time.RFC3339Nano)),
		"recovery_seconds", ev.RecoverySeconds)
	return c.saveState(true)
}

func countRows(rows [][]uint32) int {
	n := 0
	for _, r := range rows {
		n += len(r)
	}
	return n
}

// checkpointShards asks every shard for the next checkpoint, in parallel. The record of the
// progress it covers is saved before any shard is asked, so that any checkpoint file a shard
// holds has its record. A shard that fails is logged; training goes on.
func (c *Coordinator) checkpointShards(ctx context.Context, set *shardSet) {
	var rec checkpointRecord
	var epoch int
	c.locked(func(co *core, now time.Time) {
		rec = co.beginCheckpoint(now)
		epoch = co.Durable.ClosedRounds
	})
	_ = c.saveState(true)

	start := time.Now()
	acked := make([]bool, len(set.clients))
	bytes := make([]uint64, len(set.clients))
	errs := make([]error, len(set.clients))
	var wg sync.WaitGroup
	for s, cl := range set.clients {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, c.cfg.RPCTimeout)
			defer cancel()
			resp, err := cl.Checkpoint(cctx, &skipgridpb.CheckpointRequest{JobId: c.cfg.JobID,
				CheckpointId: rec.ID, Epoch: uint32(epoch)})
			acked[s], bytes[s], errs[s] = err == nil, resp.GetBytes(), err
		})
	}
	wg.Wait()

	var total uint64
	c.locked(func(co *core, _ time.Time) {
		for s, err := range errs {
			total += bytes[s]
			c.noteCheckpointError(co, s, rec.ID, err)
		}
		co.endCheckpoint(rec.ID, acked)
	})
	c.log.Info("checkpoint taken", "checkpoint", rec.ID, "epochs_complete", epoch,
		"tasks_done", rec.Done.count(), "shards_written", countTrue(acked), "bytes", total,
		"took", time.Since(start).Round(time.Millisecond))
}

// noteCheckpointError logs a shard's failed checkpoint; a shard that keeps no checkpoints is
// logged once. c.mu is held.
func (c *Coordinator) noteCheckpointError(co *core, s int, id uint64, err error) {
	if err == nil {
		return
	}
	w := co.watch(s)
	code := status.Code(err)
	switch {
	case code == codes.Unimplemented || (code == codes.FailedPrecondition &&
		strings.Contains(err.Error(), "keeps no checkpoints")):
		if !w.NoCheckpoints {
			c.log.Warn("PS shard keeps no checkpoints; if it restarts, training goes back to "+
				"its start", "shard", s, "err", err)
		}
		w.NoCheckpoints = true
	default:
		c.log.Warn("PS shard did not write its checkpoint", "shard", s, "checkpoint", id,
			"err", err)
	}
}

func countTrue(b []bool) int {
	n := 0
	for _, x := range b {
		if x {
			n++
		}
	}
	return n
}

// validateRecovery checks the persistence and recovery settings.
func (c Config) validateRecovery() []error {
	var errs []error
	if c.CheckpointEvery < 0 {
		errs = append(errs, fmt.Errorf("checkpoint every: %v must be positive, or 0 for "+
			"epoch ends only", c.CheckpointEvery))
	}
	if c.ShardDownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("shard down timeout: %v must be positive",
			c.ShardDownTimeout))
	}
	return errs
}

// beginTraining saves the vocabulary, learns every shard's incarnation (recovering the
// shards that restarted while a resumed coordinator was down), and enters training, or
// stays in the training pass a resumed job was in.
func (c *Coordinator) beginTraining(ctx context.Context, set *shardSet,
	v *vocab.Vocab) error {
	if err := c.saveVocab(v); err != nil {
		return err
	}
	if err := c.watchShards(ctx, set, allShards(len(set.clients))); err != nil {
		return err
	}
	c.locked(func(co *core, now time.Time) {
		if co.Pass != nil && co.Pass.Kind == skipgridpb.TaskKind_TASK_TRAIN {
			co.Phase = skipgridpb.Phase_PHASE_TRAINING
			co.LastActivity = now
			c.st.keepTimes(&c.mu.times)
			return
		}
		c.mu.times.Training = now
		co.startTraining(now)
	})
	_ = c.saveState(true)
	return nil
}

func allShards(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// recovery returns a copy of the recovery record, with an empty event list rather than
// none.
func (d *durable) recovery() Recovery {
	r := d.Recovery
	r.Events = append([]RecoveryEvent{}, r.Events...)
	return r
}
