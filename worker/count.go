package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skipgrid/skipgrid/corpus"
	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/shard"
	"github.com/skipgrid/skipgrid/vocab"
)

// errLeaseLost ends a chunk whose lease the coordinator gave to someone else.
var errLeaseLost = errors.New("lease no longer held")

// count reads one chunk and reports its word counts.
func (w *Worker) count(ctx context.Context, lease *skipgridpb.LeaseResponse) error {
	spec, err := w.jobSpec(ctx)
	if err != nil {
		return err
	}
	g := w.guard(ctx, lease, spec)
	defer g.stop()

	r, err := openChunk(lease.GetChunk(), spec)
	if err != nil {
		return w.fail(ctx, lease, err)
	}
	defer r.Close()

	counter := vocab.NewCounter()
	for {
		sent, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return w.fail(ctx, lease, err)
		}
		for _, tok := range sent {
			counter.Add(tok)
		}
		g.words.Add(uint64(len(sent)))
		if g.ctx.Err() != nil {
			return g.abandon(ctx)
		}
	}

	words, counts := counter.Sorted()
	st := r.Stats()
	req := &skipgridpb.CompleteRequest{
		Name: w.cfg.Name, LeaseId: lease.GetLeaseId(), Words: words, Counts: counts,
		Lines: st.Lines, EmptyLines: st.EmptyLines, SplitLines: st.SplitLines, Tokens: st.Tokens,
	}
	w.log.Debug("counted chunk", "chunk", lease.GetChunk().GetId(), "distinct", len(words),
		"tokens", st.Tokens)
	g.stop() // no heartbeat may race the completion and see the lease gone
	return w.complete(ctx, req)
}

// openChunk opens the lease's chunk with the job's tokenizer.
func openChunk(c *skipgridpb.Chunk, spec *skipgridpb.JobSpec) (*corpus.Reader, error) {
	tok := corpus.TokenizerWords
	if spec.GetTokenizer() == skipgridpb.Tokenizer_TOKENIZER_WHITESPACE {
		tok = corpus.TokenizerWhitespace
	}
	ch := shard.Chunk{
		ID: int(c.GetId()), Path: c.GetPath(), Gzip: c.GetGzip(),
		Start: c.GetStart(), End: c.GetEnd(),
	}
	r, err := corpus.OpenChunk(ch, corpus.ReaderOptions{
		Tokenizer: tok, MaxSentence: int(spec.GetMaxSentenceLen()),
	})
	if err != nil {
		return nil, fmt.Errorf("open chunk %d: %w", c.GetId(), err)
	}
	return r, nil
}

// complete reports a finished lease; a refusal (late or duplicate) is logged, not an error.
func (w *Worker) complete(ctx context.Context, req *skipgridpb.CompleteRequest) error {
	var resp *skipgridpb.CompleteResponse
	err := w.retry(ctx, "complete lease", func(ctx context.Context) error {
		var err error
		resp, err = w.coord.Complete(ctx, req)
		return err
	})
	if err != nil {
		return err
	}
	if !resp.GetAccepted() {
		w.log.Warn("coordinator ignored a completed lease (it was re-leased or already counted)",
			"lease", req.GetLeaseId())
	}
	return nil
}

// fail reports an error that the job cannot survive and returns it.
func (w *Worker) fail(ctx context.Context, lease *skipgridpb.LeaseResponse, cause error) error {
	w.log.Error("task failed; failing the job", "lease", lease.GetLeaseId(), "err", cause)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.RPCTimeout)
	defer cancel()
	_, err := w.coord.Fail(fctx, &skipgridpb.FailRequest{
		Name: w.cfg.Name, LeaseId: lease.GetLeaseId(), Reason: cause.Error(),
	})
	if err != nil {
		w.log.Error("could not report the failure to the coordinator", "err", err)
	}
	return cause
}

// jobSpec fetches the job's settings.
func (w *Worker) jobSpec(ctx context.Context) (*skipgridpb.JobSpec, error) {
	var spec *skipgridpb.JobSpec
	err := w.retry(ctx, "get job", func(ctx context.Context) error {
		var err error
		spec, err = w.coord.GetJob(ctx, &skipgridpb.GetJobRequest{Name: w.cfg.Name})
		return err
	})
	return spec, err
}

// leaseGuard heartbeats one lease in the background and cancels its context when the
// coordinator no longer recognises the lease.
type leaseGuard struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	words  atomic.Uint64
	done   chan struct{}
	exited chan struct{}
	once   sync.Once
	w      *Worker
	lease  uint64
}

// guard starts heartbeats for lease every quarter of the lease deadline.
func (w *Worker) guard(ctx context.Context, lease *skipgridpb.LeaseResponse,
	spec *skipgridpb.JobSpec) *leaseGuard {
	gctx, cancel := context.WithCancelCause(ctx)
	g := &leaseGuard{ctx: gctx, cancel: cancel, done: make(chan struct{}),
		exited: make(chan struct{}), w: w, lease: lease.GetLeaseId()}
	every := max(time.Duration(spec.GetLeaseMs())*time.Millisecond/4, 50*time.Millisecond)
	go g.run(ctx, every)
	return g
}

// run heartbeats until stop, the parent's end, or the lease's loss. Heartbeats use the
// parent context, so that stopping the guard never cuts a call short.
func (g *leaseGuard) run(parent context.Context, every time.Duration) {
	defer close(g.exited)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-g.done:
			return
		case <-parent.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(parent, g.w.cfg.RPCTimeout)
		resp, err := g.w.coord.Heartbeat(ctx, &skipgridpb.HeartbeatRequest{
			Name: g.w.cfg.Name, LeaseId: g.lease, Words: g.words.Load(),
		})
		cancel()
		select {
		case <-g.done: // the chunk finished while the call was out: its answer is moot
			return
		default:
		}
		switch {
		case err != nil:
			g.w.log.Warn("heartbeat failed", "lease", g.lease, "err", err)
		case !resp.GetValid():
			g.w.log.Warn("lease lost: abandoning the chunk", "lease", g.lease)
			g.cancel(errLeaseLost)
			return
		}
	}
}

// stop ends the heartbeats and waits for the last one; calling it again does nothing.
func (g *leaseGuard) stop() {
	g.once.Do(func() {
		close(g.done)
		<-g.exited
		g.cancel(nil)
	})
}

// abandon turns a cancelled guard into the loop's next step: a lost lease is not an error,
// the end of the worker's own context is.
func (g *leaseGuard) abandon(ctx context.Context) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}
