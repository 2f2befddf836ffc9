package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/skipgrid/skipgrid/classify"
	"github.com/skipgrid/skipgrid/coordinator"
	"github.com/skipgrid/skipgrid/embedded"
	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/vectors"
)

func newFinetuneCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use: "finetune (--pretrained F | --random-init) --train T (--out DIR | --resume DIR) " +
			"[--test X] [flags]",
		Short: "Train a text classifier on pretrained vectors, on an embedded cluster",
		Long: `Finetune trains a bag-of-embeddings classifier (the mean of the text's word vectors,
and of hashed word bigrams with --bigrams, into a softmax over the labels) on T, a labelled
file in fastText's format (__label__X text), as one job of a coordinator, --ps parameter-server
shards and --workers workers in this process, like train. The embedding table starts from the
pretrained vectors F (word2vec binary or text, fastText .vec, GloVe), which are fine-tuned or,
with --freeze-embeddings, kept as they are; --random-init trains from random rows instead, the
baseline. Task words missing from F start uniform in [-1/dim, 1/dim) from --seed; their count
is logged and recorded. Epochs are counted as fastText counts them with pretrained vectors
(each pretrained word counts as one more token of the file), so --epochs 5 makes more than 5
passes; --fasttext-epochs=false makes --epochs the passes.

It writes the model to DIR (vectors.bin, classifier.bin, model.json, vocab.txt) and the run's
record to DIR/run.json; with --test it prints the test score at the end.

While it trains, the shards write checkpoints to DIR/.checkpoints (after every pass, and every
--checkpoint-every) and the coordinator its state to DIR/.state; a job stopped (Ctrl-C,
SIGTERM, a crash) continues with --resume DIR and the same job flags. Both are removed once
the job ends.`,
		Args: cobra.NoArgs,
		RunE: runFinetune,
	}
	fs := cmd.Flags()
	d := coordinator.DefaultConfig()
	addFinetuneFlags(fs)
	fs.String("test", "", "labelled test file to score the model on at the end")
	fs.String("out", "", "output directory of the model")
	fs.Int("epochs", 5, "epochs over the training file (see --fasttext-epochs)")
	fs.Float64("alpha", 0.1, "starting learning rate, decayed linearly to --min-alpha")
	fs.Float64("min-alpha", 0, "learning-rate floor (0: alpha * 1e-4)")
	fs.Int("dim", d.Dim, "vector dimension; with --pretrained it must be the vectors' own "+
		"(the default)")
	fs.Uint64("seed", d.Seed, "seed of every random choice")
	fs.String("tokenizer", "words", "words (lower-case words, as pretraining) or whitespace "+
		"(tokens as they are, as fastText reads them)")
	fs.Int("workers", 2, "workers")
	fs.Int("threads", 1, "training goroutines per worker")
	fs.Int("ps", 2, "parameter-server shards")
	fs.String("transport", "inmem", "inmem or grpc (loopback)")
	fs.Bool("json", false, "print the test report as JSON")
	fs.String("config", "", "configuration file (YAML, TOML or JSON; keys as the flags)")
	fs.String("resume", "", "continue the stopped job whose output directory this is "+
		"(give the same job flags)")
	fs.Duration("checkpoint-every", 0, "checkpoint this often as well as after every pass")
	return cmd
}

