package embedded

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skipgrid/skipgrid/coordinator"
	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/ps"
	"github.com/skipgrid/skipgrid/vectors"
	"github.com/skipgrid/skipgrid/vocab"
)

// job returns a small job on one of the testdata corpora, writing into a fresh directory.
func job(t *testing.T, corpus string) coordinator.Config {
	t.Helper()
	c := coordinator.DefaultConfig()
	c.Corpus = []string{filepath.Join("testdata", corpus)}
	c.OutDir = filepath.Join(t.TempDir(), "out")
	c.NumPS = 2
	c.Dim, c.Epochs, c.MinCount, c.Seed = 16, 3, 1, 7
	c.ChunkBytes = 256
	c.StartTimeout = 30 * time.Second
	return c
}

// testWriter sends log lines to the test's log, shown only when the test fails.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func run(t *testing.T, cfg Config) (*coordinator.Result, error) {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	cfg.Coordinator.Logger = cfg.Logger
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c.Run(ctx)
}

// TestOneWorkerIsDeterministic trains case 29 (20 words with equal counts) twice with one
// worker and one thread, in memory and over gRPC: the vocabulary must be in byte order and
// the vectors byte-identical across all runs.
func TestOneWorkerIsDeterministic(t *testing.T) {
	var outputs [][]byte
	for _, tr := range []Transport{TransportInMem, TransportInMem, TransportGRPC} {
		jc := job(t, "29-ties-corpus.txt")
		jc.Tokenizer = skipgridpb.Tokenizer_TOKENIZER_WHITESPACE
		if _, err := run(t, Config{Coordinator: jc, Workers: 1, Threads: 1, Transport: tr}); err != nil {
			t.Fatalf("%s: %v", tr, err)
		}
		b, err := os.ReadFile(filepath.Join(jc.OutDir, coordinator.VectorsFile))
		if err != nil {
			t.Fatal(err)
		}
		outputs = append(outputs, b)

		words, err := os.ReadFile(filepath.Join(jc.OutDir, coordinator.VocabFile))
		if err != nil {
			t.Fatal(err)
		}
		// Every word occurs 3 times (6 lines of 10 tokens, 20 words): byte order w00 .. w19.
		var want strings.Builder
		for i := range 20 {
			want.WriteString("w" + string(rune('0'+i/10)) + string(rune('0'+i%10)) + " 3\n")
		}
		if string(words) != want.String() {
			t.Fatalf("%s: vocab.txt =\n%s\nwant\n%s", tr, words, want.String())
		}
	}
	for i := 1; i < len(outputs); i++ {
		if !bytes.Equal(outputs[0], outputs[i]) {
			t.Errorf("run %d wrote different vectors from run 0", i)
		}
	}
}

// TestDivergenceFailsTheJob trains case 20 with learning rate 1000: the job must stop with an
// error naming the epoch, step and learning rate, and write no vectors.
func TestDivergenceFailsTheJob(t *testing.T) {
	jc := job(t, "20-tiny-corpus.txt")
	jc.Alpha = 1000
	jc.Epochs = 50
	_, err := run(t, Config{Coordinator: jc, Workers: 2, Threads: 1})
	if err == nil {
		t.Fatal("training with alpha 1000 succeeded; want a divergence error")
	}
	for _, want := range []string{"epoch", "step", "learning rate"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name the %s", err, want)
		}
	}
	if _, serr := os.Stat(filepath.Join(jc.OutDir, coordinator.VectorsFile)); serr == nil {
		t.Errorf("a vectors file was written by a diverged job")
	}
}

// TestEmptyVocabularyFailsEarly runs case 15 (10 words once each) with min count 5: the job
// fails before any shard holds rows, saying how many distinct words there were.
func TestEmptyVocabularyFailsEarly(t *testing.T) {
	jc := job(t, "15-min-count-empty.txt")
	jc.MinCount = 5
	_, err := run(t, Config{Coordinator: jc, Workers: 1, Threads: 1})
	if !errors.Is(err, vocab.ErrEmpty) {
		t.Fatalf("err = %v, want vocab.ErrEmpty", err)
	}
	if !strings.Contains(err.Error(), "10 distinct") {
		t.Errorf("error %q does not give the number of distinct words (10)", err)
	}
	entries, _ := os.ReadDir(jc.OutDir)
	if len(entries) != 0 {
		t.Errorf("failed job left %d files in its output directory", len(entries))
	}
}

// TestHugeLineTrains runs case 14 (one 72 KB line of 25,000 tokens, no newline): zebra and yak
// are counted 3,750 times each and their vectors move away from their initial values.
func TestHugeLineTrains(t *testing.T) {
	jc := job(t, "14-huge-single-line.txt")
	jc.Epochs = 1
	jc.MaxSentenceLen = 1000
	if _, err := run(t, Config{Coordinator: jc, Workers: 1, Threads: 1}); err != nil {
		t.Fatal(err)
	}
	words, err := os.ReadFile(filepath.Join(jc.OutDir, coordinator.VocabFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"zebra 3750\n", "yak 3750\n"} {
		if !strings.Contains(string(words), w) {
			t.Errorf("vocab.txt lacks %q:\n%s", w, words)
		}
	}
	v, err := vectors.ReadFile(filepath.Join(jc.OutDir, coordinator.VectorsFile),
		vectors.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	init := make([]float32, v.Dim)
	for _, w := range []string{"zebra", "yak"} {
		row, ok := v.Lookup(w)
		if !ok {
			t.Fatalf("%s missing from the vectors", w)
		}
		ps.InitRow(jc.Seed, skipgridpb.Table_TABLE_INPUT, uint32(row), init)
		same := true
		for i, x := range v.Row(row) {
			same = same && x == init[i]
		}
		if same {
			t.Errorf("%s's vector is still its initial value after training", w)
		}
	}
}
