package coordinator

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/shard"
)

// Persistence of a fine-tuning job. A fine-tuning job saves its state as a pretraining job
// does (state.go), with two differences:
//
//  1. Its task vocabulary is not saved: the pretrained words that the labelled file lacks
//     have count 0, which a vocabulary file cannot hold. A resumed job reads the labelled
//     file and the vectors again and checks that they give the saved task (savedTask), the
//     chunks and the examples of an epoch (TrainWords).
//  2. Its rows do not start on the shards: the coordinator pushes them (loadRows). A shard
//     restored from a checkpoint, or one that held the job already, must not get them
//     again, since a push adds; see needsRows.

// finetuneIdentity is what a fine-tuning job adds to its identity (jobIdentity): the
// settings that shape its task, its rows and its chunks.
type finetuneIdentity struct {
	TrainFile        string  `json:"train_file"`
	Pretrained       string  `json:"pretrained"`
	PretrainedFormat string  `json:"pretrained_format"`
	PretrainedVocab  bool    `json:"pretrained_vocab"`
	FastTextEpochs   bool    `json:"fasttext_epochs"`
	Freeze           bool    `json:"freeze"`
	EmbeddingLRScale float64 `json:"embedding_lr_scale"`
	BigramBuckets    int     `json:"bigram_buckets"`
	BatchExamples    int     `json:"batch_examples"`
	ChunkExamples    int     `json:"chunk_examples"`
}

// finetuneIdentity returns the fine-tuning part of the job's identity; nil for pretraining.
func (c *Coordinator) finetuneIdentity() *finetuneIdentity {
	if !c.cfg.finetune() {
		return nil
	}
	f := c.cfg.Finetune
	return &finetuneIdentity{TrainFile: f.TrainFile, Pretrained: f.Pretrained,
		PretrainedFormat: f.PretrainedFormat.String(), PretrainedVocab: f.PretrainedVocab,
		FastTextEpochs: f.FastTextEpochs, Freeze: f.Freeze, EmbeddingLRScale: f.EmbeddingLRScale,
		BigramBuckets: f.BigramBuckets, BatchExamples: f.BatchExamples,
		ChunkExamples: f.ChunkExamples}
}

// savedTask is a fine-tuning job's task as it was planned when the state was saved.
type savedTask struct {
	// Passes is the passes over the examples (the core's epochs; see
	// FinetuneConfig.FastTextEpochs), Words the task vocabulary's size, Labels the
	// classifier's rows in order.
	Passes int      `json:"passes"`
	Words  int      `json:"words"`
	Labels []string `json:"labels"`
}

// savedTaskLocked returns the task to save: nil for pretraining and before training, the
// saved one while a resumed job has not read its task again; c.mu is held.
func (c *Coordinator) savedTaskLocked() *savedTask {
	co, ft := c.mu.core, c.mu.ft
	switch {
	case !co.Finetune:
		return nil
	case ft == nil:
		return c.st.task
	}
	return &savedTask{Passes: co.set.Epochs, Words: int(ft.words), Labels: ft.labels}
}

// loadTask takes the task of a saved fine-tuning job that was training; the task itself is
// read again by runFinetune, which checks it against this.
func (c *Coordinator) loadTask(path string, st *savedState) error {
	t := st.Task
	if t == nil || t.Passes < 1 || t.Passes > maxEpochs || st.Pass == nil ||
		st.Pass.Kind != skipgridpb.TaskKind_TASK_TRAIN || st.Pass.Rounds != t.Passes {
		return fmt.Errorf("coordinator state %s: a fine-tuning job's state without a "+
			"consistent task and training pass; remove the file to start the job afresh", path)
	}
	c.st.task, c.st.vocabDone = t, true
	return nil
}

// markTaskSaved lets the saved state hold the training pass of a fine-tuning job from now
// on, as saveVocab does for pretraining.
func (c *Coordinator) markTaskSaved() {
	if c.st == nil {
		return
	}
	c.st.mu.Lock()
	c.st.vocabDone = true
	c.st.mu.Unlock()
}

