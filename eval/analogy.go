package eval

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/skipgrid/skipgrid/vectors"
)

// Sentinel errors, tested with errors.Is.
var (
	// ErrMalformed: a line of a questions or pairs file cannot be parsed.
	ErrMalformed = errors.New("malformed line")
	// ErrNoQuestions: a questions file holds no question.
	ErrNoQuestions = errors.New("no analogy questions")
	// ErrTooFewPairs: fewer than two pairs have both words in the vectors.
	ErrTooFewPairs = errors.New("too few pairs covered")
	// ErrConstant: all cosines or all scores of the covered pairs are equal,
	// so no rank correlation exists.
	ErrConstant = errors.New("no rank correlation: constant values")
)

// AnalogyOptions controls Analogy.
type AnalogyOptions struct {
	// Restrict uses only the first Restrict rows of the vectors; 0 means all
	// of them. Negative values are refused.
	Restrict int
}

// DefaultAnalogyOptions returns compute-accuracy's setting: the first 30000
// rows, the most frequent words of a trained file.
func DefaultAnalogyOptions() AnalogyOptions { return AnalogyOptions{Restrict: 30000} }

// Score counts correct answers among the questions answered.
type Score struct {
	Correct  int     `json:"correct"`
	Total    int     `json:"total"`
	Accuracy float64 `json:"accuracy"` // Correct/Total; 0 when Total is 0
}

func (s *Score) add(correct bool) {
	s.Total++
	if correct {
		s.Correct++
	}
}

func (s *Score) finish() {
	if s.Total > 0 {
		s.Accuracy = float64(s.Correct) / float64(s.Total)
	}
}

// Section is the result of one section of a questions file. Its Score counts
// the questions seen (all four words known); Questions counts all of them.
type Section struct {
	Name      string `json:"name"` // empty for questions before any ": name" line
	Syntactic bool   `json:"syntactic"`
	Score
	Questions int `json:"questions"`
}

// AnalogyResult is the outcome of Analogy.
type AnalogyResult struct {
	File      string    `json:"file"`
	Restrict  int       `json:"restrict"` // rows of the vectors used
	Vocab     int       `json:"vocab"`    // distinct lower-cased words among them
	Sections  []Section `json:"sections"`
	Semantic  Score     `json:"semantic"`
	Syntactic Score     `json:"syntactic"`
	Total     Score     `json:"total"`
	Seen      int       `json:"questions_seen"`  // questions with all four words known
	Questions int       `json:"questions_total"` // questions in the file
}

// question is a usable question: its section and the kept rows of a, b, c, d.
type question struct {
	section int
	w       [4]int32
}

// Analogy answers the questions read from r (named name in errors) with v,
// as the package doc describes. A line that is neither a section header nor
// four words is an error naming the file and line.
func Analogy(v *vectors.Vectors, r io.Reader, name string, opt AnalogyOptions) (
	*AnalogyResult, error) {
	if opt.Restrict < 0 {
		return nil, fmt.Errorf("analogy: restrict %d is negative: give 0 for all words",
			opt.Restrict)
	}
	if err := checkVectors(v); err != nil {
		return nil, fmt.Errorf("analogy: %w", err)
	}

	voc := newLowered(v, opt.Restrict)
	res := &AnalogyResult{File: name, Restrict: voc.used, Vocab: len(voc.rows)}
	qs, err := parseQuestions(r, name, voc, res)
	if err != nil {
		return nil, err
	}

	got := newScorer(voc.unitRows(v), v.Dim).answer(qs)
	for i, q := range qs {
		sec := &res.Sections[q.section]
		sec.add(got[i])
		if sec.Syntactic {
			res.Syntactic.add(got[i])
		} else {
			res.Semantic.add(got[i])
		}
		res.Total.add(got[i])
	}
	for i := range res.Sections {
		res.Sections[i].finish()
	}
	res.Semantic.finish()
	res.Syntactic.finish()
	res.Total.finish()
	res.Seen = len(qs)
	return res, nil
}

// parseQuestions reads the questions, fills the sections and question count
// of res, and returns the usable questions.
func parseQuestions(r io.Reader, name string, voc *lowered, res *AnalogyResult) (
	[]question, error) {
	var qs []question
	err := eachLine(r, name, func(line string, n int) error {
		if rest, ok := strings.CutPrefix(line, ":"); ok {
			sec := strings.TrimSpace(rest)
			if sec == "" {
				return fmt.Errorf("%s: line %d: %w: a section header without a name; "+
					"write \": name\"", name, n, ErrMalformed)
			}
			res.Sections = append(res.Sections,
				Section{Name: sec, Syntactic: strings.HasPrefix(sec, "gram")})
			return nil
		}

		f := strings.Fields(line)
		if len(f) != 4 {
			return fmt.Errorf("%s: line %d: %w: %d words where a question has 4 "+
				"(a b c d: a is to b as c is to d); fix or remove the line",
				name, n, ErrMalformed, len(f))
		}
		if len(res.Sections) == 0 {
			res.Sections = append(res.Sections, Section{})
		}
		res.Sections[len(res.Sections)-1].Questions++
		res.Questions++

		q := question{section: len(res.Sections) - 1}
		for k, w := range f {
			id, ok := voc.lookup(w)
			if !ok {
				return nil // skipped: counted in the file, not seen
			}
			q.w[k] = id
		}
		qs = append(qs, q)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if res.Questions == 0 {
		return nil, fmt.Errorf("%s: %w: give a file of lines \"a b c d\" in sections "+
			"\": name\"", name, ErrNoQuestions)
	}
	return qs, nil
}

// eachLine calls fn with each line of r that is neither blank nor a '#'
// comment, trimmed of surrounding white space (a CR included), and its
// 1-based number. A last line without a newline counts.
func eachLine(r io.Reader, name string, fn func(line string, n int) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := fn(line, n); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: after line %d: %w", name, n, err)
	}
	return nil
}

// checkVectors refuses vectors whose shape is inconsistent.
func checkVectors(v *vectors.Vectors) error {
	if v == nil || v.Dim < 1 || len(v.Data) != len(v.Words)*v.Dim {
		return errors.New("vectors are empty or their data does not match words times dim")
	}
	return nil
}
