package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skipgrid/skipgrid/classify"
	"github.com/skipgrid/skipgrid/coordinator"
	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/vectors"
)

// topicWords gives each label of the separable task three words of its own; every example
// also holds two of the shared filler words.
var topicWords = map[string][]string{
	"sports": {"ball", "goal", "match"},
	"tech":   {"phone", "laptop", "chip"},
	"food":   {"bread", "soup", "cake"},
}

var fillers = []string{"the", "a", "was", "very", "today"}

// writeSeparable writes n examples per label: a topic word and two fillers, shuffled by a
// seeded generator, and returns the file's path.
func writeSeparable(t *testing.T, n int) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	for i := range n {
		for _, label := range []string{"food", "sports", "tech"} {
			words := []string{topicWords[label][i%3], fillers[rng.IntN(len(fillers))],
				fillers[rng.IntN(len(fillers))]}
			rng.Shuffle(len(words), func(a, c int) { words[a], words[c] = words[c], words[a] })
			fmt.Fprintf(&b, "__label__%s %s\n", label, strings.Join(words, " "))
		}
	}
	path := filepath.Join(t.TempDir(), "train.txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// finetuneConfig is a small fine-tuning job over train with two shards.
func finetuneConfig(t *testing.T, train string) coordinator.Config {
	cfg := coordinator.DefaultConfig()
	cfg.Kind = skipgridpb.JobKind_JOB_KIND_FINETUNE
	cfg.OutDir = filepath.Join(t.TempDir(), "model")
	cfg.NumPS, cfg.Dim, cfg.Epochs, cfg.Alpha = 2, 8, 10, 0.5
	cfg.Finetune.TrainFile = train
	cfg.Finetune.BatchExamples = 4
	cfg.Finetune.ChunkExamples = 10
	cfg.LeaseTimeout, cfg.StallTimeout = 10*time.Second, time.Minute
	cfg.Logger = slog.New(slog.DiscardHandler)
	return cfg
}

func runCluster(t *testing.T, cfg coordinator.Config, transport Transport) (
	*coordinator.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := New(Config{Coordinator: cfg, Workers: 2, Threads: 1, Transport: transport,
		Logger: cfg.Logger})
	if err != nil {
		t.Fatal(err)
	}
	return c.Run(ctx)
}

// TestFinetuneLearnsSeparable trains the separable task from random rows through the
// cluster, with bigrams, and checks that the model gets every training example right and
// that every epoch counted each example once.
func TestFinetuneLearnsSeparable(t *testing.T) {
	train := writeSeparable(t, 20) // 60 examples, 6 chunks of 10
	cfg := finetuneConfig(t, train)
	cfg.Finetune.BigramBuckets = 50
	res, err := runCluster(t, cfg, TransportInMem)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range res.Epochs {
		if e.Words != 60 || e.Chunks != 6 {
			t.Errorf("epoch %d: %d examples in %d chunks, want 60 in 6", e.Epoch, e.Words,
				e.Chunks)
		}
	}
	if first, last := res.Epochs[0].Loss, res.Epochs[len(res.Epochs)-1].Loss; !(last < first) {
		t.Errorf("loss did not fall: %v then %v", first, last)
	}
	if f := res.Finetune; f == nil || !f.RandomInit || f.Examples != 60 ||
		f.MissingWords != 14 {
		// 14 words: 9 topic words and 5 fillers, all started at random.
		t.Errorf("finetune record %+v, want random init, 60 examples, 14 missing words", f)
	}

	m, err := classify.Load(cfg.OutDir)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := classify.ReadFile(train, classify.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := classify.Evaluate(m, ds)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Accuracy != 1 {
		t.Errorf("training accuracy %v (%d of %d), want 1", rep.Accuracy, rep.Correct,
			rep.Examples)
	}
	if m.Meta.BigramBuckets != 50 || len(m.Bigrams) != 50*8 {
		t.Errorf("model has %d buckets (%d values), want 50", m.Meta.BigramBuckets,
			len(m.Bigrams))
	}
}

// pretrainedVectors returns seeded vectors for the topic words and the fillers except
// "today", plus one word the task lacks ("zebra").
func pretrainedVectors(dim int) *vectors.Vectors {
	rng := rand.New(rand.NewPCG(3, 4))
	v := &vectors.Vectors{Dim: dim}
	for _, label := range []string{"food", "sports", "tech"} {
		v.Words = append(v.Words, topicWords[label]...)
	}
	v.Words = append(v.Words, "the", "a", "was", "very", "zebra")
	for range len(v.Words) * dim {
		v.Data = append(v.Data, float32(rng.NormFloat64()))
	}
	return v
}

// TestFinetuneFrozen trains the classifier over frozen pretrained rows: every pretrained row
// comes back bit for bit, the word the vectors lack is counted, and the task still learns.
func TestFinetuneFrozen(t *testing.T) {
	train := writeSeparable(t, 20)
	cfg := finetuneConfig(t, train)
	cfg.Dim, cfg.Epochs = 32, 20 // fixed random features need room to separate
	pre := pretrainedVectors(cfg.Dim)
	cfg.Finetune.Vectors, cfg.Finetune.Pretrained = pre, "in-memory"
	cfg.Finetune.Freeze = true
	res, err := runCluster(t, cfg, TransportGRPC)
	if err != nil {
		t.Fatal(err)
	}
	// The training file has 14 words; "today" has no vector; "zebra" joins the vocabulary.
	if f := res.Finetune; f.MissingWords != 1 || f.VocabSize != 15 || f.TrainedWords != 14 {
		t.Errorf("record: %d missing, %d words of which %d trained; want 1, 15, 14",
			f.MissingWords, f.VocabSize, f.TrainedWords)
	}

	m, err := classify.Load(cfg.OutDir)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range pre.Words {
		j, ok := m.Vectors.Lookup(w)
		if !ok {
			t.Fatalf("pretrained word %q is not in the model", w)
		}
		for k, x := range pre.Row(i) {
			if got := m.Vectors.Row(j)[k]; math.Float32bits(got) != math.Float32bits(x) {
				t.Fatalf("frozen row %q value %d: %v, pretrained %v", w, k, got, x)
			}
		}
	}
	j, _ := m.Vectors.Lookup("today")
	want := make([]float32, cfg.Dim)
	classify.InitRow(cfg.Seed, uint32(j), want)
	for k, x := range want {
		if m.Vectors.Row(j)[k] != x {
			t.Fatalf("frozen row today (row %d) value %d: %v, InitRow gives %v", j, k,
				m.Vectors.Row(j)[k], x)
		}
	}

	ds, err := classify.ReadFile(train, classify.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := classify.Evaluate(m, ds)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Accuracy != 1 {
		t.Errorf("training accuracy %v over frozen rows, want 1", rep.Accuracy)
	}
}

func TestFinetuneRefusals(t *testing.T) {
	dir := t.TempDir()
	unlabelled := filepath.Join(dir, "none.txt")
	if err := os.WriteFile(unlabelled, []byte("no label\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := finetuneConfig(t, unlabelled)
	_, err := runCluster(t, cfg, TransportInMem)
	if !errors.Is(err, classify.ErrNoExamples) {
		t.Errorf("file without a labelled line: %v, want ErrNoExamples", err)
	}

	cfg = finetuneConfig(t, writeSeparable(t, 2))
	cfg.Finetune.Pretrained = filepath.Join(dir, "v.txt")
	if err := os.WriteFile(cfg.Finetune.Pretrained, []byte("1 3\nball 1 2 3\n"),
		0o644); err != nil {
		t.Fatal(err)
	}
	_, err = runCluster(t, cfg, TransportInMem)
	if err == nil || !strings.Contains(err.Error(), "have dim 3, but the job's dim is 8") {
		t.Errorf("dim mismatch: %v, want an error naming 3 and 8", err)
	}
	if _, statErr := os.Stat(cfg.OutDir); !errors.Is(statErr, os.ErrNotExist) {
		t.Errorf("a failed job left %s behind (%v)", cfg.OutDir, statErr)
	}

	// An absurd learning rate overflows the scores at the first batch: the job fails
	// naming the epoch, step and learning rate, and writes no model.
	cfg = finetuneConfig(t, writeSeparable(t, 5))
	cfg.Alpha = 1e30
	_, err = runCluster(t, cfg, TransportInMem)
	if !errors.Is(err, coordinator.ErrJobFailed) ||
		!strings.Contains(err.Error(), "training diverged at epoch 1") ||
		!strings.Contains(err.Error(), "learning rate 1e+30") {
		t.Errorf("learning rate 1e30: %v, want a failed job naming epoch and learning rate", err)
	}
	if _, statErr := os.Stat(cfg.OutDir); !errors.Is(statErr, os.ErrNotExist) {
		t.Errorf("a diverged job left %s behind (%v)", cfg.OutDir, statErr)
	}
}
