package classify

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/skipgrid/skipgrid/corpus"
)

// LabelPrefix starts every label field of a labelled line.
const LabelPrefix = "__label__"

// DefaultMaxBytes is the largest labelled file ReadFile reads when ReadOptions.MaxBytes is 0.
const DefaultMaxBytes = 1 << 30

// DefaultMaxWarnings is how many warnings a Dataset keeps when ReadOptions.MaxWarnings is 0;
// the rest are only counted.
const DefaultMaxWarnings = 100

// Sentinel errors of this package.
var (
	// ErrNoExamples: a labelled file holds no labelled line.
	ErrNoExamples = errors.New("no labelled line")
	// ErrTooLarge: a labelled file is larger than ReadOptions.MaxBytes.
	ErrTooLarge = errors.New("labelled file too large")
	// ErrFormat: a model file is malformed or disagrees with another.
	ErrFormat = errors.New("malformed model file")
	// ErrUnknownLabels: no example of a test file has a first label that the model knows,
	// as when the file is another task's.
	ErrUnknownLabels = errors.New("no example has a label the model knows")
)

// ReadOptions controls reading a labelled file. The zero value reads with the words
// tokenizer and the default limits.
type ReadOptions struct {
	// Tokenizer turns the text into tokens; zero means corpus.TokenizerWords.
	Tokenizer corpus.Tokenizer
	// MaxSentence is passed to the corpus reader; a longer text is read whole all the same.
	MaxSentence int
	// MaxBytes bounds the (decompressed) size of the file; 0 means DefaultMaxBytes.
	MaxBytes int64
	// MaxWarnings bounds the warnings kept; 0 means DefaultMaxWarnings.
	MaxWarnings int
}

// Example is one labelled line.
type Example struct {
	// Line is the 1-based line number in the file.
	Line int
	// Labels are the line's distinct labels without the prefix, in the order written.
	Labels []string
	// Tokens are the tokens of the text.
	Tokens []string
}

// Warning is a problem with one line that did not stop the reading.
type Warning struct {
	Line int
	Msg  string
}

// Summary counts what reading a labelled file found.
type Summary struct {
	// Lines counts every line, empty ones included.
	Lines int `json:"lines"`
	// Labelled counts the lines kept as examples; Skipped all the others.
	Labelled int `json:"labelled"`
	Skipped  int `json:"skipped"`
	// Empty, Unlabelled and BadLabel split Skipped: blank lines, lines without a label, and
	// lines with a malformed label.
	Empty      int `json:"empty"`
	Unlabelled int `json:"unlabelled"`
	BadLabel   int `json:"bad_label"`
	// MultiLabel counts the examples with more than one label.
	MultiLabel int `json:"multi_label"`
	// NoText counts the examples whose text gives no token.
	NoText int `json:"no_text"`
	// Tokens counts the tokens of all examples.
	Tokens int `json:"tokens"`
	// Warnings counts every warning, kept or not.
	Warnings int `json:"warnings"`
}

// Dataset is a labelled file read into memory.
type Dataset struct {
	// Name is the file's name, as given to Read.
	Name     string
	Examples []Example
	Summary  Summary
	// Warnings holds the first ReadOptions.MaxWarnings warnings, by line.
	Warnings []Warning
}

// WarningText formats w for a log line or a terminal: "name:line: message".
func (d *Dataset) WarningText(w Warning) string {
	return fmt.Sprintf("%s:%d: %s", d.Name, w.Line, w.Msg)
}

// String summarises the reading in one line.
func (s Summary) String() string {
	return fmt.Sprintf("%d labelled and %d skipped lines (%d empty, %d without a label, %d "+
		"with a malformed label) of %d; %d with several labels, %d without text, %d tokens",
		s.Labelled, s.Skipped, s.Empty, s.Unlabelled, s.BadLabel, s.Lines, s.MultiLabel,
		s.NoText, s.Tokens)
}

// LabelList returns the labels of d, by number of examples whose first label it is
// (descending), then by any-position count, then by the label's bytes. Row k of the
// classifier is label k.
func (d *Dataset) LabelList() []string {
	first := map[string]int{}
	any := map[string]int{}
	for _, ex := range d.Examples {
		first[ex.Labels[0]]++
		for _, l := range ex.Labels {
			any[l]++
		}
	}
	labels := make([]string, 0, len(any))
	for l := range any {
		labels = append(labels, l)
	}
	slices.SortFunc(labels, func(a, b string) int {
		if c := cmp.Compare(first[b], first[a]); c != 0 {
			return c
		}
		if c := cmp.Compare(any[b], any[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return labels
}

// ReadFile reads the labelled file at path, plain or gzip.
func ReadFile(path string, opt ReadOptions) (*Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read labelled file: %w", err)
	}
	defer f.Close()
	return Read(f, path, opt)
}

// Read reads a labelled file from r (plain or gzip, detected by its magic bytes); name
// identifies it in errors and warnings. It fails with ErrNoExamples when no line is labelled
// and ErrTooLarge beyond opt.MaxBytes.
func Read(r io.Reader, name string, opt ReadOptions) (*Dataset, error) {
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = DefaultMaxBytes
	}
	if opt.MaxWarnings <= 0 {
		opt.MaxWarnings = DefaultMaxWarnings
	}
	tok, err := newTokenizer(opt.Tokenizer, opt.MaxSentence)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("read %s: gzip: %w", name, err)
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, 64<<10)
	}

	rd := &reader{ds: &Dataset{Name: name}, opt: opt, tok: tok, known: map[string]bool{}}
	if err := rd.readLines(br); err != nil {
		return nil, err
	}
	rd.finish()
	if len(rd.ds.Examples) == 0 {
		return rd.ds, fmt.Errorf("read %s: %w: %s; each example line starts with "+
			"__label__NAME, then the text", name, ErrNoExamples, rd.ds.Summary)
	}
	return rd.ds, nil
}

