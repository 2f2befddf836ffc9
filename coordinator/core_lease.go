package coordinator

import (
	"fmt"
	"math"
	"math/bits"
	"time"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/vectors"
)

// touch records a call from worker name, registering it when it is unknown.
func (c *core) touch(name string, now time.Time) {
	if _, ok := c.Workers[name]; !ok {
		c.log.Warn("unregistered worker called in; registering it", "worker", name)
	}
	c.registerWorker(name, now)
}

// tick expires every lease whose deadline is not after now and puts its task back in the
// pool.
func (c *core) tick(now time.Time) {
	if c.terminal() {
		return
	}
	expired := c.sortedLeaseIDs(func(l *lease) bool { return !now.Before(l.Deadline) })
	for _, id := range expired {
		l, ok := c.Leases[id]
		if !ok {
			return // an earlier release failed the job and dropped every lease
		}
		c.Counters.LeasesExpired++
		c.log.Warn("lease expired; its chunk goes back to the pool", "lease", id,
			"worker", l.Worker, "task", c.describe(l), "deadline", l.Deadline)
		c.release(l, "expired")
	}
}

// nodeFailed releases at once the leases of the worker called name, and marks a PS shard of
// that name as down.
func (c *core) nodeFailed(name string) {
	for i := range c.PS {
		if c.PS[i].Registered && c.PS[i].Name == name {
			c.PS[i].Alive = false
			c.log.Warn("PS shard reported dead", "shard", i, "name", name)
		}
	}
	w, ok := c.Workers[name]
	if !ok || c.terminal() {
		return
	}
	w.Alive = false
	for _, id := range c.sortedLeaseIDs(func(l *lease) bool { return l.Worker == name }) {
		l, ok := c.Leases[id]
		if !ok {
			return
		}
		c.Counters.LeasesReleased++
		c.log.Warn("worker reported dead; its chunk goes back to the pool", "lease", id,
			"worker", name, "task", c.describe(l))
		c.release(l, "released when its worker died")
	}
}

// release drops lease l and returns its task to the pool, or fails the job when the task has
// used up its attempts.
func (c *core) release(l *lease, why string) {
	delete(c.Leases, l.ID)
	if n := int(c.Pass.Attempts[l.Task]); n >= c.set.MaxAttempts {
		c.fail(fmt.Sprintf("%s was leased %d times and never completed (last lease %s); "+
			"check the chunk's file and the workers' logs", c.describe(l), n, why))
		return
	}
	c.Pass.release(l.Task)
}

// describe names a lease's task for logs and errors.
func (c *core) describe(l *lease) string {
	t := c.Pass.task(l.Task)
	ch := c.Chunks[t.Chunk]
	where := fmt.Sprintf("chunk %d (%s bytes %d..%d)", t.Chunk, ch.Path, ch.Start, ch.End)
	if c.Finetune {
		where = fmt.Sprintf("chunk %d (%s examples %d..%d of the epoch's order)", t.Chunk,
			ch.Path, ch.Start, ch.End)
	}
	if l.Kind == skipgridpb.TaskKind_TASK_TRAIN {
		return fmt.Sprintf("epoch %d %s", t.Round, where)
	}
	return "counting " + where
}

