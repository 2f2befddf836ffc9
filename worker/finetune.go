package worker

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/skipgrid/skipgrid/classify"
	"github.com/skipgrid/skipgrid/proto/payload"
	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/shard"
)

// ftJob is a fine-tuning job's state shared by a worker's threads, built once.
type ftJob struct {
	// rows holds the spec, the shard clients, the input table's routing and the payload
	// options; its pull and push move both tables.
	rows *trainJob
	data *classify.Encoded
	dim  int
	// labels is the number of classifier rows; clsShard the shard of each, clsIDs 0..labels-1.
	labels   int
	clsShard []uint8
	clsIDs   []uint32
	frozen   bool
	lrScale  float64
}

// ftThread is one training goroutine's fine-tuning state.
type ftThread struct {
	job       *ftJob
	trainer   *classify.Trainer
	perm      []int32
	permEpoch int
	// inRoute routes the batch's input rows, clsRoute the classifier rows, and route is both.
	inRoute, clsRoute, route route
	// slot maps an input row to its place in bufs[0]; inIDs is the reverse.
	slot  map[int32]int32
	inIDs []uint32
	// local holds the batch's examples as slots, back to back, localEnd where each ends.
	local    []int32
	localEnd []int32
	bufs     [2][]float32
	orig     [2][]float32
}

// ftRun is the running account of one fine-tuning lease.
type ftRun struct {
	lease   *skipgridpb.LeaseResponse
	done    uint64 // examples trained in this lease
	steps   int
	loss    float64
	terms   uint64
	traffic traffic
}

// finetuneThread returns a new fine-tuning thread when the job fine-tunes, and nil for
// pretraining.
func (w *Worker) finetuneThread(ctx context.Context) (*ftThread, error) {
	spec, err := w.jobSpec(ctx)
	if err != nil {
		return nil, err
	}
	if spec.GetKind() != skipgridpb.JobKind_JOB_KIND_FINETUNE {
		return nil, nil
	}
	j, err := w.finetuneJob(ctx, spec)
	if err != nil {
		return nil, err
	}
	th := &ftThread{job: j, trainer: classify.NewTrainer(j.dim, j.labels), permEpoch: -1,
		slot: map[int32]int32{}}
	th.clsRoute.build(j.clsShard, j.rows.links.len(), [2][]uint32{j.clsIDs, nil})
	return th, nil
}

// finetuneJob returns the shared fine-tuning state, building it on first use: the
// vocabulary from the coordinator, the labelled file read and encoded, the shards dialled.
func (w *Worker) finetuneJob(ctx context.Context, spec *skipgridpb.JobSpec) (*ftJob, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mu.ft != nil {
		return w.mu.ft, nil
	}

	var msg *skipgridpb.Vocab
	err := w.retry(ctx, "get vocabulary", func(ctx context.Context) error {
		var err error
		msg, err = w.coord.GetVocab(ctx, &skipgridpb.GetVocabRequest{Name: w.cfg.Name})
		return err
	})
	if err != nil {
		return nil, err
	}
	v, err := classify.NewVocab(msg.GetWords(), msg.GetCounts())
	if err != nil {
		return nil, fmt.Errorf("vocabulary from coordinator: %w", err)
	}
	if uint64(v.Len()) != spec.GetVocabSize() {
		return nil, fmt.Errorf("vocabulary has %d words, job says %d", v.Len(),
			spec.GetVocabSize())
	}
	j, err := newFtJob(spec, v)
	if err != nil {
		return nil, err
	}
	if j.rows.links, err = w.dialShards(ctx, spec); err != nil {
		return nil, err
	}
	w.log.Info("fine-tuning state ready", "examples", j.data.Len(), "words", v.Len(),
		"labels", j.labels, "bigram_buckets", spec.GetBigramBuckets(), "frozen", j.frozen,
		"shards", j.rows.links.len(), "dim", j.dim)
	w.mu.ft = j
	return j, nil
}

