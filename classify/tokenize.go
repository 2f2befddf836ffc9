package classify

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/skipgrid/skipgrid/corpus"
)

// readerBuffer matches the corpus reader's own buffer, so that the reader reuses ours (see
// tokens) instead of allocating one per line.
const readerBuffer = 64 << 10

// tokenizer turns the text of one line into tokens with a corpus tokenizer, exactly as the
// corpus reader tokenizes a corpus line. It interns the tokens, so repeated words share one
// string, unless intern is nil. Not safe for concurrent use.
type tokenizer struct {
	opt    corpus.ReaderOptions
	br     *bufio.Reader
	src    bytes.Reader
	line   []byte
	intern map[string]string
}

func newTokenizer(t corpus.Tokenizer, maxSentence int) (*tokenizer, error) {
	opt := corpus.ReaderOptions{Tokenizer: t, MaxSentence: maxSentence}
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	tk := &tokenizer{opt: opt, intern: map[string]string{}}
	tk.br = bufio.NewReaderSize(&tk.src, readerBuffer)
	return tk, nil
}

// tokens returns the tokens of text (one line; a newline in it would end the line early). A
// text longer than the reader's sentence cap comes back whole.
func (tk *tokenizer) tokens(text []byte) ([]string, error) {
	// A leading space keeps a byte-order mark inside the text from being taken for the
	// mark at the start of a file; it is a separator for every tokenizer.
	tk.line = append(append(tk.line[:0], ' '), text...)
	tk.src.Reset(tk.line)
	tk.br.Reset(&tk.src)
	r := corpus.NewReader(tk.br, "text", tk.opt)
	defer r.Close()

	var out []string
	for {
		sent, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("tokenize: %w", err)
		}
		for _, t := range sent {
			if tk.intern == nil {
				out = append(out, string(t))
				continue
			}
			s, ok := tk.intern[string(t)]
			if !ok {
				s = string(t)
				tk.intern[s] = s
			}
			out = append(out, s)
		}
	}
}
