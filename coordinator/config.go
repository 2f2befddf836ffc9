package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skipgrid/skipgrid/proto/payload"
	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// Dialer returns a client for a PS address (in-memory in the embedded cluster, gRPC
// otherwise). The coordinator calls it once per shard, from Run.
type Dialer func(ctx context.Context, addr string) (skipgridpb.ParameterServerClient, error)

// Default learning rates, as word2vec chooses them per model and fastText for its supervised
// model.
const (
	defaultAlphaSkipGram = 0.025
	defaultAlphaCBOW     = 0.05
	defaultAlphaFinetune = 0.1
	// minAlphaFactor gives the floor of the learning rate when MinAlpha is unset.
	minAlphaFactor = 1e-4
)

// Limits on settings, so that a typo fails at once rather than allocating without bound.
const (
	maxDim      = 1 << 14
	maxNumPS    = 1 << 16
	maxReplicas = 8
	maxWindow   = 1 << 10
	maxNegative = 1 << 10
	maxEpochs   = 1 << 20
)

// Config configures one job's coordinator. Build it with DefaultConfig and change what the
// job needs; New calls Validate.
type Config struct {
	// JobID names the job to the PS shards; a shard refuses a second, different job.
	JobID string
	// Corpus lists the corpus files (plain text or gzip), one sentence per line.
	Corpus []string
	// ChunkBytes is the size a chunk aims at: the unit of leasing and retrying. 0 picks it
	// from the corpus size (see AutoChunkBytes).
	ChunkBytes int64
	// OutDir receives vectors.bin, vocab.txt and run.json.
	OutDir string
	// NumPS is the number of parameter-server shards the job waits for.
	NumPS int
	// Kind is what the job trains: word2vec over Corpus (JOB_KIND_PRETRAIN, or the zero
	// value), or a classifier (JOB_KIND_FINETUNE, configured by Finetune; Corpus unused).
	Kind     skipgridpb.JobKind
	Finetune FinetuneConfig

	// Training settings, sent to workers in the JobSpec.

	// Model is skip-gram or CBOW.
	Model skipgridpb.Model
	// Dim is the length of each vector.
	Dim int
	// Window is the largest distance between a centre word and a context word.
	Window int
	// Negative is the number of negative samples per target.
	Negative int
	// Sample is the subsampling threshold of frequent words (0 = none).
	Sample float64
	// Alpha is the starting learning rate; 0 means 0.025 for skip-gram, 0.05 for CBOW.
	Alpha float64
	// MinAlpha is the floor of the learning rate; 0 means Alpha * 1e-4.
	MinAlpha float64
	// Epochs is the number of passes over the corpus.
	Epochs int
	// Seed seeds every random choice of the job (initial rows, sampling).
	Seed uint64
	// MinCount drops words that occur fewer times from the vocabulary.
	MinCount uint64
	// MaxVocab keeps only the most frequent words (0 = no cap).
	MaxVocab int
	// Tokenizer splits lines into tokens.
	Tokenizer skipgridpb.Tokenizer
	// MaxSentenceLen splits longer lines into several sentences.
	MaxSentenceLen int
	// BatchWords is the number of kept words a worker trains between a pull and a push.
	BatchWords int
	// ValueCodec and Compression encode the payloads workers push and pull.
	ValueCodec  payload.ValueCodec
	Compression payload.Compression

	// Timing.

	// LeaseTimeout is how long a lease lives after its last heartbeat.
	LeaseTimeout time.Duration
	// StartTimeout bounds the wait for every PS shard to register.
	StartTimeout time.Duration
	// StallTimeout fails the job when no worker calls in (lease, heartbeat, complete) for
	// this long while chunks remain.
	StallTimeout time.Duration
	// RPCTimeout bounds each call to a PS shard, retries included.
	RPCTimeout time.Duration
	// MaxAttempts fails the job when one chunk of one pass has been leased this many times
	// without being completed (a chunk that keeps killing workers, or a broken worker).
	MaxAttempts int

	// Persistence and recovery (see state.go and checkpoint.go).

	// StateDir holds the coordinator's saved state; "" means OutDir/.state.
	StateDir string
	// Resume continues the job saved in StateDir, if there is one of this job that had not
	// ended; otherwise a saved state is replaced by the new job's.
	Resume bool
	// CheckpointEvery asks the shards for a checkpoint this often during training, besides
	// the one at the end of every epoch; 0 means at epoch ends only.
	CheckpointEvery time.Duration
	// ShardDownTimeout fails the job when a PS shard does not answer for this long during
	// training (a shard that never comes back) and has no backup to take over.
	ShardDownTimeout time.Duration
	// Replicas is the number of copies of every shard (1: none). With more, the job waits
	// for every copy to register; a shard's primary acknowledges a push once every backup
	// has applied it, and a backup takes over when the primary does not answer for
	// FailoverAfter, so that no acknowledged update is lost.
	Replicas int
	// FailoverAfter is how long a primary with a live backup may stay silent before the
	// backup takes over.
	FailoverAfter time.Duration

	// Status page.

	// HistoryEvery is how often Run records a sample of the job's progress and loss for the
	// plots of the status page (Status.History).
	HistoryEvery time.Duration
	// HistoryPoints bounds the samples kept: the newest half at HistoryEvery, the older
	// half thinned to an even spacing that doubles whenever it fills.
	HistoryPoints int
	// StatsEvery is how often Run asks every PS shard for its Stats (rows, memory, traffic)
	// once the shards are configured; each call is bounded by the same duration.
	StatsEvery time.Duration
	// Members lists the cluster's nodes as the membership layer (gossip) sees them, for
	// Status.Members. It is called on every Status, without the coordinator's lock, and
	// must be safe for concurrent use and return quickly. nil means Status lists the nodes
	// that registered with the coordinator instead.
	Members func() []Member

	// Logger receives the coordinator's logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the coordinator's metrics; nil registers none. When it is also a
	// prometheus.Gatherer (as *prometheus.Registry is), Handler serves it at /metrics.
	Registerer prometheus.Registerer
}