// checkResumedTask checks the task read again against the saved state of a resumed
// training pass: the same examples, chunks, vocabulary, labels and passes. Anything else
// means the labelled file or the vectors changed since the job was saved.
func (c *Coordinator) checkResumedTask(tk *ftTask, chunks []shard.Chunk) error {
	if c.st == nil || c.st.task == nil {
		return nil
	}
	saved := c.st.task
	var diffs []string
	differ := func(what string, was, now any) {
		diffs = append(diffs, fmt.Sprintf("%s (saved %v, now %v)", what, was, now))
	}
	c.mu.Lock()
	co := c.mu.core
	if n := uint64(len(tk.ds.Examples)); co.TrainWords != n {
		differ("examples", co.TrainWords, n)
	}
	if !slices.Equal(co.Chunks, chunks) {
		differ("chunks", len(co.Chunks), len(chunks))
	}
	c.mu.Unlock()
	if saved.Passes != tk.passes {
		differ("passes", saved.Passes, tk.passes)
	}
	if saved.Words != tk.vocab.Len() {
		differ("vocabulary words", saved.Words, tk.vocab.Len())
	}
	if !slices.Equal(saved.Labels, tk.labels) {
		differ("labels", saved.Labels, tk.labels)
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%w: the saved fine-tuning job differs from what %s and the "+
			"vectors give now in %v; resume with the files the job started with, or use "+
			"another output directory for a new job", ErrStateMismatch,
			c.cfg.Finetune.TrainFile, diffs)
	}
	return nil
}

// resumedFinetune reports whether the core holds a fine-tuning pass restored from a saved
// state.
func (c *core) resumedFinetune() bool {
	return c.Finetune && c.Pass != nil && c.Pass.Kind == skipgridpb.TaskKind_TASK_TRAIN
}

// beginFinetune learns every shard's incarnation (recovering the shards that restarted while
// a resumed coordinator was down) and enters training over chunks, or goes back to the
// training pass a resumed job was in, with its progress and so its learning rate.
func (c *Coordinator) beginFinetune(ctx context.Context, set *ftShards, tk *ftTask,
	chunks []shard.Chunk) error {
	c.markTaskSaved()
	if err := c.watchShards(ctx, set.shardSet, allShards(len(set.clients))); err != nil {
		return err
	}
	c.locked(func(co *core, now time.Time) {
		if co.resumedFinetune() {
			co.Vocab = tk.trained
			co.Phase = skipgridpb.Phase_PHASE_TRAINING
			co.LastActivity = now
			c.st.keepTimes(&c.mu.times)
			c.log.Info("training resumed", "passes", co.set.Epochs, "tasks_done",
				co.Pass.DoneTotal, "of", co.Pass.total(), "learning_rate", co.learningRate())
			return
		}
		c.mu.times.Training = now
		co.startFinetune(chunks, uint64(len(tk.ds.Examples)), tk.passes, tk.trained, now)
	})
	_ = c.saveState(true)
	return nil
}

// needsRows decides whether shard s gets the job's initial input rows pushed after a
// Configure that answered cr. before is the shard's Stats answer from before that
// Configure (nil when the shard keeps no stats), resumed whether this coordinator resumed
// a training pass. A shard restored from a checkpoint holds its rows; a shard that held no
// job was built empty by the Configure and needs them. A shard that held the job already
// keeps training rows when the coordinator resumed; otherwise they are an earlier
// coordinator's, which saved no state, and the job cannot tell what they hold.
func needsRows(s int, addr string, before *skipgridpb.StatsResponse,
	cr *skipgridpb.ConfigureResponse, resumed bool) (bool, error) {
	switch {
	case cr.GetRestored():
		return false, nil
	case before == nil || before.GetDim() == 0:
		return true, nil
	case resumed:
		return false, nil
	}
	return false, fmt.Errorf("PS shard %d at %s already holds this job's rows, from an "+
		"earlier coordinator that saved no training state; restart the shard (without its "+
		"checkpoints) to start the job afresh", s, addr)
}

// finetuneTask returns a fine-tuning job's task once it is read; nil for pretraining.
func (c *Coordinator) finetuneTask() *ftTask {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.ft == nil {
		return nil
	}
	return c.mu.ft.task
}

// reloadRows loads the initial input rows of restarted shard s when it came back empty. st
// is the shard's Stats answer from before recoverShard configured it again, cr the answer
// to that Configure.
func (c *Coordinator) reloadRows(ctx context.Context, set *shardSet, s int, tk *ftTask,
	st *skipgridpb.StatsResponse, cr *skipgridpb.ConfigureResponse) error {
	load, err := needsRows(s, set.addrs[s], st, cr, true)
	if err != nil || !load {
		return err
	}
	var sent atomic.Uint64
	if err := c.loadShard(ctx, set, s, tk, &sent); err != nil {
		return fmt.Errorf("load the initial rows of restarted PS shard %d: %w", s, err)
	}
	c.log.Warn("PS shard came back empty; its initial rows are loaded again", "shard", s,
		"rows", len(set.rows[s]), "bytes", sent.Load())
	return nil
}