func runFinetune(cmd *cobra.Command, _ []string) error {
	log, err := newLogger(cmd)
	if err != nil {
		return err
	}
	v, err := newViper(cmd)
	if err != nil {
		return err
	}
	if err := resumeOut(v); err != nil {
		return err
	}
	jc, err := finetuneConfig(cmd, v, log)
	if err != nil {
		return err
	}
	// The test file is read now, as the model will read text, so that a wrong one fails
	// before training rather than after it.
	var testData *classify.Dataset
	test := v.GetString("test")
	if test != "" {
		opt := classify.JobReadOptions(jc.Tokenizer, jc.MaxSentenceLen)
		if testData, err = readTest(test, opt, log); err != nil {
			return err
		}
	}
	cleanup := removeIfCreated(jc.OutDir)
	ckptDir, err := prepareCheckpoints(v, &jc)
	if err != nil {
		return err
	}
	jc.Logger = log
	cluster, err := embedded.New(embedded.Config{
		Coordinator: jc,
		Workers:     v.GetInt("workers"),
		Threads:     v.GetInt("threads"),
		Transport:   embedded.Transport(v.GetString("transport")),
		Logger:      log,

		CheckpointDir: ckptDir,
	})
	if err != nil {
		return err
	}
	res, err := cluster.Run(cmd.Context())
	removeCheckpoints(ckptDir, cmd.Context().Err() != nil)
	if err != nil {
		cleanup()
		return err
	}

	// With --json, stdout holds the test report alone.
	out := cmd.OutOrStdout()
	if v.GetBool("json") {
		out = cmd.ErrOrStderr()
	}
	ft := res.Finetune
	count := ""
	if len(res.Epochs) != jc.Epochs {
		count = fmt.Sprintf(", fastText's count of --epochs %d", jc.Epochs)
	}
	fmt.Fprintf(out, "fine-tuned %d examples x %d passes%s (%d labels, %d words, %d without "+
		"a pretrained vector) in %.1fs; model in %s\n", ft.Examples, len(res.Epochs), count,
		len(ft.Labels), ft.VocabSize, ft.MissingWords, res.PhaseSeconds.Training, jc.OutDir)
	if test == "" {
		return nil
	}
	return scoreModel(cmd, jc.OutDir, test, testData, v.GetBool("json"), log)
}

// addFinetuneFlags declares the settings that only a fine-tuning job has. The finetune
// command uses them; a coordinator of a multi-process cluster can add them to its own job
// flags and call finetuneSettings.
func addFinetuneFlags(fs *pflag.FlagSet) {
	f := coordinator.DefaultFinetuneConfig()
	fs.String("train", "", "labelled training file (__label__X text; plain or gzip)")
	fs.String("pretrained", "", "pretrained vectors file")
	fs.String("pretrained-format", "auto", "format of --pretrained: auto, bin, text (or vec), "+
		"glove")
	fs.Bool("replace-invalid-utf8", false, "replace invalid UTF-8 in the words of --pretrained "+
		"by U+FFFD instead of refusing the file")
	fs.Bool("random-init", false, "start every row at random, without pretrained vectors")
	fs.Bool("pretrained-vocab", f.PretrainedVocab, "keep the pretrained words the training "+
		"file lacks, so that prediction finds them (as fastText does)")
	fs.Bool("fasttext-epochs", f.FastTextEpochs, "count --epochs as fastText's -epoch with "+
		"-pretrainedVectors: epochs x (tokens + pretrained words) / tokens passes; false: "+
		"--epochs passes")
	fs.Int("bigrams", 0, "hashed word-bigram buckets (0: no bigrams)")
	fs.Bool("freeze-embeddings", false, "keep the embedding rows fixed; train the classifier")
	fs.Float64("embedding-lr-scale", f.EmbeddingLRScale, "embeddings' learning rate over "+
		"the classifier's")
	fs.Int("batch-examples", f.BatchExamples, "examples a worker trains between a pull and "+
		"a push")
	fs.Int("chunk-examples", 0, "examples per lease (0: an epoch in 32 chunks)")
}

// finetuneSettings makes c a fine-tuning job with the flags of addFinetuneFlags, and returns
// every problem with them. It does not read the vectors (see readPretrained).
func finetuneSettings(v *viper.Viper, c *coordinator.Config) []error {
	c.Kind = skipgridpb.JobKind_JOB_KIND_FINETUNE
	f := &c.Finetune
	f.TrainFile, f.Pretrained = v.GetString("train"), v.GetString("pretrained")
	f.PretrainedVocab, f.Freeze = v.GetBool("pretrained-vocab"), v.GetBool("freeze-embeddings")
	f.FastTextEpochs = v.GetBool("fasttext-epochs")
	f.ReplaceInvalidUTF8 = v.GetBool("replace-invalid-utf8")
	f.EmbeddingLRScale, f.BigramBuckets = v.GetFloat64("embedding-lr-scale"), v.GetInt("bigrams")
	f.BatchExamples, f.ChunkExamples = v.GetInt("batch-examples"), v.GetInt("chunk-examples")

	var errs []error
	format, err := vectors.ParseFormat(v.GetString("pretrained-format"))
	if err != nil {
		errs = append(errs, fmt.Errorf("--pretrained-format: %w", err))
	}
	f.PretrainedFormat = format
	random := v.GetBool("random-init")
	switch {
	case random && f.Pretrained != "":
		errs = append(errs, errors.New("--random-init and --pretrained exclude each other"))
	case !random && f.Pretrained == "":
		errs = append(errs, errors.New("--pretrained: give the pretrained vectors, or "+
			"--random-init for the baseline without them"))
	}
	if f.TrainFile == "" {
		errs = append(errs, errors.New("--train: give the labelled training file"))
	}
	return errs
}

