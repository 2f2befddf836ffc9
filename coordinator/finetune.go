package coordinator

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/skipgrid/skipgrid/classify"
	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/shard"
	"github.com/skipgrid/skipgrid/vectors"
	"github.com/skipgrid/skipgrid/vocab"
)

// FinetuneInfo is the part of a fine-tuning job's record that pretraining lacks.
type FinetuneInfo struct {
	TrainFile string `json:"train_file"`
	// Read counts what reading the labelled file found; Examples is its labelled lines.
	Read     classify.Summary `json:"read"`
	Examples int              `json:"examples"`
	// Labels are the classifier rows, in order.
	Labels []string `json:"labels"`
	// Pretrained names the vectors file (empty with random initialisation), its format and
	// its number of vectors.
	Pretrained       string `json:"pretrained,omitempty"`
	PretrainedFormat string `json:"pretrained_format,omitempty"`
	PretrainedWords  int    `json:"pretrained_words"`
	RandomInit       bool   `json:"random_init"`
	// VocabSize is the number of word rows; TrainedWords the first of them that occur in the
	// training file; MissingWords the training words without a pretrained vector, which
	// start as InitInfo says (with random initialisation: every training word).
	VocabSize    int    `json:"vocab_size"`
	TrainedWords int    `json:"trained_words"`
	MissingWords int    `json:"missing_words"`
	InitInfo     string `json:"init"`
	// BigramBuckets is the number of bigram rows after the word rows.
	BigramBuckets int `json:"bigram_buckets"`
	// Tokens counts the examples' labels, tokens and one end of line each, as fastText
	// counts a file's tokens; Passes is the passes over the examples that the job's epochs
	// made, counted as fastText counts them when FastTextEpochs is set (see
	// FinetuneConfig.FastTextEpochs).
	Tokens           uint64  `json:"tokens"`
	FastTextEpochs   bool    `json:"fasttext_epochs"`
	Passes           int     `json:"passes"`
	Frozen           bool    `json:"frozen"`
	EmbeddingLRScale float64 `json:"embedding_lr_scale"`
	BatchExamples    int     `json:"batch_examples"`
	ChunkExamples    int     `json:"chunk_examples"`
	// LoadBytes counts the payload bytes this run of the coordinator pushed to load initial
	// rows: into every shard at the start, and into a shard that came back empty. A shard
	// restored from a checkpoint, or one a resumed coordinator found with the job, needs none.
	LoadBytes uint64 `json:"load_bytes"`
}

// initInfo documents the start of rows without a pretrained vector.
const initInfo = "uniform in [-1/dim, 1/dim) from the seed and the row (classify.InitRow)"

// finetuneState is what GetJob tells workers of a fine-tuning job once the labelled file is
// read.
type finetuneState struct {
	labels   []string
	examples uint64
	words    uint64
	// task is the job's data; recoverShard loads a restarted shard's initial rows from it.
	task *ftTask
}

// ftTask is a fine-tuning job's data, read once by the coordinator.
type ftTask struct {
	ds      *classify.Dataset
	vocab   *classify.Vocab
	trained *vocab.Vocab
	labels  []string
	// pre holds the pretrained vectors (nil with random initialisation); preRow[i] is word
	// i's row in pre, or -1; preEOS is the row of classify.EOS in pre, or -1.
	pre     *vectors.Vectors
	preRow  []int32
	preEOS  int32
	missing int
	// rows is the input table's rows: words, then bigram buckets, then the EOS row.
	rows int
	// tokens counts the examples' tokens as fastText counts a file's; passes is the passes
	// over the examples that the job's epochs make.
	tokens uint64
	passes int
	// loadBytes counts the payload bytes pushed to load initial rows (see
	// FinetuneInfo.LoadBytes).
	loadBytes atomic.Uint64
}

// runFinetune drives a fine-tuning job: read the labelled file and the pretrained vectors,
// wait for the shards, configure them and load the initial rows, train every epoch (with
// checkpoints and recovery, as pretraining), then gather the rows and write the model. A
// resumed job reads its task again, checks it against the saved state, and loads rows only
// into the shards that came back without them.
func (c *Coordinator) runFinetune(ctx context.Context) (*Result, error) {
	var start time.Time
	c.mark(func(t *phaseTimes, now time.Time) { t.Start, t.Counting, start = now, now, now })

	tk, err := c.prepareTask()
	if err != nil {
		return nil, err
	}
	chunks := c.exampleChunks(len(tk.ds.Examples))
	if err := c.checkResumedTask(tk, chunks); err != nil {
		return nil, err
	}
	if err := c.awaitShards(ctx, start); err != nil {
		return nil, err
	}

	// Configure the shards and load their rows, then train.
	c.mark(func(t *phaseTimes, now time.Time) { t.Configuring = now })
	set, err := c.configureFinetune(ctx, tk)
	if err != nil {
		return nil, err
	}
	c.mon.bg.Go(func() { c.pollStats(ctx, set.shardSet) })
	if err := c.loadRows(ctx, set, tk); err != nil {
		return nil, err
	}
	if err := c.beginFinetune(ctx, set, tk, chunks); err != nil {
		return nil, err
	}
	if err := c.train(ctx, set.shardSet); err != nil {
		return nil, err
	}
	c.pollShards(ctx, set.shardSet)

	// Read both tables back and write the model.
	c.locked(func(co *core, now time.Time) {
		c.mu.times.Gathering = now
		co.startGathering()
	})
	return c.writeModel(ctx, set, tk, len(chunks))
}

