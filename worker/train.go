package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"

	"github.com/skipgrid/skipgrid/proto/payload"
	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/shard"
	"github.com/skipgrid/skipgrid/vocab"
	"github.com/skipgrid/skipgrid/word2vec"
)

// trainJob is what every training thread shares once the vocabulary is final.
type trainJob struct {
	spec      *skipgridpb.JobSpec
	vocab     *vocab.Vocab
	params    word2vec.Params
	sampler   *word2vec.Sampler
	sub       *word2vec.Subsampler
	links     *shardLinks
	shardOf   []uint8 // shard of each row id
	shardRows []int   // rows each shard owns
	keyOpts   payload.Options
	valueOpts payload.Options
	limits    payload.Limits
}

// trainJob returns the shared training state, building it on first use.
func (w *Worker) trainJob(ctx context.Context) (*trainJob, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mu.train != nil {
		return w.mu.train, nil
	}

	spec, err := w.jobSpec(ctx)
	if err != nil {
		return nil, err
	}
	var msg *skipgridpb.Vocab
	err = w.retry(ctx, "get vocabulary", func(ctx context.Context) error {
		msg, err = w.coord.GetVocab(ctx, &skipgridpb.GetVocabRequest{Name: w.cfg.Name})
		return err
	})
	if err != nil {
		return nil, err
	}
	v, err := vocab.New(msg.GetWords(), msg.GetCounts())
	if err != nil {
		return nil, fmt.Errorf("vocabulary from coordinator: %w", err)
	}
	if uint64(v.Len()) != spec.GetVocabSize() {
		return nil, fmt.Errorf("vocabulary has %d words, job says %d", v.Len(), spec.GetVocabSize())
	}

	j, err := newTrainJob(spec, v)
	if err != nil {
		return nil, err
	}
	if j.links, err = w.dialShards(ctx, spec); err != nil {
		return nil, err
	}
	w.log.Info("training state ready", "vocab", v.Len(), "train_words", v.TrainWords(),
		"shards", j.links.len(), "model", j.params.Model, "dim", j.params.Dim)
	w.mu.train = j
	return j, nil
}

// newTrainJob derives the sampling tables and the shard routing from the job and vocabulary.
func newTrainJob(spec *skipgridpb.JobSpec, v *vocab.Vocab) (*trainJob, error) {
	model := word2vec.SkipGram
	if spec.GetModel() == skipgridpb.Model_MODEL_CBOW {
		model = word2vec.CBOW
	}
	p := word2vec.Params{Model: model, Dim: int(spec.GetDim()), Window: int(spec.GetWindow()),
		Negative: int(spec.GetNegative())}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("job settings: %w", err)
	}
	sampler, err := word2vec.NewSampler(v.Counts, word2vec.UnigramPower)
	if err != nil {
		return nil, err
	}

	shards := len(spec.GetPsAddresses())
	if shards == 0 || shards > 256 {
		return nil, fmt.Errorf("job names %d parameter-server shards, want 1..256", shards)
	}
	m, err := shard.NewMap(uint64(v.Len()), shards)
	if err != nil {
		return nil, err
	}
	j := &trainJob{
		spec: spec, vocab: v, params: p, sampler: sampler,
		sub:       word2vec.NewSubsampler(v.Counts, spec.GetSample()),
		shardOf:   make([]uint8, v.Len()),
		shardRows: make([]int, shards),
		keyOpts:   payload.Options{Compress: payload.Compression(spec.GetCompression())},
		valueOpts: payload.Options{
			Values:   payload.ValueCodec(spec.GetValueCodec()),
			Compress: payload.Compression(spec.GetCompression()),
		},
		limits: payload.Limits{MaxRows: v.Len(), MaxDim: p.Dim, MaxBytes: 1 << 30},
	}
	for id := range v.Len() {
		s := m.Shard(uint32(id))
		j.shardOf[id] = uint8(s)
		j.shardRows[s]++
	}
	return j, nil
}

// thread is one training goroutine's private state.
type thread struct {
	job     *trainJob
	planner *word2vec.Planner
	trainer *word2vec.Trainer
	ids     []int32
	ends    []int32
	route   route
	bufs    [2][]float32
	orig    [2][]float32
}

func newThread(j *trainJob) (*thread, error) {
	pl, err := word2vec.NewPlanner(j.params, j.sampler)
	if err != nil {
		return nil, err
	}
	tr, err := word2vec.NewTrainer(j.params)
	if err != nil {
		return nil, err
	}
	return &thread{job: j, planner: pl, trainer: tr}, nil
}

// chunkRun is the running account of one training lease.
type chunkRun struct {
	lease   *skipgridpb.LeaseResponse
	guard   *leaseGuard
	rng     *rand.PCG
	words   uint64 // in-vocabulary words read
	counted uint64 // words already counted in the metrics
	steps   int
	loss    word2vec.Loss
	traffic traffic
}

