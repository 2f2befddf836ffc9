package coordinator

import (
	"fmt"
	"log/slog"
	"math"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/vectors"
)

// Limits on fine-tuning settings.
const (
	maxBatchExamples = 1 << 20
	maxBigramBuckets = 1 << 30
	// autoChunksPerEpoch is how many chunks an epoch is cut into when ChunkExamples is 0.
	autoChunksPerEpoch = 32
)

// FinetuneConfig configures a fine-tuning job (Config.Kind JOB_KIND_FINETUNE): a
// bag-of-embeddings text classifier (see package classify) trained on a labelled file, its
// embedding table started from pretrained vectors. The job's Dim, Epochs, Alpha, MinAlpha,
// Seed, Tokenizer, MaxSentenceLen, NumPS and OutDir apply; Corpus and the word2vec settings
// do not.
type FinetuneConfig struct {
	// TrainFile is the labelled file in fastText's format (plain or gzip). The coordinator
	// and every worker read it whole into memory, so it must be reachable at the same path
	// on every node; classify.DefaultMaxBytes bounds its size.
	TrainFile string
	// Pretrained names a vectors file whose rows start the embedding table; PretrainedFormat
	// is its format (FormatAuto detects it). Empty, with Vectors nil, means random
	// initialisation: every row from classify.InitRow.
	Pretrained       string
	PretrainedFormat vectors.Format
	// ReplaceInvalidUTF8 reads a pretrained file whose words hold invalid UTF-8 with each
	// bad run replaced by U+FFFD, instead of refusing it.
	ReplaceInvalidUTF8 bool
	// Vectors, when set, are the pretrained vectors already read (Pretrained then only names
	// them in the records). Their Dim must equal Config.Dim.
	Vectors *vectors.Vectors
	// PretrainedVocab adds the pretrained words that the training file lacks to the task
	// vocabulary after the training words, as fastText does: no example trains them, but
	// prediction finds them.
	PretrainedVocab bool
	// FastTextEpochs counts the epochs as fastText's supervised -epoch does with
	// -pretrainedVectors: fastText adds every pretrained word to its token count, and its
	// learning rate decays over epochs x that count, so Epochs epochs are Epochs x (tokens +
	// pretrained words) / tokens passes over the examples, tokens being the examples' labels,
	// tokens and one end of line each. The job makes that many passes, rounded to the
	// nearest whole one, and the learning rate decays over all of them. Without pretrained
	// vectors, or when false, Epochs is the number of passes.
	FastTextEpochs bool
	// Freeze keeps the embedding table (words and bigram buckets) as it starts: workers push
	// no embedding update.
	Freeze bool
	// EmbeddingLRScale is the embeddings' learning rate over the classifier's (Alpha).
	EmbeddingLRScale float64
	// BigramBuckets is the number of hashed word-bigram rows after the word rows (0: none).
	BigramBuckets int
	// BatchExamples is the number of examples a worker trains between a pull and a push.
	BatchExamples int
	// ChunkExamples is the number of examples of one lease; 0 cuts each epoch into 32 chunks
	// of at least BatchExamples.
	ChunkExamples int
}

// PretrainedOptions returns how the pretrained vectors file is read: in its format, with
// invalid UTF-8 replaced when asked, logging to log.
func (f FinetuneConfig) PretrainedOptions(log *slog.Logger) vectors.ReadOptions {
	return vectors.ReadOptions{Format: f.PretrainedFormat,
		ReplaceInvalidUTF8: f.ReplaceInvalidUTF8, Logger: log}
}

// DefaultFinetuneConfig returns fine-tuning's defaults: embeddings trained at the
// classifier's learning rate, pretrained words kept in the vocabulary, epochs counted as
// fastText counts them, no bigrams, 32 examples a batch and automatic chunks.
func DefaultFinetuneConfig() FinetuneConfig {
	return FinetuneConfig{
		PretrainedVocab:  true,
		FastTextEpochs:   true,
		EmbeddingLRScale: 1,
		BatchExamples:    32,
	}
}

// finetune reports whether the job fine-tunes a classifier.
func (c Config) finetune() bool { return c.Kind == skipgridpb.JobKind_JOB_KIND_FINETUNE }

// validateKind reports an unknown job kind and, for fine-tuning, every invalid setting of
// Finetune.
func (c Config) validateKind() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch c.Kind {
	case skipgridpb.JobKind_JOB_KIND_UNSPECIFIED, skipgridpb.JobKind_JOB_KIND_PRETRAIN:
		return nil
	case skipgridpb.JobKind_JOB_KIND_FINETUNE:
	default:
		bad("kind: %v is neither pretraining nor fine-tuning", c.Kind)
		return errs
	}
	f := c.Finetune

	if f.TrainFile == "" {
		bad("finetune: train file: empty; give the labelled file")
	}
	if f.PretrainedFormat < vectors.FormatAuto || f.PretrainedFormat > vectors.FormatGloVe {
		bad("finetune: pretrained format: %v is unknown", f.PretrainedFormat)
	}
	if f.Vectors != nil && f.Vectors.Dim != c.Dim {
		bad("finetune: the pretrained vectors have dim %d, but the job's dim is %d",
			f.Vectors.Dim, c.Dim)
	}
	if !(f.EmbeddingLRScale >= 0) || math.IsInf(f.EmbeddingLRScale, 0) {
		bad("finetune: embedding lr scale: %v must be a finite number >= 0",
			f.EmbeddingLRScale)
	}
	if f.BigramBuckets < 0 || f.BigramBuckets > maxBigramBuckets {
		bad("finetune: bigram buckets: %d is not in [0, %d]", f.BigramBuckets,
			maxBigramBuckets)
	}
	if f.BatchExamples < 1 || f.BatchExamples > maxBatchExamples {
		bad("finetune: batch examples: %d is not in [1, %d]", f.BatchExamples,
			maxBatchExamples)
	}
	if f.ChunkExamples < 0 || f.ChunkExamples > math.MaxInt32 {
		bad("finetune: chunk examples: %d must be positive, or 0 for automatic",
			f.ChunkExamples)
	}
	return errs
}

// passes is the number of passes over the examples that epochs epochs make for a file of
// tokens tokens (see FastTextEpochs) with pretrained pretrained words (0 without vectors).
// fastText stops mid-pass (17.2 passes on TREC with 145k vectors); the count is rounded to a
// whole pass because leases, checkpoints and resumes are planned in whole epochs.
func (f FinetuneConfig) passes(epochs int, tokens, pretrained uint64) int {
	if !f.FastTextEpochs || pretrained == 0 || tokens == 0 {
		return epochs
	}
	exact := float64(epochs) * (float64(tokens) + float64(pretrained)) / float64(tokens)
	return int(min(math.Round(exact), math.MaxInt32))
}

// chunkExamples is the examples of one lease for a file of n examples.
func (f FinetuneConfig) chunkExamples(n int) int {
	if f.ChunkExamples > 0 {
		return f.ChunkExamples
	}
	return max(f.BatchExamples, (n+autoChunksPerEpoch-1)/autoChunksPerEpoch)
}
