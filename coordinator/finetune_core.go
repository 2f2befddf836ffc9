package coordinator

import (
	"time"

	"github.com/skipgrid/skipgrid/shard"
	"github.com/skipgrid/skipgrid/vocab"
)

// startFinetune enters PHASE_TRAINING for a fine-tuning job of passes passes over the
// examples (see FinetuneConfig.FastTextEpochs), each an epoch of the status and the record.
// Each chunk is a range [Start, End) of positions in an epoch's order of the examples (see
// classify.Permutation), every chunk of the labelled file path; an epoch trains examples
// examples, and v holds the training words (for the status).
func (c *core) startFinetune(chunks []shard.Chunk, examples uint64, passes int,
	v *vocab.Vocab, now time.Time) {
	c.Finetune = true
	c.Chunks = chunks
	c.Vocab = v
	c.TrainWords = examples
	c.set.Epochs = passes
	c.startTraining(now)
}

// unit names what the job's progress counts.
func (c *core) unit() string {
	if c.Finetune {
		return "examples"
	}
	return "words"
}

// source names where the total of one epoch comes from.
func (c *core) source() string {
	if c.Finetune {
		return "labelled file"
	}
	return "vocabulary"
}