// prepareTask reads the labelled file and the pretrained vectors, builds the task vocabulary
// and the labels, and publishes them to GetJob and GetVocab.
func (c *Coordinator) prepareTask() (*ftTask, error) {
	f := c.cfg.Finetune
	ds, err := classify.ReadFile(f.TrainFile,
		classify.JobReadOptions(c.cfg.Tokenizer, c.cfg.MaxSentenceLen))
	if ds != nil {
		c.logWarnings(ds)
	}
	if err != nil {
		return nil, fmt.Errorf("finetune: %w", err)
	}

	pre, err := c.pretrained()
	if err != nil {
		return nil, err
	}
	var extra []string
	if pre != nil && f.PretrainedVocab {
		extra = pre.Words
	}
	tk := &ftTask{ds: ds, vocab: classify.BuildVocab(ds, extra), labels: ds.LabelList(),
		pre: pre}
	if n := classify.InputRows(tk.vocab.Len(), f.BigramBuckets); n > classify.MaxRows {
		return nil, fmt.Errorf("finetune: %d words, %d bigram buckets and the EOS row exceed "+
			"%d rows; lower --bigrams", tk.vocab.Len(), f.BigramBuckets, classify.MaxRows)
	}
	tk.rows = int(classify.InputRows(tk.vocab.Len(), f.BigramBuckets))
	n := tk.vocab.Trained
	if tk.trained, err = vocab.New(tk.vocab.Words[:n], tk.vocab.Counts[:n]); err != nil {
		return nil, fmt.Errorf("finetune: training words: %w", err)
	}
	tk.matchPretrained()
	if err := c.planPasses(tk); err != nil {
		return nil, err
	}

	c.log.Info("labelled file read", "file", f.TrainFile, "examples", len(ds.Examples),
		"labels", len(tk.labels), "summary", ds.Summary.String())
	c.log.Info("task vocabulary built", "words", tk.vocab.Len(), "training_words", n,
		"missing_pretrained", tk.missing, "bigram_buckets", f.BigramBuckets,
		"init_of_missing", initInfo)
	if pre != nil && tk.missing > 0 {
		c.log.Info("training words without a pretrained vector start at random",
			"count", tk.missing, "of", n, "examples", tk.missingSample(5))
	}

	msg := &skipgridpb.Vocab{Words: tk.vocab.Words, Counts: tk.vocab.Counts}
	c.locked(func(_ *core, _ time.Time) {
		c.mu.vocabMsg = msg
		c.mu.ft = &finetuneState{labels: tk.labels, examples: uint64(len(ds.Examples)),
			words: uint64(tk.vocab.Len()), task: tk}
	})
	return tk, nil
}

// planPasses counts the examples' tokens as fastText counts a file's (labels, tokens and
// one end of line a line) and sets the passes the job's epochs make.
func (c *Coordinator) planPasses(tk *ftTask) error {
	for _, ex := range tk.ds.Examples {
		tk.tokens += uint64(len(ex.Labels) + len(ex.Tokens) + 1)
	}
	var pretrained uint64
	if tk.pre != nil {
		pretrained = uint64(tk.pre.Len())
	}
	f := c.cfg.Finetune
	tk.passes = f.passes(c.cfg.Epochs, tk.tokens, pretrained)
	if tk.passes > maxEpochs {
		return fmt.Errorf("finetune: %d epochs counted as fastText counts them (%d tokens "+
			"and %d pretrained words) are %d passes, more than %d; lower --epochs or turn "+
			"the fastText count off", c.cfg.Epochs, tk.tokens, pretrained, tk.passes,
			maxEpochs)
	}
	switch {
	case tk.passes >= manyPasses*c.cfg.Epochs:
		c.log.Warn("epochs counted as fastText's -epoch counts them with pretrained vectors "+
			"make many passes: the vectors file has far more words than the labelled file "+
			"has tokens; give --fasttext-epochs=false to make --epochs the passes",
			"epochs", c.cfg.Epochs, "tokens", tk.tokens, "pretrained_words", pretrained,
			"passes", tk.passes)
	case tk.passes != c.cfg.Epochs:
		c.log.Info("epochs counted as fastText's -epoch counts them with pretrained vectors",
			"epochs", c.cfg.Epochs, "tokens", tk.tokens, "pretrained_words", pretrained,
			"passes", tk.passes)
	}
	return nil
}

