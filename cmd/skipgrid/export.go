package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/skipgrid/skipgrid/vectors"
)

// newExportCmd writes a trained model's vectors in another format.
func newExportCmd() *cobra.Command {
	var from, format, out string
	cmd := &cobra.Command{
		Use:   "export --from DIR --format bin|text [--out F]",
		Short: "Write the vectors of a training run (DIR/vectors.bin) as text or binary",
		Long: `Export reads DIR/vectors.bin, as train writes it, and writes it in --format:
text to DIR/vectors.txt unless --out says otherwise; bin needs --out. Words holding white space
cannot be stored in either format and are refused, never written.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := vectors.ParseFormat(format)
			if err != nil {
				return fmt.Errorf("--format: %w", err)
			}
			if f == vectors.FormatAuto {
				return errors.New("--format: give bin or text")
			}
			if out == "" {
				if f != vectors.FormatText {
					return fmt.Errorf("--format %s needs --out: %s is the input",
						format, filepath.Join(from, "vectors.bin"))
				}
				out = filepath.Join(from, "vectors.txt")
			}
			return convert(cmd, filepath.Join(from, "vectors.bin"), vectors.ReadOptions{
				Format: vectors.FormatBinary,
			}, out, f)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&from, "from", "", "directory of a training run, holding vectors.bin")
	fs.StringVar(&format, "format", "text", "output format: bin or text (glove: text without "+
		"the header)")
	fs.StringVar(&out, "out", "", "output file (default DIR/vectors.txt for text)")
	_ = cmd.MarkFlagRequired("from")
	return cmd
}

// newConvertCmd converts a vectors file between formats.
func newConvertCmd() *cobra.Command {
	var in, out, fromFormat, toFormat string
	var replace bool
	cmd := &cobra.Command{
		Use:   "convert --in F --out G [--from-format auto] [--to-format bin|text]",
		Short: "Convert vectors between word2vec binary, word2vec text / .vec and GloVe",
		Long: `Convert reads F (word2vec binary or text, fastText .vec, GloVe; gzip allowed) and
writes G atomically. --to-format auto picks text for G ending in .txt or .vec, binary otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			from, err := vectors.ParseFormat(fromFormat)
			if err != nil {
				return fmt.Errorf("--from-format: %w", err)
			}
			to, err := vectors.ParseFormat(toFormat)
			if err != nil {
				return fmt.Errorf("--to-format: %w", err)
			}
			return convert(cmd, in, vectors.ReadOptions{
				Format: from, ReplaceInvalidUTF8: replace,
			}, out, to)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&in, "in", "", "input vectors file")
	fs.StringVar(&out, "out", "", "output vectors file")
	fs.StringVar(&fromFormat, "from-format", "auto",
		"input format: auto, bin, text (or vec), glove")
	fs.StringVar(&toFormat, "to-format", "auto", "output format: auto (by --out's extension), "+
		"bin, text, glove")
	fs.BoolVar(&replace, "replace-invalid-utf8", false,
		"replace invalid UTF-8 in words by U+FFFD instead of refusing the input")
	_ = cmd.MarkFlagRequired("in")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// convert reads in with opt and writes out in format to, reporting what it
// wrote.
func convert(cmd *cobra.Command, in string, opt vectors.ReadOptions, out string,
	to vectors.Format) error {
	log, err := newLogger(cmd)
	if err != nil {
		return err
	}
	opt.Logger = log
	v, err := vectors.ReadFile(in, opt)
	if err != nil {
		return err
	}
	if err := vectors.WriteFile(out, v, to); err != nil {
		return err
	}
	return report(cmd.OutOrStdout(), v, out)
}

func report(w io.Writer, v *vectors.Vectors, out string) error {
	_, err := fmt.Fprintf(w, "wrote %d vectors of dimension %d to %s\n", v.Len(), v.Dim, out)
	return err
}
