package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/skipgrid/skipgrid/corpus"
	"github.com/skipgrid/skipgrid/shard"
)

// newTokenizeCmd writes the corpus as skipgrid's tokenizer sees it, one sentence per line,
// so that other tools can be given exactly the same tokens.
func newTokenizeCmd() *cobra.Command {
	var (
		paths     []string
		out       string
		tokenizer string
		maxSent   int
	)
	cmd := &cobra.Command{
		Use:   "tokenize --corpus PATH... [--out FILE]",
		Short: "Print the corpus as the trainer tokenizes it, one sentence per line",
		RunE: func(cmd *cobra.Command, args []string) error {
			paths = append(paths, args...)
			tok, err := corpus.ParseTokenizer(tokenizer)
			if err != nil {
				return err
			}
			if len(paths) == 0 {
				return errors.New("--corpus: give at least one corpus file")
			}
			chunks, err := shard.PlanChunks(paths, 1<<62)
			if err != nil {
				return err
			}
			var w io.Writer = cmd.OutOrStdout()
			var f *os.File
			if out != "" {
				if f, err = os.Create(out); err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			bw := bufio.NewWriterSize(w, 1<<20)
			opt := corpus.ReaderOptions{Tokenizer: tok, MaxSentence: maxSent}
			for _, c := range chunks {
				if err := writeTokens(bw, c, opt); err != nil {
					return err
				}
			}
			if err := bw.Flush(); err != nil {
				return fmt.Errorf("write %s: %w", out, err)
			}
			if f != nil {
				return f.Close()
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&paths, "corpus", nil, "corpus files, plain or gzip (repeatable)")
	cmd.Flags().StringVar(&out, "out", "", "output file (default standard output)")
	cmd.Flags().StringVar(&tokenizer, "tokenizer", "words", "tokenizer: words or whitespace")
	cmd.Flags().IntVar(&maxSent, "max-sentence", 10000, "split sentences longer than this")
	return cmd
}

func writeTokens(w *bufio.Writer, c shard.Chunk, opt corpus.ReaderOptions) error {
	r, err := corpus.OpenChunk(c, opt)
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		sent, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		for i, tok := range sent {
			if i > 0 {
				w.WriteByte(' ')
			}
			w.Write(tok)
		}
		w.WriteByte('\n')
	}
}
