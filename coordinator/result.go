package coordinator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/vectors"
	"github.com/skipgrid/skipgrid/vocab"
)

// Output file names inside Config.OutDir.
const (
	VectorsFile = "vectors.bin"
	VocabFile   = "vocab.txt"
	RunFile     = "run.json"
)

// Result is the record of a finished job, written to OutDir/run.json.
type Result struct {
	JobID    string   `json:"job_id"`
	Settings Settings `json:"settings"`
	// Corpus lists the corpus files as given.
	Corpus []string `json:"corpus"`
	NumPS  int      `json:"num_ps"`
	// VocabSize is the number of vocabulary words (rows of each table).
	VocabSize int `json:"vocab_size"`
	// TrainWords is the sum of the vocabulary's counts: the words one epoch trains.
	TrainWords uint64 `json:"train_words"`
	// Chunks is the number of chunks the corpus was split into.
	Chunks int `json:"chunks"`
	// PhaseSeconds is the wall time of each phase.
	PhaseSeconds PhaseSeconds `json:"phase_seconds"`
	// TrainWordsPerSec is epochs x train words over the training phase's wall time.
	TrainWordsPerSec float64 `json:"train_words_per_sec"`
	// Epochs holds one entry per epoch.
	Epochs  []EpochResult `json:"epochs"`
	Retries Retries       `json:"retries"`
	Traffic Traffic       `json:"traffic"`
	// Reader sums the reader statistics of the counting pass (each chunk once).
	Reader ReaderStats `json:"reader"`
	// Finetune describes a fine-tuning job (nil for pretraining). Its Chunks, TrainWords,
	// Epochs' Words and the rates then count examples, not words.
	Finetune *FinetuneInfo `json:"finetune,omitempty"`
	// Recovery records the checkpoints taken, the shard restarts survived and what they
	// cost, and the coordinator's resumes.
	Recovery Recovery `json:"recovery"`
}

// Settings are the job's resolved settings.
type Settings struct {
	Model               string  `json:"model"`
	Dim                 int     `json:"dim"`
	Window              int     `json:"window"`
	Negative            int     `json:"negative"`
	Sample              float64 `json:"sample"`
	Alpha               float64 `json:"alpha"`
	MinAlpha            float64 `json:"min_alpha"`
	Epochs              int     `json:"epochs"`
	Seed                uint64  `json:"seed"`
	MinCount            uint64  `json:"min_count"`
	MaxVocab            int     `json:"max_vocab"`
	Tokenizer           string  `json:"tokenizer"`
	MaxSentenceLen      int     `json:"max_sentence_len"`
	BatchWords          int     `json:"batch_words"`
	ValueCodec          string  `json:"value_codec"`
	Compression         string  `json:"compression"`
	ChunkBytes          int64   `json:"chunk_bytes"`
	LeaseTimeoutSeconds float64 `json:"lease_timeout_seconds"`
}

// PhaseSeconds is the wall time of each phase, in seconds. Gathering includes writing the
// vectors and the vocabulary.
type PhaseSeconds struct {
	Starting    float64 `json:"starting"`
	Counting    float64 `json:"counting"`
	Configuring float64 `json:"configuring"`
	Training    float64 `json:"training"`
	Gathering   float64 `json:"gathering"`
	Total       float64 `json:"total"`
}

// EpochResult is the accepted training of one epoch.
type EpochResult struct {
	Epoch int `json:"epoch"`
	// Words is the sum of the accepted chunks' in-vocabulary tokens; it equals TrainWords.
	Words uint64 `json:"words"`
	// Chunks is the number of chunk results accepted for the epoch; it equals the job's
	// chunks, whatever leases expired or were retried.
	Chunks int `json:"chunks"`
	// Loss is LossSum / LossTerms (0 when no term was reported).
	Loss      float64 `json:"loss"`
	LossSum   float64 `json:"loss_sum"`
	LossTerms uint64  `json:"loss_terms"`
}

// Retries counts the work done twice.
type Retries struct {
	// LeasesExpired counts leases that passed their deadline; their chunks were re-leased.
	LeasesExpired uint64 `json:"leases_expired"`
	// LeasesReleased counts leases released because their worker was reported dead.
	LeasesReleased uint64 `json:"leases_released"`
	// LateCompletes counts results ignored because their lease was no longer the sender's.
	LateCompletes uint64 `json:"late_completes"`
	// Rejected counts malformed results; their chunks were re-leased.
	Rejected uint64 `json:"rejected"`
}

// Traffic counts payload bytes between workers and shards, as the workers report them in
// accepted train results, and the bytes the coordinator moved to gather the vectors.
type Traffic struct {
	BytesPulled          uint64  `json:"bytes_pulled"`
	BytesPushed          uint64  `json:"bytes_pushed"`
	PulledPerTrainedWord float64 `json:"pulled_per_trained_word"`
	PushedPerTrainedWord float64 `json:"pushed_per_trained_word"`
	GatherBytes          uint64  `json:"gather_bytes"`
}

// ReaderStats sums the corpus reader's statistics.
type ReaderStats struct {
	Lines      uint64 `json:"lines"`
	EmptyLines uint64 `json:"empty_lines"`
	SplitLines uint64 `json:"split_lines"`
	Tokens     uint64 `json:"tokens"`
}

