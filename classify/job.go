package classify

import (
	"github.com/skipgrid/skipgrid/corpus"
	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// JobReadOptions returns the options every node of a fine-tuning job reads the labelled file
// with, from the job's tokenizer and sentence cap: the coordinator and the workers must
// read the same examples.
func JobReadOptions(t skipgridpb.Tokenizer, maxSentence int) ReadOptions {
	tok := corpus.TokenizerWords
	if t == skipgridpb.Tokenizer_TOKENIZER_WHITESPACE {
		tok = corpus.TokenizerWhitespace
	}
	return ReadOptions{Tokenizer: tok, MaxSentence: maxSentence}
}

// TokenizerName is the name of a job's tokenizer, as model.json records it.
func TokenizerName(t skipgridpb.Tokenizer) string {
	return JobReadOptions(t, 0).Tokenizer.String()
}