// manyPasses is the ratio of passes to epochs from which planPasses warns: on the shared
// sets and full-corpus vectors fastText's count gives 2 to 4.
const manyPasses = 10

// logWarnings logs the labelled file's warnings, and how many were not kept.
func (c *Coordinator) logWarnings(ds *classify.Dataset) {
	for _, w := range ds.Warnings {
		c.log.Warn("labelled file: "+w.Msg, "file", ds.Name, "line", w.Line)
	}
	if more := ds.Summary.Warnings - len(ds.Warnings); more > 0 {
		c.log.Warn("labelled file: more warnings not shown", "file", ds.Name, "count", more)
	}
}

// pretrained returns the pretrained vectors: given in the config, read from its file, or nil
// for random initialisation. Their dimension must be the job's.
func (c *Coordinator) pretrained() (*vectors.Vectors, error) {
	f := c.cfg.Finetune
	pre := f.Vectors
	if pre == nil && f.Pretrained != "" {
		var err error
		pre, err = vectors.ReadFile(f.Pretrained, f.PretrainedOptions(c.log))
		if err != nil {
			return nil, fmt.Errorf("finetune: pretrained vectors: %w", err)
		}
	}
	if pre != nil && pre.Dim != c.cfg.Dim {
		return nil, fmt.Errorf("finetune: pretrained vectors %s have dim %d, but the job's "+
			"dim is %d; leave the dim unset to use %d, or give vectors of dim %d", f.Pretrained,
			pre.Dim, c.cfg.Dim, pre.Dim, c.cfg.Dim)
	}
	return pre, nil
}

// matchPretrained finds each word's pretrained row and counts the training words that have
// none.
func (tk *ftTask) matchPretrained() {
	tk.preEOS = -1
	if tk.pre != nil {
		if r, ok := tk.pre.Lookup(classify.EOS); ok {
			tk.preEOS = int32(r)
		}
	}
	tk.preRow = make([]int32, tk.vocab.Len())
	for i, w := range tk.vocab.Words {
		tk.preRow[i] = -1
		if tk.pre == nil {
			continue
		}
		if r, ok := tk.pre.Lookup(w); ok {
			tk.preRow[i] = int32(r)
		}
	}
	for i := range tk.vocab.Trained {
		if tk.preRow[i] < 0 {
			tk.missing++
		}
	}
}

// missingSample returns up to n of the most frequent training words without a pretrained
// vector.
func (tk *ftTask) missingSample(n int) []string {
	var out []string
	for i := 0; i < tk.vocab.Trained && len(out) < n; i++ {
		if tk.preRow[i] < 0 {
			out = append(out, tk.vocab.Words[i])
		}
	}
	return out
}

// initRow fills dst with input row r's start value: its pretrained vector (for the EOS row,
// the vector of classify.EOS, as fastText takes it when the file has one), or InitRow's.
func (tk *ftTask) initRow(seed uint64, r uint32, dst []float32) {
	pre := int32(-1)
	switch {
	case int(r) < len(tk.preRow):
		pre = tk.preRow[r]
	case int(r) == tk.rows-1:
		pre = tk.preEOS
	}
	if pre >= 0 {
		copy(dst, tk.pre.Row(int(pre)))
		return
	}
	classify.InitRow(seed, r, dst)
}

// exampleChunks cuts an epoch of n examples into chunks of positions.
func (c *Coordinator) exampleChunks(n int) []shard.Chunk {
	size := c.cfg.Finetune.chunkExamples(n)
	var chunks []shard.Chunk
	for start := 0; start < n; start += size {
		chunks = append(chunks, shard.Chunk{ID: len(chunks), Path: c.cfg.Finetune.TrainFile,
			Start: int64(start), End: int64(min(start+size, n))})
	}
	return chunks
}

// fillFinetuneLocked adds a fine-tuning job's settings to spec; c.mu must be held.
func (c *Coordinator) fillFinetuneLocked(spec *skipgridpb.JobSpec) {
	if !c.cfg.finetune() {
		return
	}
	f := c.cfg.Finetune
	spec.Kind = skipgridpb.JobKind_JOB_KIND_FINETUNE
	spec.TrainFile = f.TrainFile
	spec.FreezeEmbeddings = f.Freeze
	spec.EmbeddingLrScale = f.EmbeddingLRScale
	spec.BigramBuckets = uint32(f.BigramBuckets)
	spec.BatchExamples = uint32(f.BatchExamples)
	if ft := c.mu.ft; ft != nil {
		spec.Labels = ft.labels
		spec.Examples = ft.examples
		spec.VocabSize = ft.words
		spec.TrainWords = ft.examples
	}
}
