package coordinator

import (
	"bytes"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/skipgrid/skipgrid/classify"
	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/vectors"
)

func TestFinetuneConfigValidate(t *testing.T) {
	c := DefaultConfig()
	c.OutDir = "out"
	c.Kind = skipgridpb.JobKind_JOB_KIND_FINETUNE
	c.Finetune.TrainFile = "train.txt"
	if err := c.Validate(); err != nil {
		t.Errorf("a fine-tuning job needs no corpus: %v", err)
	}

	c.Finetune.TrainFile = ""
	c.Finetune.BatchExamples = 0
	c.Finetune.EmbeddingLRScale = -1
	c.Finetune.BigramBuckets = -2
	c.Finetune.Vectors = &vectors.Vectors{Dim: 300}
	err := c.Validate()
	for _, want := range []string{"train file: empty", "batch examples: 0",
		"embedding lr scale: -1", "bigram buckets: -2", "have dim 300, but the job's dim is 100"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to report %q", err, want)
		}
	}

	c = DefaultConfig()
	c.OutDir, c.Corpus, c.Kind = "out", []string{"c.txt"}, skipgridpb.JobKind(9)
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "kind: 9") {
		t.Errorf("unknown kind: %v", err)
	}
}

func TestExampleChunks(t *testing.T) {
	c := &Coordinator{cfg: DefaultConfig()}
	c.cfg.Finetune.TrainFile = "t"
	// 100 examples, batch 32: automatic chunks are max(32, ceil(100/32)=4) = 32 examples.
	got := c.exampleChunks(100)
	var ends []int64
	for _, ch := range got {
		ends = append(ends, ch.End)
	}
	if len(got) != 4 || got[0].Start != 0 || !slices.Equal(ends, []int64{32, 64, 96, 100}) {
		t.Errorf("chunks %+v, want ends 32 64 96 100", got)
	}
	c.cfg.Finetune.ChunkExamples = 60
	if got := c.exampleChunks(100); len(got) != 2 || got[1].Start != 60 || got[1].End != 100 {
		t.Errorf("chunks of 60: %+v", got)
	}
}

// TestFinetunePasses counts epochs as fastText does: TREC's 59,513 tokens with 54,135
// pretrained words make -epoch 5 into 5 x 113,648 / 59,513 = 9.55 passes, 10 rounded.
func TestFinetunePasses(t *testing.T) {
	f := DefaultFinetuneConfig()
	cases := []struct {
		on                 bool
		epochs             int
		tokens, pretrained uint64
		want               int
	}{
		{true, 5, 59513, 54135, 10},
		{true, 5, 1000, 90, 5},  // 5.45
		{true, 5, 1000, 100, 6}, // 5.5, rounded away from zero
		{true, 5, 59513, 0, 5},  // no pretrained vectors
		{false, 5, 59513, 54135, 5},
	}
	for _, tc := range cases {
		f.FastTextEpochs = tc.on
		if got := f.passes(tc.epochs, tc.tokens, tc.pretrained); got != tc.want {
			t.Errorf("passes(%d, %d, %d) with the fastText count %v = %d, want %d",
				tc.epochs, tc.tokens, tc.pretrained, tc.on, got, tc.want)
		}
	}

	// planPasses counts labels, tokens and one end of line a line: (1+2+1) + (2+1+1) = 8
	// tokens; with 4 pretrained words, 2 epochs are 2 x 12 / 8 = 3 passes.
	ds, err := classify.Read(strings.NewReader("__label__a x y\n__label__a __label__b z\n"),
		"t", classify.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	c := &Coordinator{cfg: DefaultConfig(), log: slog.New(slog.NewTextHandler(&logs, nil))}
	c.cfg.Epochs = 2
	tk := &ftTask{ds: ds, pre: &vectors.Vectors{Words: []string{"p", "q", "r", "s"}, Dim: 1,
		Data: make([]float32, 4)}}
	if err := c.planPasses(tk); err != nil || tk.tokens != 8 || tk.passes != 3 {
		t.Errorf("planPasses: %v, %d tokens, %d passes; want 8 and 3", err, tk.tokens,
			tk.passes)
	}
	if strings.Contains(logs.String(), "WARN") {
		t.Errorf("planPasses warned of 3 passes for 2 epochs:\n%s", logs.String())
	}

	// 76 pretrained words: 2 x (8 + 76) / 8 = 21 passes, over 10 a epoch, which is warned.
	logs.Reset()
	words := make([]string, 76)
	for i := range words {
		words[i] = fmt.Sprint("w", i)
	}
	tk = &ftTask{ds: ds, pre: &vectors.Vectors{Words: words, Dim: 1, Data: make([]float32, 76)}}
	if err := c.planPasses(tk); err != nil || tk.passes != 21 {
		t.Errorf("planPasses with 76 pretrained words: %v, %d passes; want 21", err, tk.passes)
	}
	if !strings.Contains(logs.String(), "level=WARN") ||
		!strings.Contains(logs.String(), "--fasttext-epochs=false") {
		t.Errorf("planPasses of 21 passes for 2 epochs logged no warning with the remedy:\n%s",
			logs.String())
	}
}