// settings returns the resolved settings for run.json.
func (c *Coordinator) settings() Settings {
	cfg := c.cfg
	model := "sg"
	if cfg.Model == skipgridpb.Model_MODEL_CBOW {
		model = "cbow"
	}
	tokenizer := strings.ToLower(strings.TrimPrefix(cfg.Tokenizer.String(), "TOKENIZER_"))
	return Settings{
		Model: model, Dim: cfg.Dim, Window: cfg.Window, Negative: cfg.Negative,
		Sample: cfg.Sample, Alpha: cfg.Alpha, MinAlpha: cfg.MinAlpha, Epochs: cfg.Epochs,
		Seed: cfg.Seed, MinCount: cfg.MinCount, MaxVocab: cfg.MaxVocab, Tokenizer: tokenizer,
		MaxSentenceLen: cfg.MaxSentenceLen, BatchWords: cfg.BatchWords,
		ValueCodec: cfg.ValueCodec.String(), Compression: cfg.Compression.String(),
		ChunkBytes: cfg.ChunkBytes, LeaseTimeoutSeconds: cfg.LeaseTimeout.Seconds(),
	}
}

// resultLocked builds the record of the job from the core; c.mu must be held.
func (c *Coordinator) resultLocked(co *core, v *vocab.Vocab, chunks int) *Result {
	ct := co.Counters
	res := &Result{
		JobID: c.cfg.JobID, Settings: c.settings(), Corpus: c.cfg.Corpus, NumPS: c.cfg.NumPS,
		VocabSize: v.Len(), TrainWords: v.TrainWords(), Chunks: chunks,
		Retries: Retries{LeasesExpired: ct.LeasesExpired, LeasesReleased: ct.LeasesReleased,
			LateCompletes: ct.LateCompletes, Rejected: ct.Rejected},
		Traffic: Traffic{BytesPulled: ct.BytesPulled, BytesPushed: ct.BytesPushed},
		Reader: ReaderStats{Lines: ct.Lines, EmptyLines: ct.EmptyLines,
			SplitLines: ct.SplitLines, Tokens: ct.Tokens},
		Recovery: co.Durable.recovery(),
	}
	for e, st := range co.Epoch {
		done := 0
		if co.Pass != nil && co.Pass.Kind == skipgridpb.TaskKind_TASK_TRAIN &&
			e < len(co.Pass.DoneInRound) {
			done = co.Pass.DoneInRound[e]
		}
		res.Epochs = append(res.Epochs, EpochResult{Epoch: e, Words: st.Words, Chunks: done,
			Loss: st.loss(), LossSum: st.LossSum, LossTerms: st.LossTerms})
	}
	if ct.AcceptedWords > 0 {
		res.Traffic.PulledPerTrainedWord = float64(ct.BytesPulled) / float64(ct.AcceptedWords)
		res.Traffic.PushedPerTrainedWord = float64(ct.BytesPushed) / float64(ct.AcceptedWords)
	}
	return res
}

// setTimes fills the phase wall times; end is when gathering ended.
func (r *Result) setTimes(t phaseTimes, end time.Time) {
	secs := func(a, b time.Time) float64 { return b.Sub(a).Seconds() }
	r.PhaseSeconds = PhaseSeconds{
		Starting:    secs(t.Start, t.Counting),
		Counting:    secs(t.Counting, t.Configuring),
		Configuring: secs(t.Configuring, t.Training),
		Training:    secs(t.Training, t.Gathering),
		Gathering:   secs(t.Gathering, end),
		Total:       secs(t.Start, end),
	}
	if r.PhaseSeconds.Training > 0 {
		words := float64(r.TrainWords) * float64(len(r.Epochs))
		r.TrainWordsPerSec = words / r.PhaseSeconds.Training
	}
}

// gatherAndWrite reads the vectors back, checks them, and writes the three outputs. Nothing
// is written unless every value is finite.
func (c *Coordinator) gatherAndWrite(ctx context.Context, set *shardSet, v *vocab.Vocab,
	chunks int) (*Result, error) {
	vecs, moved, err := c.gather(ctx, set, v)
	if err != nil {
		return nil, fmt.Errorf("gather vectors: %w", err)
	}
	dir := c.cfg.OutDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}
	if err := vectors.WriteFile(filepath.Join(dir, VectorsFile), vecs,
		vectors.FormatBinary); err != nil {
		return nil, fmt.Errorf("write vectors: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, VocabFile), v.WriteText); err != nil {
		return nil, fmt.Errorf("write vocabulary: %w", err)
	}

	var res *Result
	c.locked(func(co *core, now time.Time) {
		res = c.resultLocked(co, v, chunks)
		res.Traffic.GatherBytes = moved
		res.setTimes(c.mu.times, now)
	})
	err = writeFileAtomic(filepath.Join(dir, RunFile), func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	})
	if err != nil {
		return nil, fmt.Errorf("write run record: %w", err)
	}

	c.locked(func(co *core, now time.Time) {
		c.mu.times.End = now
		co.finish()
	})
	c.log.Info("job done", "out_dir", dir, "vocab", v.Len(),
		"seconds", res.PhaseSeconds.Total, "words_per_sec", res.TrainWordsPerSec)
	return res, nil
}

// writeFileAtomic writes path through a temporary file in the same directory, synced and
// renamed into place, so that path never holds half a file.
func writeFileAtomic(path string, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()

	if err := write(f); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("chmod %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("rename into %s: %w", path, err)
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename in dir durable where the platform allows; failures are ignored
// because some file systems refuse to sync directories.
func syncDir(dir string) {
	if dir == "" {
		dir = "."
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
