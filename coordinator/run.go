package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/shard"
	"github.com/skipgrid/skipgrid/vocab"
)

// pollEvery is how often Run looks at the state when nothing wakes it: it expires leases
// and checks deadlines at this pace.
const pollEvery = 100 * time.Millisecond

// logEvery is how often a long wait logs what it waits for.
const logEvery = 10 * time.Second

// phaseTimes records when each phase began and ended.
type phaseTimes struct {
	Start, Counting, Configuring, Training, Gathering, End time.Time
}

// Run drives the job to its end: it waits for the PS shards, plans the chunks, has workers
// count them, builds the vocabulary, configures the shards, has workers train every epoch,
// gathers the input vectors and writes vectors.bin, vocab.txt and run.json to OutDir. It
// returns the run's record. Run may be called once.
//
// On failure nothing is written, every later Lease answers TASK_STOP, and the error says why;
// it wraps ErrJobFailed when the job itself failed (a node's Fail, inexact accounting), and
// vocab.ErrEmpty when nothing passed min-count. Every wait is bounded: StartTimeout for the
// shards, StallTimeout without a word from any worker, RPCTimeout per shard call, and ctx.
func (c *Coordinator) Run(ctx context.Context) (*Result, error) {
	if !c.ran.CompareAndSwap(false, true) {
		return nil, errors.New("coordinator: Run called twice")
	}
	// The status page's sampler and stats poller run as long as the job.
	ctx, stop := context.WithCancel(ctx)
	c.mon.bg.Go(func() { c.sampleHistory(ctx) })
	defer c.mon.bg.Wait()
	defer stop()

	res, err := c.run(ctx)
	if err != nil {
		c.locked(func(co *core, _ time.Time) { co.fail(err.Error()) })
		c.saveFinal(err, ctx.Err() != nil)
		return nil, err
	}
	c.saveFinal(nil, false)
	return res, nil
}

func (c *Coordinator) run(ctx context.Context) (*Result, error) {
	if c.cfg.finetune() {
		return c.runFinetune(ctx)
	}
	var start time.Time
	c.mark(func(t *phaseTimes, now time.Time) { t.Start, start = now, now })

	// Shards first: without them nothing can be trained, so no worker time is spent.
	if err := c.awaitShards(ctx, start); err != nil {
		return nil, err
	}

	// Count every chunk, then build the vocabulary; a resumed job whose vocabulary was
	// final has both.
	v, chunks := c.resumedVocab()
	if v == nil {
		var err error
		if v, chunks, err = c.countVocab(ctx); err != nil {
			return nil, err
		}
	}

	// Configure the shards, then train, with checkpoints and recovery.
	c.mark(func(t *phaseTimes, now time.Time) { t.Configuring = now })
	ps, err := c.configureShards(ctx, v)
	if err != nil {
		return nil, err
	}
	c.mon.bg.Go(func() { c.pollStats(ctx, ps) })
	if err := c.beginTraining(ctx, ps, v); err != nil {
		return nil, err
	}
	if err := c.train(ctx, ps); err != nil {
		return nil, err
	}
	c.pollShards(ctx, ps) // the shards' traffic at the end of training

	// Read the input vectors back and write the outputs.
	c.locked(func(co *core, now time.Time) {
		c.mu.times.Gathering = now
		co.startGathering()
	})
	return c.gatherAndWrite(ctx, ps, v, len(chunks))
}

// countVocab plans the chunks, has workers count every one, and builds the vocabulary.
func (c *Coordinator) countVocab(ctx context.Context) (*vocab.Vocab, []shard.Chunk, error) {
	chunks, err := planChunks(c.cfg.Corpus, c.cfg.ChunkBytes)
	if err != nil {
		return nil, nil, err // shard's errors already say "plan chunks" and name the file
	}
	c.log.Info("corpus planned", "files", len(c.cfg.Corpus), "chunks", len(chunks))
	c.locked(func(co *core, now time.Time) {
		c.mu.times.Counting = now
		co.startCounting(chunks, now)
	})
	if err := c.awaitPass(ctx, "counting"); err != nil {
		return nil, nil, err
	}
	v, err := c.buildVocab()
	if err != nil {
		return nil, nil, err
	}
	return v, chunks, nil
}