// lease hands worker name its next task.
func (c *core) lease(name string, now time.Time) *skipgridpb.LeaseResponse {
	c.tick(now)
	c.touch(name, now)

	switch c.Phase {
	case skipgridpb.Phase_PHASE_FAILED:
		return &skipgridpb.LeaseResponse{Kind: skipgridpb.TaskKind_TASK_STOP,
			StopReason: "the job failed: " + c.FailReason}
	case skipgridpb.Phase_PHASE_GATHERING, skipgridpb.Phase_PHASE_DONE:
		return &skipgridpb.LeaseResponse{Kind: skipgridpb.TaskKind_TASK_STOP,
			StopReason: "training is finished"}
	case skipgridpb.Phase_PHASE_STARTING:
		return waitResponse()
	}

	// Counting or training. After the counting pass and before training, nothing is left.
	i, ok := c.Pass.take()
	if !ok {
		return waitResponse()
	}
	l := &lease{ID: c.NextLease, Worker: name, Kind: c.Pass.Kind, Task: i,
		Deadline: now.Add(c.set.LeaseTimeout), LastBeat: now}
	c.NextLease++
	c.Leases[l.ID] = l

	t := c.Pass.task(i)
	ch := c.Chunks[t.Chunk]
	resp := &skipgridpb.LeaseResponse{
		Kind:    l.Kind,
		LeaseId: l.ID,
		Chunk: &skipgridpb.Chunk{Id: uint32(ch.ID), Path: ch.Path, Gzip: ch.Gzip,
			Start: ch.Start, End: ch.End},
	}
	if l.Kind == skipgridpb.TaskKind_TASK_TRAIN {
		resp.Epoch = uint32(t.Round)
		resp.WordsDone = c.wordsDone()
		resp.WordsPlanned = c.wordsPlanned()
	}
	c.log.Debug("leased", "lease", l.ID, "worker", name, "task", c.describe(l),
		"attempt", c.Pass.Attempts[i])
	return resp
}

func waitResponse() *skipgridpb.LeaseResponse {
	return &skipgridpb.LeaseResponse{Kind: skipgridpb.TaskKind_TASK_WAIT, WaitMs: waitMs}
}

// heartbeat extends lease id of worker name and records its progress. valid is false when the
// lease is no longer the caller's.
func (c *core) heartbeat(name string, id, words uint64, now time.Time) (valid bool,
	wordsDone uint64) {
	c.tick(now)
	c.touch(name, now)

	l, ok := c.Leases[id]
	if !ok || l.Worker != name {
		return false, c.wordsDone()
	}
	if dt := now.Sub(l.LastBeat).Seconds(); dt > 0 && words >= l.Words {
		l.Rate = float64(words-l.Words) / dt
	}
	l.Words = max(l.Words, words)
	l.LastBeat = now
	l.Deadline = now.Add(c.set.LeaseTimeout)
	c.Workers[name].LastHeartbeat = now
	return true, c.wordsDone()
}

// complete takes the result of a lease. accepted is false, and the result ignored, when the
// lease is no longer the caller's (expired, released, or already completed). A malformed
// result is an error wrapping errBadRequest; its task goes back to the pool.
func (c *core) complete(req *skipgridpb.CompleteRequest, now time.Time) (accepted bool,
	err error) {
	c.tick(now)
	c.touch(req.GetName(), now)

	l, ok := c.Leases[req.GetLeaseId()]
	if !ok || l.Worker != req.GetName() {
		c.Counters.LateCompletes++
		c.log.Warn("ignored a complete for a lease that is no longer the caller's",
			"lease", req.GetLeaseId(), "worker", req.GetName(), "phase", phaseName(c.Phase))
		return false, nil
	}
	c.Workers[l.Worker].LastHeartbeat = now

	if l.Kind == skipgridpb.TaskKind_TASK_COUNT {
		return c.completeCount(l, req)
	}
	return c.completeTrain(l, req)
}

// completeCount merges a chunk's counts: exactly once per chunk, since a task has at most
// one live lease and a completed task is never leased again.
func (c *core) completeCount(l *lease, req *skipgridpb.CompleteRequest) (bool, error) {
	if err := checkCounts(req); err != nil {
		c.Counters.Rejected++
		c.log.Warn("rejected a count result", "lease", l.ID, "worker", l.Worker,
			"task", c.describe(l), "err", err)
		c.release(l, "rejected: "+err.Error())
		return false, fmt.Errorf("%w: lease %d (%s): %v", errBadRequest, l.ID, c.describe(l),
			err)
	}

	var sum uint64
	for i, w := range req.GetWords() {
		n := req.GetCounts()[i]
		c.Counts.AddN(w, n)
		sum = addSat(sum, n)
	}
	if sum != req.GetTokens() {
		c.log.Warn("count result: the counts do not add up to the reader's tokens",
			"task", c.describe(l), "sum", sum, "tokens", req.GetTokens())
	}
	ct := &c.Counters
	ct.Lines += req.GetLines()
	ct.EmptyLines += req.GetEmptyLines()
	ct.SplitLines += req.GetSplitLines()
	ct.Tokens += req.GetTokens()
	ct.CountChunks++

	delete(c.Leases, l.ID)
	c.Pass.finish(l.Task)
	c.log.Debug("counted", "lease", l.ID, "worker", l.Worker, "task", c.describe(l),
		"distinct", len(req.GetWords()), "tokens", sum)
	return true, nil
}