// DefaultConfig returns word2vec's usual settings: skip-gram, 100 dimensions, window 5, 5
// negatives, sample 1e-3, 5 epochs, min count 5, one PS shard, chunks sized from the corpus,
// 30 s leases; a history sample every second (3600 at most) and PS stats every 5 s. JobID
// "skipgrid"; Corpus and OutDir are left for the caller.
func DefaultConfig() Config {
	return Config{
		JobID:          "skipgrid",
		ChunkBytes:     0,
		NumPS:          1,
		Model:          skipgridpb.Model_MODEL_SKIPGRAM,
		Dim:            100,
		Window:         5,
		Negative:       5,
		Sample:         1e-3,
		Epochs:         5,
		Seed:           1,
		MinCount:       5,
		Tokenizer:      skipgridpb.Tokenizer_TOKENIZER_WORDS,
		MaxSentenceLen: 10000,
		BatchWords:     32768,
		ValueCodec:     payload.ValuesFloat32,
		Compression:    payload.CompressNone,
		LeaseTimeout:   30 * time.Second,
		StartTimeout:   2 * time.Minute,
		StallTimeout:   10 * time.Minute,
		RPCTimeout:     time.Minute,
		MaxAttempts:    5,
		HistoryEvery:   time.Second,
		HistoryPoints:  3600,
		StatsEvery:     5 * time.Second,
		Finetune:       DefaultFinetuneConfig(),

		ShardDownTimeout: 3 * time.Minute,
		Replicas:         1,
		FailoverAfter:    3 * time.Second,
	}
}

// EffectiveAlpha returns the starting learning rate and its floor once the model defaults
// are applied to unset (zero) Alpha and MinAlpha.
func (c Config) EffectiveAlpha() (alpha, minAlpha float64) {
	alpha = c.Alpha
	switch {
	case alpha != 0:
	case c.finetune():
		alpha = defaultAlphaFinetune
	case c.Model == skipgridpb.Model_MODEL_CBOW:
		alpha = defaultAlphaCBOW
	default:
		alpha = defaultAlphaSkipGram
	}
	minAlpha = c.MinAlpha
	if minAlpha == 0 {
		minAlpha = alpha * minAlphaFactor
	}
	return alpha, minAlpha
}