// mark records a phase time under the mutex.
func (c *Coordinator) mark(f func(t *phaseTimes, now time.Time)) {
	c.locked(func(_ *core, now time.Time) { f(&c.mu.times, now) })
}

// awaitShards waits until every PS shard has registered, at most StartTimeout after start.
func (c *Coordinator) awaitShards(ctx context.Context, start time.Time) error {
	deadline := start.Add(c.cfg.StartTimeout)
	return c.await(ctx, "PS shards to register", func(co *core, now time.Time) (bool, error) {
		missing := co.missingPS()
		if len(missing) == 0 {
			return true, nil
		}
		if now.After(deadline) {
			return false, fmt.Errorf("timed out after %v waiting for PS shards to register: "+
				"%s missing (%d shards x %d copies); start them or check their "+
				"coordinator address", c.cfg.StartTimeout, co.missingCopies(),
				c.cfg.NumPS, max(c.cfg.Replicas, 1))
		}
		return false, nil
	})
}

// awaitPass waits until every task of the current pass is done. It fails when no worker has
// called in for StallTimeout.
func (c *Coordinator) awaitPass(ctx context.Context, what string) error {
	return c.await(ctx, what+" to finish", func(co *core, now time.Time) (bool, error) {
		if co.passComplete() {
			return true, nil
		}
		if idle := now.Sub(co.LastActivity); idle > c.cfg.StallTimeout {
			p := co.Pass
			return false, fmt.Errorf("%s stalled: no worker called in for %v, %d of %d chunk "+
				"tasks left; start workers or check that they reach the coordinator", what,
				idle.Round(time.Second), p.total()-p.DoneTotal, p.total())
		}
		return false, nil
	})
}

// await polls cond, with leases expired first, until it holds, the job fails, cond returns
// an error, or ctx ends. It logs what it waits for every logEvery.
func (c *Coordinator) await(ctx context.Context, what string,
	cond func(co *core, now time.Time) (bool, error)) error {
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	start := time.Now()
	lastLog := start
	c.log.Info("waiting", "for", what)

	for {
		var done bool
		var err error
		c.mu.Lock()
		co, now := c.mu.core, c.now()
		co.tick(now)
		if co.Phase == skipgridpb.Phase_PHASE_FAILED {
			err = fmt.Errorf("%w: %s", ErrJobFailed, co.FailReason)
		} else {
			done, err = cond(co, now)
		}
		c.mu.Unlock()
		if done || err != nil {
			return err
		}

		if time.Since(lastLog) >= logEvery {
			lastLog = time.Now()
			c.log.Info("waiting", "for", what, "elapsed", lastLog.Sub(start).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, context.Cause(ctx))
		case <-c.wake:
		case <-tick.C:
		}
	}
}

// buildVocab applies min-count and max-vocab to the merged counts. An empty vocabulary fails
// the job here, before any shard allocates memory.
func (c *Coordinator) buildVocab() (*vocab.Vocab, error) {
	c.mu.Lock()
	counts := c.mu.core.Counts
	c.mu.Unlock()

	// NB: counts is no longer written once the counting pass is complete.
	v, err := vocab.Build(counts, c.cfg.MinCount, c.cfg.MaxVocab)
	if err != nil {
		return nil, fmt.Errorf("build vocabulary: %w", err)
	}

	msg := &skipgridpb.Vocab{Words: v.Words, Counts: v.Counts}
	c.locked(func(co *core, _ time.Time) {
		co.setVocab(v)
		c.mu.vocabMsg = msg
	})
	c.log.Info("vocabulary built", "size", v.Len(), "distinct", counts.Len(),
		"train_words", v.TrainWords(), "min_count", c.cfg.MinCount)
	return v, nil
}
