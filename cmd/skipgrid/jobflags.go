package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/skipgrid/skipgrid/coordinator"
	"github.com/skipgrid/skipgrid/proto/payload"
	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// addJobFlags declares the settings of a training job, shared by train and coordinator.
func addJobFlags(fs *pflag.FlagSet) {
	d := coordinator.DefaultConfig()
	fs.StringSlice("corpus", nil, "corpus files, plain text or gzip, one sentence per line")
	fs.String("out", "", "output directory for vectors.bin, vocab.txt and run.json")
	fs.String("model", "sg", "sg (skip-gram) or cbow")
	fs.Int("dim", d.Dim, "vector dimension")
	fs.Int("window", d.Window, "largest context distance (each position draws 1..window)")
	fs.Int("negative", d.Negative, "negative samples per target")
	fs.Int("epochs", d.Epochs, "passes over the corpus")
	fs.Uint64("min-count", d.MinCount, "drop words seen fewer times")
	fs.Int("max-vocab", 0, "keep only the most frequent words (0: all)")
	fs.Float64("sample", d.Sample, "subsampling threshold of frequent words (0: off)")
	fs.Float64("alpha", 0, "starting learning rate (0: 0.025 for sg, 0.05 for cbow, 0.1 for "+
		"fine-tuning)")
	fs.Float64("min-alpha", 0, "learning-rate floor (0: alpha * 1e-4)")
	fs.Uint64("seed", d.Seed, "seed of every random choice")
	fs.String("tokenizer", "words",
		"words: lower-case, tokens [a-z]+('[a-z]+)?; whitespace: split on white space as is")
	fs.Int("max-sentence", d.MaxSentenceLen, "split longer lines into several sentences")
	fs.Int("batch-words", d.BatchWords, "kept words a worker trains between a pull and a push")
	fs.Int64("chunk-bytes", d.ChunkBytes,
		"corpus bytes per leased chunk (0: the corpus over 64, within 256 KiB..16 MiB)")
	fs.String("values", "f32", "row values on the wire: f32 or f16")
	fs.String("compression", "none", "payload compression: none, s2 or zstd")
	fs.Duration("lease-timeout", d.LeaseTimeout, "lease lifetime after the last heartbeat")
	fs.String("job-id", d.JobID, "job name, checked by the PS shards")
}

// jobConfig reads the job flags (through viper: flag, SKIPGRID_* environment, config file).
// Arguments after the flags are more corpus files, so that `--corpus dir/*.gz` works as the
// shell expands it.
func jobConfig(v *viper.Viper, numPS int, args []string) (coordinator.Config, error) {
	c := coordinator.DefaultConfig()
	var errs []error
	c.Corpus = append(v.GetStringSlice("corpus"), args...)
	c.OutDir = v.GetString("out")
	c.NumPS = numPS
	switch strings.ToLower(v.GetString("model")) {
	case "sg", "skipgram", "skip-gram":
		c.Model = skipgridpb.Model_MODEL_SKIPGRAM
	case "cbow":
		c.Model = skipgridpb.Model_MODEL_CBOW
	default:
		errs = append(errs, fmt.Errorf("--model %q: want sg or cbow", v.GetString("model")))
	}
	c.Dim, c.Window, c.Negative = v.GetInt("dim"), v.GetInt("window"), v.GetInt("negative")
	c.Epochs, c.MinCount, c.MaxVocab = v.GetInt("epochs"), v.GetUint64("min-count"),
		v.GetInt("max-vocab")
	c.Sample, c.Alpha, c.MinAlpha = v.GetFloat64("sample"), v.GetFloat64("alpha"),
		v.GetFloat64("min-alpha")
	c.Seed = v.GetUint64("seed")
	tok, err := tokenizerFlag(v)
	if err != nil {
		errs = append(errs, err)
	}
	c.Tokenizer = tok
	c.MaxSentenceLen, c.BatchWords = v.GetInt("max-sentence"), v.GetInt("batch-words")
	c.ChunkBytes = v.GetInt64("chunk-bytes")
	switch v.GetString("values") {
	case "f32":
		c.ValueCodec = payload.ValuesFloat32
	case "f16":
		c.ValueCodec = payload.ValuesFloat16
	default:
		errs = append(errs, fmt.Errorf("--values %q: want f32 or f16", v.GetString("values")))
	}
	switch v.GetString("compression") {
	case "none":
		c.Compression = payload.CompressNone
	case "s2":
		c.Compression = payload.CompressS2
	case "zstd":
		c.Compression = payload.CompressZstd
	default:
		errs = append(errs, fmt.Errorf("--compression %q: want none, s2 or zstd",
			v.GetString("compression")))
	}
	c.LeaseTimeout = v.GetDuration("lease-timeout")
	c.JobID = v.GetString("job-id")
	switch train := v.GetString("train") != ""; {
	case train && len(c.Corpus) > 0:
		errs = append(errs, errors.New("--corpus and --train exclude each other: a job "+
			"pretrains or fine-tunes"))
	case train:
		// A fine-tuning job of a multi-process coordinator.
		errs = append(errs, finetuneSettings(v, &c)...)
	case len(c.Corpus) == 0:
		errs = append(errs, errors.New("--corpus: give at least one corpus file"))
	}
	for _, path := range c.Corpus {
		// Checked here so that a typo fails before any node starts; the coordinator
		// still checks what it reads.
		if st, err := os.Stat(path); err != nil {
			errs = append(errs, fmt.Errorf("--corpus: %w", err))
		} else if st.IsDir() {
			errs = append(errs, fmt.Errorf("--corpus: %s is a directory; give its files", path))
		}
	}
	if c.OutDir == "" {
		errs = append(errs, errors.New("--out: give an output directory"))
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// tokenizerFlag reads --tokenizer.
func tokenizerFlag(v *viper.Viper) (skipgridpb.Tokenizer, error) {
	switch v.GetString("tokenizer") {
	case "words":
		return skipgridpb.Tokenizer_TOKENIZER_WORDS, nil
	case "whitespace":
		return skipgridpb.Tokenizer_TOKENIZER_WHITESPACE, nil
	}
	return 0, fmt.Errorf("--tokenizer %q: want words or whitespace", v.GetString("tokenizer"))
}