// finetuneConfig builds the job from the flags, reading the pretrained vectors to learn or
// check the dimension.
func finetuneConfig(cmd *cobra.Command, v *viper.Viper, log *slog.Logger) (
	coordinator.Config, error) {
	c := coordinator.DefaultConfig()
	c.JobID = "skipgrid-finetune"
	c.NumPS, c.OutDir = v.GetInt("ps"), v.GetString("out")
	c.Epochs, c.Alpha, c.MinAlpha = v.GetInt("epochs"), v.GetFloat64("alpha"),
		v.GetFloat64("min-alpha")
	c.Seed, c.Dim = v.GetUint64("seed"), v.GetInt("dim")
	errs := finetuneSettings(v, &c)
	tok, err := tokenizerFlag(v)
	if err != nil {
		errs = append(errs, err)
	}
	c.Tokenizer = tok
	if c.OutDir == "" {
		errs = append(errs, errors.New("--out: give the model's output directory"))
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	if err := readPretrained(&c, cmd.Flags().Changed("dim"), log); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// readPretrained reads c's pretrained vectors, if any, into c.Finetune.Vectors, and takes
// their dimension; a --dim given that differs is an error.
func readPretrained(c *coordinator.Config, dimGiven bool, log *slog.Logger) error {
	f := &c.Finetune
	if f.Pretrained == "" {
		return nil
	}
	pre, err := vectors.ReadFile(f.Pretrained, f.PretrainedOptions(log))
	if err != nil {
		return fmt.Errorf("--pretrained: %w", err)
	}
	if dimGiven && c.Dim != pre.Dim {
		return fmt.Errorf("--dim %d disagrees with the pretrained vectors %s, of dim %d; "+
			"drop --dim to use %d", c.Dim, f.Pretrained, pre.Dim, pre.Dim)
	}
	c.Dim, f.Vectors = pre.Dim, pre
	return nil
}

// readTest reads the labelled file test as opt says, and logs its warnings.
func readTest(test string, opt classify.ReadOptions, log *slog.Logger) (*classify.Dataset,
	error) {
	ds, err := classify.ReadFile(test, opt)
	if ds != nil {
		for _, w := range ds.Warnings {
			log.Warn("test file: "+w.Msg, "file", ds.Name, "line", w.Line)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("--test %s: %w", test, err)
	}
	return ds, nil
}

// scoreModel prints the score of the model in dir on ds, the labelled file test; with ds nil
// it reads test as the model's tokenizer reads text.
func scoreModel(cmd *cobra.Command, dir, test string, ds *classify.Dataset, asJSON bool,
	log *slog.Logger) error {
	m, err := classify.Load(dir)
	if err != nil {
		return err
	}
	if ds == nil {
		tok, err := m.TokenizerOf()
		if err != nil {
			return err
		}
		opt := classify.ReadOptions{Tokenizer: tok, MaxSentence: m.Meta.MaxSentence}
		if ds, err = readTest(test, opt, log); err != nil {
			return err
		}
	}
	rep, err := classify.Evaluate(m, ds)
	if err != nil {
		return err
	}
	if rep.UnknownExamples > 0 {
		log.Warn("test file: labels the model does not know; their examples count as wrong",
			"file", ds.Name, "examples", rep.UnknownExamples, "labels", rep.UnknownLabelList())
	}
	out := cmd.OutOrStdout()
	if asJSON {
		return printJSON(out, struct {
			Test   string           `json:"test"`
			Read   classify.Summary `json:"read"`
			Report classify.Report  `json:"report"`
		}{test, ds.Summary, rep})
	}
	fmt.Fprintf(out, "test %s: %s\n", test, ds.Summary)
	fmt.Fprintf(out, "test accuracy: %.4f (%d/%d), macro-F1: %.4f\n\n", rep.Accuracy,
		rep.Correct, rep.Examples, rep.MacroF1)
	return rep.WriteText(out)
}

// newEvalClassifyCmd scores a fine-tuned model on a labelled file.
func newEvalClassifyCmd() *cobra.Command {
	var model, test string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "classify --model DIR --test FILE [--json]",
		Short: "Accuracy, macro-F1 and the per-label report of a fine-tuned classifier",
		Long: `Classify predicts the label of every labelled line of FILE with the model in DIR
(from skipgrid finetune) and scores the top prediction against the line's first label:
accuracy, macro-F1, and precision, recall, F1 and support per label. A line without a known
word gets no prediction and counts as wrong. So does a line whose first label the model does
not have; such lines are counted by label, warned about and reported. A file none of whose
lines has a label of the model is refused, as likely another task's test file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(cmd)
			if err != nil {
				return err
			}
			return scoreModel(cmd, model, test, nil, asJSON, log)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&model, "model", "", "model directory, from skipgrid finetune")
	fs.StringVar(&test, "test", "", "labelled file to score on")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	_ = cmd.MarkFlagRequired("model")
	_ = cmd.MarkFlagRequired("test")
	return cmd
}

func newPredictCmd() *cobra.Command {
	var model, input string
	var k int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "predict --model DIR --input FILE [--k 1] [--json]",
		Short: "Predict the labels of each line of a file with a fine-tuned classifier",
		Long: `Predict prints one record per line of FILE (- for standard input), in order: the --k
most probable labels with their probabilities, "__label__X 0.9123 __label__Y 0.0500", or with
--json one JSON object per line. Leading __label__ fields of a line are not text (they are
shown as gold in JSON). A line that gets no prediction still gets its record, with the reason
(and "labels":[] in JSON): "none (empty line)" for an empty or blank line, "none (no token kept
by the tokenizer)" for text the tokenizer drops whole (punctuation alone, for the words
tokenizer), "none (no known word)" for tokens none of which is a word of the model.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return predict(cmd.InOrStdin(), cmd.OutOrStdout(), model, input, k, asJSON)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&model, "model", "", "model directory, from skipgrid finetune")
	fs.StringVar(&input, "input", "", "text file, one example per line (- for stdin)")
	fs.IntVar(&k, "k", 1, "labels to print per line (0: all)")
	fs.BoolVar(&asJSON, "json", false, "print JSON lines")
	_ = cmd.MarkFlagRequired("model")
	_ = cmd.MarkFlagRequired("input")
	return cmd
}