// newFtJob reads and encodes the labelled file and derives the shard routing.
func newFtJob(spec *skipgridpb.JobSpec, v *classify.Vocab) (*ftJob, error) {
	dim, labels := int(spec.GetDim()), len(spec.GetLabels())
	if dim < 1 || labels < 1 {
		return nil, fmt.Errorf("job settings: dim %d and %d labels, want both positive", dim,
			labels)
	}
	ds, err := classify.ReadFile(spec.GetTrainFile(),
		classify.JobReadOptions(spec.GetTokenizer(), int(spec.GetMaxSentenceLen())))
	if err != nil {
		return nil, err
	}
	if uint64(len(ds.Examples)) != spec.GetExamples() {
		return nil, fmt.Errorf("this worker reads %d examples from %s, the coordinator read "+
			"%d; every node must see the same file", len(ds.Examples), spec.GetTrainFile(),
			spec.GetExamples())
	}
	buckets := int(spec.GetBigramBuckets())
	data, err := classify.Encode(ds, v, spec.GetLabels(), buckets)
	if err != nil {
		return nil, err
	}

	shards := len(spec.GetPsAddresses())
	if shards == 0 || shards > 256 {
		return nil, fmt.Errorf("job names %d parameter-server shards, want 1..256", shards)
	}
	rows := int(classify.InputRows(v.Len(), buckets))
	in, err := shard.NewMap(uint64(rows), shards)
	if err != nil {
		return nil, err
	}
	cls, err := shard.NewMap(uint64(labels), shards)
	if err != nil {
		return nil, err
	}
	tj := &trainJob{
		spec: spec, shardOf: make([]uint8, rows), shardRows: make([]int, shards),
		keyOpts: payload.Options{Compress: payload.Compression(spec.GetCompression())},
		valueOpts: payload.Options{
			Values:   payload.ValueCodec(spec.GetValueCodec()),
			Compress: payload.Compression(spec.GetCompression()),
		},
		limits: payload.Limits{MaxRows: max(rows, labels), MaxDim: dim, MaxBytes: 1 << 30},
	}
	for id := range rows {
		s := in.Shard(uint32(id))
		tj.shardOf[id] = uint8(s)
		tj.shardRows[s]++
	}
	j := &ftJob{rows: tj, data: data, dim: dim, labels: labels,
		clsShard: make([]uint8, labels), clsIDs: make([]uint32, labels),
		frozen: spec.GetFreezeEmbeddings(), lrScale: spec.GetEmbeddingLrScale()}
	for k := range labels {
		j.clsShard[k], j.clsIDs[k] = uint8(cls.Shard(uint32(k))), uint32(k)
	}
	return j, nil
}

// finetune runs one TASK_TRAIN lease of a fine-tuning job.
func (w *Worker) finetune(ctx context.Context, th *ftThread,
	lease *skipgridpb.LeaseResponse) error {
	j := th.job
	n := int64(j.data.Len())
	start, end := lease.GetChunk().GetStart(), lease.GetChunk().GetEnd()
	if start < 0 || end < start || end > n {
		return w.fail(ctx, lease, fmt.Errorf("lease %d names examples %d..%d, but the file "+
			"holds %d", lease.GetLeaseId(), start, end, n))
	}
	perm := th.permutation(int(lease.GetEpoch()))
	g := w.guard(ctx, lease, j.rows.spec)
	defer g.stop()

	run := &ftRun{lease: lease}
	batch := int64(max(j.rows.spec.GetBatchExamples(), 1))
	for pos := start; pos < end; pos += batch {
		if g.ctx.Err() != nil {
			return g.abandon(ctx)
		}
		if err := w.ftStep(g.ctx, th, perm[pos:min(pos+batch, end)], run); err != nil {
			return w.stepError(ctx, g, lease, err)
		}
		g.words.Store(run.done)
	}
	return w.complete(ctx, &skipgridpb.CompleteRequest{
		Name: w.cfg.Name, LeaseId: lease.GetLeaseId(),
		WordsTrained: run.done, LossSum: run.loss, LossTerms: run.terms,
		BytesPulled: run.traffic.pulled, BytesPushed: run.traffic.pushed,
	})
}

// permutation returns the order of the examples in epoch, computed once per epoch.
func (th *ftThread) permutation(epoch int) []int32 {
	if th.permEpoch != epoch {
		th.perm = classify.Permutation(th.job.data.Len(), th.job.rows.spec.GetSeed(), epoch)
		th.permEpoch = epoch
	}
	return th.perm
}