// checkCounts checks the lists of a count result.
func checkCounts(req *skipgridpb.CompleteRequest) error {
	words, counts := req.GetWords(), req.GetCounts()
	if len(words) != len(counts) {
		return fmt.Errorf("%d words but %d counts", len(words), len(counts))
	}
	for i, w := range words {
		if err := vectors.CheckWord(w); err != nil {
			return fmt.Errorf("word %d (%q): %v", i, w, err)
		}
	}
	return nil
}

// completeTrain takes a trained chunk. Its words (in-vocabulary tokens before subsampling)
// count towards its epoch exactly once; when the epoch's last chunk lands, the epoch's sum
// must equal the vocabulary's train words, or the job fails.
func (c *core) completeTrain(l *lease, req *skipgridpb.CompleteRequest) (bool, error) {
	t := c.Pass.task(l.Task)
	if loss := req.GetLossSum(); math.IsNaN(loss) || math.IsInf(loss, 0) {
		c.fail(fmt.Sprintf("worker %q reported a non-finite loss (%v) for %s", l.Worker, loss,
			c.describe(l)))
		return false, nil
	}

	delete(c.Leases, l.ID)
	e := &c.Epoch[t.Round]
	e.Words = addSat(e.Words, req.GetWordsTrained())
	e.LossSum += req.GetLossSum()
	e.LossTerms += req.GetLossTerms()
	ct := &c.Counters
	ct.AcceptedWords = addSat(ct.AcceptedWords, req.GetWordsTrained())
	ct.BytesPulled += req.GetBytesPulled()
	ct.BytesPushed += req.GetBytesPushed()
	ct.TrainChunks++
	c.recordResult(l.Task, req)
	c.log.Debug("trained", "lease", l.ID, "worker", l.Worker, "task", c.describe(l),
		"words", req.GetWordsTrained())

	if e.Words > c.TrainWords {
		c.fail(fmt.Sprintf("epoch %d: accepted train %s reached %d, more than the %d the "+
			"%s holds, at %s from worker %q; workers and coordinator disagree on the "+
			"%[5]s or the chunks", t.Round, c.unit(), e.Words, c.TrainWords, c.source(),
			c.describe(l), l.Worker))
		return true, nil
	}
	if c.Pass.finish(l.Task) {
		c.closeEpoch(t.Round)
	}
	return true, nil
}

// closeEpoch checks the exact word count of a finished epoch.
func (c *core) closeEpoch(epoch int) {
	e := c.Epoch[epoch]
	if e.Words != c.TrainWords {
		c.fail(fmt.Sprintf("epoch %d: accepted train %s %d, expected %d (the %s's total); "+
			"workers and coordinator disagree on the %[5]s or the chunks", epoch, c.unit(),
			e.Words, c.TrainWords, c.source()))
		return
	}
	c.log.Info("epoch done", "epoch", epoch, "words", e.Words, "loss", e.loss(),
		"learning_rate", c.learningRate())
}

// loss is the mean loss of the epoch's accepted chunks (0 before any).
func (e epochStats) loss() float64 {
	if e.LossTerms == 0 {
		return 0
	}
	return e.LossSum / float64(e.LossTerms)
}

// addSat returns a+b, or the largest uint64 when the sum overflows.
func addSat(a, b uint64) uint64 {
	s, carry := bits.Add64(a, b, 0)
	if carry != 0 {
		return math.MaxUint64
	}
	return s
}