// predictRecord is one line of predict --json.
type predictRecord struct {
	Line int `json:"line"`
	classify.Prediction
	Gold []string `json:"gold,omitempty"`
}

// predict writes one record per line of input.
func predict(stdin io.Reader, w io.Writer, dir, input string, k int, asJSON bool) error {
	if k < 0 {
		return fmt.Errorf("--k %d: give 0 for all labels, or a positive count", k)
	}
	m, err := classify.Load(dir)
	if err != nil {
		return err
	}
	p, err := classify.NewPredictor(m)
	if err != nil {
		return err
	}
	in := stdin
	if input != "-" {
		f, err := os.Open(input)
		if err != nil {
			return fmt.Errorf("--input %s: %w", input, err)
		}
		defer f.Close()
		in = f
	}

	br := bufio.NewReaderSize(in, 64<<10)
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for n := 1; ; n++ {
		line, rerr := br.ReadString('\n')
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return fmt.Errorf("read %s line %d: %w", input, n, rerr)
		}
		if line == "" && rerr != nil {
			break
		}
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		pred, gold, err := p.PredictLine(strings.TrimSuffix(line, "\n"), k)
		if err != nil {
			return fmt.Errorf("%s line %d: %w", input, n, err)
		}
		if asJSON {
			err = enc.Encode(predictRecord{Line: n, Prediction: pred, Gold: gold})
		} else {
			err = writePrediction(bw, pred)
		}
		if err != nil {
			return err
		}
		if rerr != nil {
			break
		}
	}
	return bw.Flush()
}

// writePrediction writes one text record.
func writePrediction(w *bufio.Writer, p classify.Prediction) error {
	if len(p.Labels) == 0 {
		_, err := fmt.Fprintf(w, "none (%s)\n", p.Reason)
		return err
	}
	for i, s := range p.Labels {
		if i > 0 {
			w.WriteByte(' ')
		}
		fmt.Fprintf(w, "%s%s %.4f", classify.LabelPrefix, s.Label, s.Prob)
	}
	return w.WriteByte('\n')
}
