package coordinator

import (
	"slices"
	"strings"
	"testing"

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