// ftStep trains the examples idx as one batch: pull, train one by one, push.
func (w *Worker) ftStep(ctx context.Context, th *ftThread, idx []int32, run *ftRun) error {
	j := th.job
	spec := j.rows.spec
	alpha := learningRate(spec, run.lease.GetWordsDone()+run.done, run.lease.GetWordsPlanned())
	lrIn := float32(alpha * j.lrScale)
	if j.frozen {
		lrIn = 0
	}

	th.collect(idx)
	th.routeBatch(j.rows.links.len())
	th.bufs[0] = resize(th.bufs[0], len(th.inIDs)*j.dim)
	th.bufs[1] = resize(th.bufs[1], j.labels*j.dim)
	for t := range th.bufs {
		th.orig[t] = resize(th.orig[t], len(th.bufs[t]))
	}
	err := w.met.pull.observe(&run.traffic.pulled, func() error {
		return j.rows.pull(ctx, w, &th.route, th.bufs, &run.traffic)
	})
	if err != nil {
		return err
	}
	for t := range th.bufs {
		copy(th.orig[t], th.bufs[t])
	}

	run.steps++
	batchLoss, batchTerms, err := th.train(idx, float32(alpha), lrIn)
	if err != nil {
		return &stepError{run: &chunkRun{lease: run.lease, steps: run.steps}, alpha: alpha,
			cause: err}
	}
	run.done += uint64(len(idx))
	run.loss += batchLoss
	run.terms += uint64(batchTerms)

	err = w.met.push.observe(&run.traffic.pushed, func() error {
		return j.rows.push(ctx, w, &th.route, th.bufs, th.orig, &run.traffic)
	})
	if err != nil {
		var nf *nonFiniteError
		if errors.As(err, &nf) {
			return &stepError{run: &chunkRun{lease: run.lease, steps: run.steps}, alpha: alpha,
				cause: err}
		}
		return err
	}
	// The metrics' words count examples in a fine-tuning job.
	w.met.trained(uint64(len(idx)), batchLoss, batchTerms)
	return nil
}

// train trains the examples idx, one after the other, on the pulled rows, and returns the
// sum of their losses and the number of examples that had a loss.
func (th *ftThread) train(idx []int32, lrOut, lrIn float32) (float64, int, error) {
	var sum float64
	var terms int
	var from int32
	for i, ex := range idx {
		_, labels := th.job.data.Example(int(ex))
		rows := th.local[from:th.localEnd[i]]
		from = th.localEnd[i]
		loss, ok := th.trainer.Step(th.bufs[0], rows, th.bufs[1], labels, lrOut, lrIn)
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return 0, 0, fmt.Errorf("non-finite loss at example %d", ex)
		}
		if ok {
			sum += loss
			terms++
		}
	}
	return sum, terms, nil
}

// collect gives every distinct input row of the examples idx a slot, and writes each
// example's rows as slots to local.
func (th *ftThread) collect(idx []int32) {
	clear(th.slot)
	th.inIDs, th.local, th.localEnd = th.inIDs[:0], th.local[:0], th.localEnd[:0]
	for _, ex := range idx {
		rows, _ := th.job.data.Example(int(ex))
		for _, r := range rows {
			s, ok := th.slot[r]
			if !ok {
				s = int32(len(th.inIDs))
				th.slot[r] = s
				th.inIDs = append(th.inIDs, uint32(r))
			}
			th.local = append(th.local, s)
		}
		th.localEnd = append(th.localEnd, int32(len(th.local)))
	}
}

// routeBatch groups the batch's input rows by shard and joins them with the classifier's
// rows in route.
func (th *ftThread) routeBatch(shards int) {
	th.inRoute.build(th.job.rows.shardOf, shards, [2][]uint32{th.inIDs, nil})
	r := &th.route
	if len(r.ids) != shards {
		r.ids = make([][2][]uint32, shards)
		r.slots = make([][2][]int32, shards)
	}
	for s := range shards {
		r.ids[s] = [2][]uint32{th.inRoute.ids[s][0], th.clsRoute.ids[s][0]}
		r.slots[s] = [2][]int32{th.inRoute.slots[s][0], th.clsRoute.slots[s][0]}
	}
}