// reader is the state of one Read.
type reader struct {
	ds  *Dataset
	opt ReadOptions
	tok *tokenizer
	// known holds every label seen, for the hints of unlabelled lines.
	known map[string]bool
	// unlabelled keeps each unlabelled line's number, first field and whether a TAB follows
	// it, for hints once every label is known.
	unlabelled []pending
	warnings   []Warning
}

type pending struct {
	line  int
	first string
	tab   bool
}

// readLines reads every line of br.
func (rd *reader) readLines(br *bufio.Reader) error {
	var size int64
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadBytes('\n')
		size += int64(len(line))
		if size > rd.opt.MaxBytes {
			return fmt.Errorf("read %s: %w: more than %d bytes at line %d; split the file "+
				"or raise the limit", rd.ds.Name, ErrTooLarge, rd.opt.MaxBytes, lineNo)
		}
		if lineNo == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		}
		if len(line) > 0 {
			rd.ds.Summary.Lines++
			if perr := rd.line(lineNo, line); perr != nil {
				return perr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s at line %d: %w", rd.ds.Name, lineNo, err)
		}
	}
}

// warn records a warning for line.
func (rd *reader) warn(line int, format string, args ...any) {
	rd.ds.Summary.Warnings++
	rd.warnings = append(rd.warnings, Warning{Line: line, Msg: fmt.Sprintf(format, args...)})
}

// line parses one line (with its '\n', if any).
func (rd *reader) line(n int, line []byte) error {
	s := &rd.ds.Summary
	rest := line
	var labels []string
	for {
		field, after := cutField(rest)
		if !bytes.HasPrefix(field, []byte(LabelPrefix)) {
			break
		}
		name := string(field[len(LabelPrefix):])
		if bad := checkLabel(name); bad != "" {
			s.Skipped++
			s.BadLabel++
			rd.warn(n, "%s; line skipped", bad)
			return nil
		}
		if !slices.Contains(labels, name) {
			labels = append(labels, name)
		}
		rest = after
	}

	if len(labels) == 0 {
		s.Skipped++
		first, after := cutField(rest)
		if len(first) == 0 {
			s.Empty++
			rd.warn(n, "empty line; skipped")
			return nil
		}
		s.Unlabelled++
		tab := len(after) > 0 && after[0] == '\t'
		rd.unlabelled = append(rd.unlabelled, pending{line: n, first: string(first), tab: tab})
		return nil
	}

	if bytes.Contains(rest, []byte(LabelPrefix)) {
		rd.warn(n, "a %s field after the text is read as text; labels go at the start of "+
			"the line", LabelPrefix)
	}
	toks, err := rd.tok.tokens(rest)
	if err != nil {
		return fmt.Errorf("read %s line %d: %w", rd.ds.Name, n, err)
	}
	for _, l := range labels {
		rd.known[l] = true
	}
	s.Labelled++
	s.Tokens += len(toks)
	if len(labels) > 1 {
		s.MultiLabel++
	}
	if len(toks) == 0 {
		s.NoText++
		rd.warn(n, "labelled line without a token of text; it trains nothing")
	}
	rd.ds.Examples = append(rd.ds.Examples, Example{Line: n, Labels: labels, Tokens: toks})
	return nil
}

// checkLabel returns what is wrong with a label name, or "".
func checkLabel(name string) string {
	switch {
	case name == "":
		return fmt.Sprintf("%s without a name", LabelPrefix)
	case !utf8.ValidString(name):
		return fmt.Sprintf("label %q is not valid UTF-8", name)
	}
	return ""
}

// finish turns the unlabelled lines into warnings, with a hint where the first field looks
// like a label, and keeps the first MaxWarnings warnings by line.
func (rd *reader) finish() {
	for _, p := range rd.unlabelled {
		msg := fmt.Sprintf("no %sNAME at the start of the line; skipped", LabelPrefix)
		if utf8.ValidString(p.first) && (rd.known[p.first] || p.tab) {
			msg += fmt.Sprintf(" (if %q is its label, write it as %s%s)", p.first,
				LabelPrefix, p.first)
		}
		rd.warn(p.line, "%s", msg)
	}
	slices.SortStableFunc(rd.warnings, func(a, b Warning) int {
		return cmp.Compare(a.Line, b.Line)
	})
	if len(rd.warnings) > rd.opt.MaxWarnings {
		rd.warnings = rd.warnings[:rd.opt.MaxWarnings]
	}
	rd.ds.Warnings = rd.warnings
}

// cutField returns the first white-space separated field of b and the bytes after it
// (starting with the separator, if any).
func cutField(b []byte) (field, rest []byte) {
	start := 0
	for start < len(b) && isSpace(b[start]) {
		start++
	}
	end := start
	for end < len(b) && !isSpace(b[end]) {
		end++
	}
	return b[start:end], b[end:]
}

// isSpace reports ASCII white space, the separators of labelled lines.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}
