package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/skipgrid/skipgrid/eval"
	"github.com/skipgrid/skipgrid/vectors"
)

// newEvalCmd groups the intrinsic evaluations of a vectors file.
func newEvalCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Score word vectors on analogy or similarity tests",
	}
	cmd.AddCommand(newEvalAnalogyCmd(), newEvalSimilarityCmd(), newEvalClassifyCmd())
	return cmd
}

// vectorsFlags are the flags that say how to read the vectors file.
type vectorsFlags struct {
	path    string
	format  string
	replace bool
}

func (f *vectorsFlags) add(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.path, "vectors", "", "vectors file (word2vec binary or text, fastText .vec, "+
		"GloVe; gzip allowed)")
	fs.StringVar(&f.format, "format", "auto", "vectors format: auto, bin, text (or vec), glove")
	fs.BoolVar(&f.replace, "replace-invalid-utf8", false,
		"replace invalid UTF-8 in words by U+FFFD instead of refusing the file")
	_ = cmd.MarkFlagRequired("vectors")
}

// read loads the first limit vectors (all when 0).
func (f *vectorsFlags) read(cmd *cobra.Command, limit int) (*vectors.Vectors, error) {
	format, err := vectors.ParseFormat(f.format)
	if err != nil {
		return nil, fmt.Errorf("--format: %w", err)
	}
	log, err := newLogger(cmd)
	if err != nil {
		return nil, err
	}
	return vectors.ReadFile(f.path, vectors.ReadOptions{
		Format: format, ReplaceInvalidUTF8: f.replace, Limit: limit, Logger: log,
	})
}

func newEvalAnalogyCmd() *cobra.Command {
	var (
		vf        vectorsFlags
		questions string
		restrict  int
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "analogy --vectors F --questions Q [--restrict N] [--json]",
		Short: "Analogy accuracy, counted as word2vec's compute-accuracy counts it",
		Long: `Analogy answers the questions "a b c d" of Q (a is to b as c is to d; sections
start with ": name", names starting with "gram" are syntactic) with 3CosAdd over the first
--restrict words of the vectors, ignoring case. Questions with a word outside those words are
skipped and counted; the last line gives the questions seen out of those in the file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if restrict < 0 {
				return fmt.Errorf("--restrict %d: give 0 for all words, or a positive count",
					restrict)
			}
			v, err := vf.read(cmd, restrict)
			if err != nil {
				return err
			}
			f, err := os.Open(questions)
			if err != nil {
				return err
			}
			defer f.Close()

			res, err := eval.Analogy(v, f, questions, eval.AnalogyOptions{Restrict: restrict})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			return printAnalogy(cmd.OutOrStdout(), res)
		},
	}
	vf.add(cmd)
	fs := cmd.Flags()
	fs.StringVar(&questions, "questions", "", "questions file, e.g. questions-words.txt")
	fs.IntVar(&restrict, "restrict", eval.DefaultAnalogyOptions().Restrict,
		"use only the first N words of the vectors (the most frequent); 0 for all")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	_ = cmd.MarkFlagRequired("questions")
	return cmd
}

// printAnalogy prints the result the way compute-accuracy reports it: each
// section, then the semantic, syntactic and total accuracy, then the share
// of questions seen.
func printAnalogy(w io.Writer, res *eval.AnalogyResult) error {
	line := func(name string, s eval.Score) {
		fmt.Fprintf(w, "%s: %.2f%% (%d/%d)\n", name, 100*s.Accuracy, s.Correct, s.Total)
	}
	for _, s := range res.Sections {
		name := s.Name
		if name == "" {
			name = "(no section)"
		}
		line(name, s.Score)
	}
	line("semantic", res.Semantic)
	line("syntactic", res.Syntactic)
	line("total", res.Total)
	seen := 0.0
	if res.Questions > 0 {
		seen = 100 * float64(res.Seen) / float64(res.Questions)
	}
	_, err := fmt.Fprintf(w, "questions seen/total: %d/%d (%.2f%%)\n",
		res.Seen, res.Questions, seen)
	return err
}

func newEvalSimilarityCmd() *cobra.Command {
	var (
		vf     vectorsFlags
		pairs  string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "similarity --vectors F --pairs P [--json]",
		Short: "Spearman correlation of cosines with human similarity scores",
		Long: `Similarity reads P, lines "word1 word2 score" (tab or space separated, '#' lines
skipped), and prints Spearman's rho between the scores and the cosines of the pairs whose words
both have vectors (looked up ignoring case), with how many pairs that is.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := vf.read(cmd, 0)
			if err != nil {
				return err
			}
			f, err := os.Open(pairs)
			if err != nil {
				return err
			}
			defer f.Close()

			res, err := eval.Similarity(v, f, pairs)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(),
				"spearman rho: %.4f\npairs covered/total: %d/%d (%.2f%%)\n",
				res.Rho, res.Covered, res.Pairs, 100*res.Coverage)
			return err
		},
	}
	vf.add(cmd)
	fs := cmd.Flags()
	fs.StringVar(&pairs, "pairs", "", "word pairs with scores, e.g. wordsim353.tsv")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	_ = cmd.MarkFlagRequired("pairs")
	return cmd
}

// printJSON prints v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
