package vectors

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// Format names a vectors file format.
type Format int

// The formats this package reads; FormatBinary and FormatText it also writes.
const (
	FormatAuto   Format = iota // detect from the content when reading
	FormatBinary               // word2vec binary
	FormatText                 // word2vec text, also fastText .vec
	FormatGloVe                // GloVe text: no header line
)

// String returns the canonical name of f, as ParseFormat accepts it.
func (f Format) String() string {
	switch f {
	case FormatAuto:
		return "auto"
	case FormatBinary:
		return "binary"
	case FormatText:
		return "text"
	case FormatGloVe:
		return "glove"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// ParseFormat parses a format name: auto, bin or binary, text or vec, glove.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "auto":
		return FormatAuto, nil
	case "bin", "binary":
		return FormatBinary, nil
	case "text", "vec":
		return FormatText, nil
	case "glove":
		return FormatGloVe, nil
	}
	return 0, fmt.Errorf("unknown vectors format %q: use auto, bin, text (or vec) or glove", s)
}

// Vectors holds one row of Dim values per word. Data is row-major with
// len(Words)*Dim values. Words must be distinct.
//
// Vectors returned by Read may be used by many goroutines at once. A Vectors
// built by hand indexes its words on the first call to Lookup; it must not be
// copied, and Words must not change, after that call.
type Vectors struct {
	Words []string
	Dim   int
	Data  []float32

	indexOnce sync.Once
	index     map[string]int
}

// Len returns the number of words.
func (v *Vectors) Len() int { return len(v.Words) }

// Row returns the values of word i. The slice aliases Data.
func (v *Vectors) Row(i int) []float32 {
	return v.Data[i*v.Dim : (i+1)*v.Dim : (i+1)*v.Dim]
}

// Lookup returns the row of word, matched byte for byte. If Words holds the
// same word twice (which Read never returns), the first row wins.
func (v *Vectors) Lookup(word string) (int, bool) {
	v.indexOnce.Do(func() {
		v.index = make(map[string]int, len(v.Words))
		for i := len(v.Words) - 1; i >= 0; i-- {
			v.index[v.Words[i]] = i
		}
	})
	i, ok := v.index[word]
	return i, ok
}

// setIndex installs an index built while reading.
func (v *Vectors) setIndex(index map[string]int) {
	v.indexOnce.Do(func() { v.index = index })
}

// Sentinel errors; every error of this package wraps one of them.
var (
	// ErrInvalidWord: a word is empty, holds ASCII white space or is not
	// valid UTF-8.
	ErrInvalidWord = errors.New("invalid word")
	// ErrDuplicateWord: a word appears twice.
	ErrDuplicateWord = errors.New("duplicate word")
	// ErrNonFinite: a value is NaN or infinite.
	ErrNonFinite = errors.New("non-finite value")
	// ErrCount: the number of vectors disagrees with the header.
	ErrCount = errors.New("vector count disagrees with the header")
	// ErrFormat: the content is malformed or not in the requested format.
	ErrFormat = errors.New("malformed vectors file")
)

// CheckWord reports whether w can be stored in every format of this package:
// it must be non-empty, hold no ASCII white space (space, tab, newline,
// vertical tab, form feed, carriage return: they end a word in every
// format) and be valid UTF-8. The error wraps ErrInvalidWord.
func CheckWord(w string) error {
	if w == "" {
		return fmt.Errorf("%w: the word is empty", ErrInvalidWord)
	}
	if i := strings.IndexAny(w, asciiSpace); i >= 0 {
		return fmt.Errorf("%w: %q holds white space (%q at byte %d), which ends a word in "+
			"vectors files", ErrInvalidWord, w, w[i], i)
	}
	if !utf8.ValidString(w) {
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalidWord, w)
	}
	return nil
}

// asciiSpace lists the bytes that may not appear in a word.
const asciiSpace = " \t\n\v\f\r"

// ParseError says where reading a vectors file failed and what to do.
type ParseError struct {
	File   string // name of the file, as given to Read
	Line   int    // 1-based line of a text file; 0 when Entry is set or for the whole file
	Entry  int    // 1-based entry of a binary file; 0 otherwise
	Offset int64  // byte offset of the entry (binary) or line (text); -1 for the whole file
	// Decompressed is set when the input was gzip: offsets count
	// decompressed bytes.
	Decompressed bool
	Msg          string // what is wrong
	Hint         string // what to do about it
	Err          error  // the sentinel error this is an instance of
}

// Error formats the error as "file: where: what; what to do".
func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	switch {
	case e.Entry > 0:
		fmt.Fprintf(&b, ": entry %d at byte offset %d", e.Entry, e.Offset)
	case e.Line > 0:
		fmt.Fprintf(&b, ": line %d", e.Line)
	case e.Offset >= 0:
		fmt.Fprintf(&b, ": byte offset %d", e.Offset)
	}
	if e.Decompressed && e.Offset >= 0 {
		b.WriteString(" (of the decompressed content)")
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Unwrap returns the sentinel error.
func (e *ParseError) Unwrap() error { return e.Err }