// train runs one TASK_TRAIN lease.
func (w *Worker) train(ctx context.Context, th *thread, lease *skipgridpb.LeaseResponse) error {
	j := th.job
	r, err := openChunk(lease.GetChunk(), j.spec)
	if err != nil {
		return w.fail(ctx, lease, err)
	}
	defer r.Close()
	g := w.guard(ctx, lease, j.spec)
	defer g.stop()

	// Each (epoch, chunk) has its own random stream, so a retried chunk replays identically.
	run := &chunkRun{lease: lease, guard: g,
		rng: rand.NewPCG(j.spec.GetSeed(),
			uint64(lease.GetEpoch())<<32|uint64(lease.GetChunk().GetId()))}
	batch := int(max(j.spec.GetBatchWords(), 1))
	th.ids, th.ends = th.ids[:0], th.ends[:0]
	for {
		sent, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return w.fail(ctx, lease, err)
		}
		th.addSentence(sent, run)
		g.words.Store(run.words)
		if len(th.ids) >= batch {
			if err := w.step(g.ctx, th, run); err != nil {
				return w.stepError(ctx, g, lease, err)
			}
		}
	}
	if err := w.step(g.ctx, th, run); err != nil {
		return w.stepError(ctx, g, lease, err)
	}

	st := r.Stats()
	g.stop() // no heartbeat may race the completion and see the lease gone
	return w.complete(ctx, &skipgridpb.CompleteRequest{
		Name: w.cfg.Name, LeaseId: lease.GetLeaseId(),
		WordsTrained: run.words, LossSum: run.loss.Sum, LossTerms: uint64(run.loss.Terms),
		BytesPulled: run.traffic.pulled, BytesPushed: run.traffic.pushed,
		Lines: st.Lines, EmptyLines: st.EmptyLines, SplitLines: st.SplitLines, Tokens: st.Tokens,
	})
}

// addSentence maps a sentence to row ids, counts its vocabulary words and keeps those that
// survive subsampling; a sentence left with fewer than two words trains nothing and is dropped.
func (th *thread) addSentence(sent [][]byte, run *chunkRun) {
	start := len(th.ids)
	for _, tok := range sent {
		id, ok := th.job.vocab.ID(tok)
		if !ok {
			continue
		}
		run.words++
		if th.job.sub.Keep(id, uint32(run.rng.Uint64())) {
			th.ids = append(th.ids, id)
		}
	}
	if len(th.ids)-start < 2 {
		th.ids = th.ids[:start]
		return
	}
	th.ends = append(th.ends, int32(len(th.ids)))
}

// step trains the buffered sentences as one minibatch: plan, pull, train, push.
func (w *Worker) step(ctx context.Context, th *thread, run *chunkRun) error {
	if len(th.ids) == 0 {
		w.met.words.Add(float64(run.words - run.counted))
		run.counted = run.words
		return nil
	}
	j := th.job
	alpha := learningRate(j.spec, run.lease.GetWordsDone()+run.words, run.lease.GetWordsPlanned())
	b := th.planner.Plan(th.ids, th.ends, run.rng)
	th.ids, th.ends = th.ids[:0], th.ends[:0]

	bySlot := [2][]uint32{th.planner.InIDs, th.planner.OutIDs}
	th.route.build(j.shardOf, j.links.len(), bySlot)
	dim := j.params.Dim
	for t := range tables {
		th.bufs[t] = resize(th.bufs[t], len(bySlot[t])*dim)
		th.orig[t] = resize(th.orig[t], len(bySlot[t])*dim)
	}
	err := w.met.pull.observe(&run.traffic.pulled, func() error {
		return j.pull(ctx, w, &th.route, th.bufs, &run.traffic)
	})
	if err != nil {
		return err
	}
	for t := range tables {
		copy(th.orig[t], th.bufs[t])
	}

	loss := th.trainer.Train(b, th.bufs[0], th.bufs[1], float32(alpha))
	run.steps++
	if math.IsNaN(loss.Sum) || math.IsInf(loss.Sum, 0) {
		return &stepError{run: run, alpha: alpha, cause: errors.New("non-finite loss")}
	}
	run.loss.Sum += loss.Sum
	run.loss.Terms += loss.Terms

	err = w.met.push.observe(&run.traffic.pushed, func() error {
		return j.push(ctx, w, &th.route, th.bufs, th.orig, &run.traffic)
	})
	if err != nil {
		var nf *nonFiniteError
		if errors.As(err, &nf) {
			return &stepError{run: run, alpha: alpha, cause: err}
		}
		return err
	}
	w.met.trained(run.words-run.counted, loss.Sum, loss.Terms)
	run.counted = run.words
	return nil
}

// learningRate is word2vec's linear decay over all epochs' words, floored at min_alpha.
func learningRate(spec *skipgridpb.JobSpec, done, planned uint64) float64 {
	a := spec.GetAlpha() * (1 - float64(done)/float64(planned+1))
	return max(a, spec.GetMinAlpha())
}

func resize(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// stepError is a training step that produced non-finite numbers: the job must stop.
type stepError struct {
	run   *chunkRun
	alpha float64
	cause error
}

func (e *stepError) Error() string {
	l := e.run.lease
	return fmt.Sprintf("training diverged at epoch %d, chunk %d, step %d, learning rate %g: %v "+
		"(lower --alpha)", l.GetEpoch()+1, l.GetChunk().GetId(), e.run.steps, e.alpha, e.cause)
}

// stepError decides what a failed step means: a lost lease abandons the chunk, divergence
// fails the job, anything else ends this worker.
func (w *Worker) stepError(ctx context.Context, g *leaseGuard, lease *skipgridpb.LeaseResponse,
	err error) error {
	if errors.Is(context.Cause(g.ctx), errLeaseLost) {
		return g.abandon(ctx)
	}
	var se *stepError
	if errors.As(err, &se) {
		return w.fail(ctx, lease, err)
	}
	return err
}