// Validate reports every invalid setting at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.JobID == "" {
		bad("job id: empty; name the job")
	}
	errs = append(errs, c.validateKind()...)
	if !c.finetune() && len(c.Corpus) == 0 {
		bad("corpus: no file given")
	}
	for i, p := range c.Corpus {
		if p == "" {
			bad("corpus: path %d is empty", i)
		}
	}
	if c.ChunkBytes < 0 {
		bad("chunk bytes: %d must be positive, or 0 for automatic", c.ChunkBytes)
	}
	if c.OutDir == "" {
		bad("out dir: empty; give the directory for vectors.bin, vocab.txt and run.json")
	}
	if c.NumPS < 1 || c.NumPS > maxNumPS {
		bad("num ps: %d is not in [1, %d]", c.NumPS, maxNumPS)
	}
	if c.Replicas < 1 || c.Replicas > maxReplicas {
		bad("replicas: %d is not in [1, %d]", c.Replicas, maxReplicas)
	}
	if c.Replicas > 1 && c.FailoverAfter <= 0 {
		bad("failover after: %v must be positive with replicas", c.FailoverAfter)
	}
	errs = append(errs, c.validateTraining()...)
	errs = append(errs, c.validateTiming()...)
	errs = append(errs, c.validateRecovery()...)
	return errors.Join(errs...)
}

func (c Config) validateTraining() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.Model != skipgridpb.Model_MODEL_SKIPGRAM && c.Model != skipgridpb.Model_MODEL_CBOW {
		bad("model: %v is neither skip-gram nor CBOW", c.Model)
	}
	checkRange := func(name string, v, hi int) {
		if v < 1 || v > hi {
			bad("%s: %d is not in [1, %d]", name, v, hi)
		}
	}
	checkRange("dim", c.Dim, maxDim)
	checkRange("window", c.Window, maxWindow)
	checkRange("negative", c.Negative, maxNegative)
	checkRange("epochs", c.Epochs, maxEpochs)
	checkRange("max sentence len", c.MaxSentenceLen, math.MaxInt32)
	checkRange("batch words", c.BatchWords, math.MaxInt32)
	if !(c.Sample >= 0) || math.IsInf(c.Sample, 0) {
		bad("sample: %v must be a finite number >= 0", c.Sample)
	}
	if !(c.Alpha >= 0) || math.IsInf(c.Alpha, 0) {
		bad("alpha: %v must be a finite number > 0 (or 0 for the default: %v for sg, %v for "+
			"cbow, %v for fine-tuning)", c.Alpha, defaultAlphaSkipGram, defaultAlphaCBOW,
			defaultAlphaFinetune)
	} else if alpha, minAlpha := c.EffectiveAlpha(); !(minAlpha >= 0) || minAlpha > alpha {
		bad("min alpha: %v must be in [0, alpha=%v]", minAlpha, alpha)
	}
	if c.MaxVocab < 0 {
		bad("max vocab: %d is negative; use 0 for no cap", c.MaxVocab)
	}
	if c.Tokenizer != skipgridpb.Tokenizer_TOKENIZER_WORDS &&
		c.Tokenizer != skipgridpb.Tokenizer_TOKENIZER_WHITESPACE {
		bad("tokenizer: %v is neither words nor whitespace", c.Tokenizer)
	}
	opt := payload.Options{Values: c.ValueCodec, Compress: c.Compression}
	if err := opt.Validate(); err != nil {
		bad("payload options: %w", err)
	}
	return errs
}

func (c Config) validateTiming() []error {
	var errs []error
	positive := func(name string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s: %v must be positive", name, d))
		}
	}
	positive("lease timeout", c.LeaseTimeout)
	positive("start timeout", c.StartTimeout)
	positive("stall timeout", c.StallTimeout)
	positive("rpc timeout", c.RPCTimeout)
	if c.LeaseTimeout > 0 && c.LeaseTimeout < time.Millisecond {
		errs = append(errs, fmt.Errorf("lease timeout: %v is under a millisecond", c.LeaseTimeout))
	}
	if c.LeaseTimeout > math.MaxUint32*time.Millisecond {
		errs = append(errs, fmt.Errorf("lease timeout: %v does not fit the wire's milliseconds",
			c.LeaseTimeout))
	}
	positive("history every", c.HistoryEvery)
	positive("stats every", c.StatsEvery)
	if c.HistoryPoints < minHistoryPoints || c.HistoryPoints > maxHistoryPoints {
		errs = append(errs, fmt.Errorf("history points: %d is not in [%d, %d]",
			c.HistoryPoints, minHistoryPoints, maxHistoryPoints))
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > math.MaxUint16 {
		errs = append(errs, fmt.Errorf("max attempts: %d is not in [1, %d]", c.MaxAttempts,
			math.MaxUint16))
	}
	return errs
}
