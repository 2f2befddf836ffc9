package vectors

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// loaded is the comparable content of a Vectors.
type loaded struct {
	Words []string
	Dim   int
	Bits  []uint32 // the values' bits, so -0 and 0 differ
}

func contentOf(v *Vectors) loaded {
	bits := make([]uint32, len(v.Data))
	for i, x := range v.Data {
		bits[i] = math.Float32bits(x)
	}
	return loaded{Words: v.Words, Dim: v.Dim, Bits: bits}
}

// content builds the expected content from float32 values.
func content(words []string, dim int, values ...float32) loaded {
	return contentOf(&Vectors{Words: words, Dim: dim, Data: values})
}

// quiet discards log output.
var quiet = slog.New(slog.DiscardHandler)

// TestReadCases loads the case files that load (testdata, copied from the
// collection of inputs that broke other tools).
func TestReadCases(t *testing.T) {
	// 08-binary-*.bin: "3 2" then cat, dog, bird with and without a newline
	// after each vector; the README of the collection states the values, and
	// the hex confirms them: 0x3e800000 = 0.25, 0x3f000000 = 0.5,
	// 0xbe800000 = -0.25, 0xbf800000 = -1, 0x40000000 = 2.
	animals := content([]string{"cat", "dog", "bird"}, 2, 0.25, 0.5, 0.5, -0.25, -1, 2)
	// 06 and 06b hold the same three rows, read off the files.
	punct := content([]string{"the", ",", "."}, 3,
		0.25, -0.5, 0.125, 0.0625, 0.5, -0.25, 0.75, 0.25, -0.125)
	// 12b: a byte-order mark, then "2 3", cat 0.1 0.2 0.3, dog 0.4 0.5 0.6.
	bom := content([]string{"cat", "dog"}, 3, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)

	tests := []struct {
		file   string
		format Format
		want   loaded
	}{
		{"08-binary-with-newlines.bin", FormatAuto, animals},
		{"08-binary-no-newlines.bin", FormatAuto, animals},
		{"08-binary-with-newlines.bin", FormatBinary, animals},
		{"08-binary-no-newlines.bin", FormatBinary, animals},
		{"06-glove-no-header.txt", FormatAuto, punct},
		{"06-glove-no-header.txt", FormatGloVe, punct},
		{"06b-w2v-header-read-as-glove.txt", FormatAuto, punct},
		{"06b-w2v-header-read-as-glove.txt", FormatText, punct},
		{"12b-bom-header.vec", FormatAuto, bom},
		{"12b-bom-header.vec", FormatText, bom},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.format.String(), func(t *testing.T) {
			v, err := ReadFile("testdata/"+tt.file, ReadOptions{Format: tt.format, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, contentOf(v)); diff != "" {
				t.Errorf("content (-want +got):\n%s", diff)
			}
		})
	}
}

// checkErr checks that err is a *ParseError at the wanted place, wrapping
// the wanted sentinel, and that its text holds every fragment.
func checkErr(t *testing.T, err error, want ParseError, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("read succeeded, want an error")
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *ParseError", err, err)
	}
	if !errors.Is(err, want.Err) {
		t.Errorf("error %v does not wrap %v", err, want.Err)
	}
	type place struct {
		File          string
		Line, Entry   int
		Offset        int64
		Decompressed  bool
		Err, Sentinel error
	}
	at := func(e *ParseError) place {
		return place{e.File, e.Line, e.Entry, e.Offset, e.Decompressed, e.Err, nil}
	}
	if diff := cmp.Diff(at(&want), at(pe), cmpopts.EquateErrors()); diff != "" {
		t.Errorf("error %v: place (-want +got):\n%s", err, diff)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q lacks %q", err, f)
		}
	}
}

// TestReadCaseErrors checks the case files that must fail, and how.
func TestReadCaseErrors(t *testing.T) {
	tests := []struct {
		name      string
		file      string
		format    Format
		want      ParseError
		fragments []string
	}{{
		// 01-space-in-word.txt line 3 is "  0.4 0.5 0.6": its word is empty.
		name: "01 txt", file: "01-space-in-word.txt",
		want:      ParseError{Line: 3, Offset: 20, Err: ErrInvalidWord},
		fragments: []string{"line 3", "word is empty"},
	}, {
		// 01-space-in-word.bin: entry 1 was written as "new york", so "york"
		// and 8 more bytes were read as its vector; the error names entry 1
		// at offset 4, just after the header "2 3\n".
		name: "01 bin", file: "01-space-in-word.bin",
		want:      ParseError{Entry: 1, Offset: 4, Err: ErrInvalidWord},
		fragments: []string{"entry 1 at byte offset 4", `"new york"`, "white space"},
	}, {
		// 03-truncated-utf8.bin entry 1 is "caf\xc3", after "3 2\n".
		name: "03 default", file: "03-truncated-utf8.bin",
		want:      ParseError{Entry: 1, Offset: 4, Err: ErrInvalidWord},
		fragments: []string{"entry 1 at byte offset 4", "not valid UTF-8", "replace"},
	}, {
		// 05: the header says 4, the file holds 3.
		name: "05", file: "05-header-count-too-large.vec",
		want:      ParseError{Offset: -1, Err: ErrCount},
		fragments: []string{"holds 3 vectors", "declares 4"},
	}, {
		// 05b: the header says 2, line 4 holds a third vector.
		name: "05b", file: "05b-header-count-too-small.vec",
		want:      ParseError{Line: 4, Offset: 32, Err: ErrCount},
		fragments: []string{"line 4", "declares 2", "holds 3"},
	}, {
		name: "06 as text", file: "06-glove-no-header.txt", format: FormatText,
		want:      ParseError{Line: 1, Offset: 0, Err: ErrFormat},
		fragments: []string{"line 1", "looks like GloVe", "glove"},
	}, {
		name: "06b as glove", file: "06b-w2v-header-read-as-glove.txt", format: FormatGloVe,
		want:      ParseError{Line: 1, Offset: 0, Err: ErrFormat},
		fragments: []string{"line 1", "looks like a word2vec header", "format text"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "testdata/" + tt.file
			_, err := ReadFile(path, ReadOptions{Format: tt.format, Logger: quiet})
			tt.want.File = path
			checkErr(t, err, tt.want, tt.fragments...)
		})
	}
}

// TestSpaceInWordLine4 removes line 3 of 01-space-in-word.txt so that line 4,
// "new york 0.7 0.8 0.9", is reached: 5 fields where a word and 3 values are
// due.
func TestSpaceInWordLine4(t *testing.T) {
	b, err := os.ReadFile("testdata/01-space-in-word.txt")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	in := lines[0] + lines[1] + lines[3] // header, cat, new york
	_, err = Read(strings.NewReader(in), "x.txt", ReadOptions{Logger: quiet})
	checkErr(t, err, ParseError{File: "x.txt", Line: 3, Offset: 20, Err: ErrFormat},
		"5 fields where 4 are due")
}

// TestReplaceInvalidUTF8 reads 03-truncated-utf8.bin with replacement: each
// run of bad bytes becomes one U+FFFD, and one warning counts the 2 words.
func TestReplaceInvalidUTF8(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	v, err := ReadFile("testdata/03-truncated-utf8.bin",
		ReadOptions{ReplaceInvalidUTF8: true, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	// Values from the hex: 0x3dcccccd 0x3e4ccccd, 0x3e99999a 0x3ecccccd,
	// 0x3f000000 0x3f19999a are the float32 nearest 0.1 ... 0.6.
	want := content([]string{"caf\uFFFD", "na\uFFFDve", "ok"}, 2, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
	if diff := cmp.Diff(want, contentOf(v)); diff != "" {
		t.Errorf("content (-want +got):\n%s", diff)
	}
	if got := logs.String(); !strings.Contains(got, "level=WARN") ||
		!strings.Contains(got, "words=2") || strings.Count(got, "\n") != 1 {
		t.Errorf("log = %q, want one warning counting 2 words", got)
	}
}

// hide hides the size of a reader, as a pipe would.
type hide struct{ r io.Reader }

func (h hide) Read(p []byte) (int, error) { return h.r.Read(p) }

// TestReadErrors checks inputs built here, one rule each.
func TestReadErrors(t *testing.T) {
	bin := func(parts ...string) string { return strings.Join(parts, "") }
	one := "\x00\x00\x80\x3f" // 1.0
	nan := "\x00\x00\xc0\x7f" // a quiet NaN
	tests := []struct {
		name      string
		in        string
		format    Format
		hideSize  bool
		want      ParseError
		fragments []string
	}{
		{name: "empty", in: "", want: ParseError{Offset: -1, Err: ErrFormat},
			fragments: []string{"empty"}},
		{name: "neither", in: "hello\n", want: ParseError{Line: 1, Err: ErrFormat},
			fragments: []string{"neither a word2vec header"}},
		{name: "dim 0", in: "3 0\n", want: ParseError{Line: 1, Err: ErrFormat},
			fragments: []string{"dimension 0"}},
		{name: "dim huge", in: "1 9999999\na 1\n", want: ParseError{Line: 1, Err: ErrFormat},
			fragments: []string{"dimension 9999999"}},
		{name: "count huge", in: "99999999999 3\n", want: ParseError{Line: 1, Err: ErrCount},
			fragments: []string{"99999999999"}},
		// 1000 binary entries of dim 2 need at least 1000*(4*2+2) bytes.
		{name: "count beyond size", in: "1000 2\na " + one + one + "\n", format: FormatBinary,
			want:      ParseError{Line: 1, Err: ErrCount},
			fragments: []string{"declares 1000 vectors of dimension 2", "room for at most 1"}},
		// Unknown size: storage grows as entries arrive, the count fails at
		// the end.
		{name: "count beyond stream", in: "2000000000 2\na " + one + one + "\n",
			format: FormatBinary, hideSize: true,
			want:      ParseError{Offset: 24, Err: ErrCount}, // 13 + "a " + 8 + "\n"
			fragments: []string{"ends after 1 entries", "declares 2000000000"}},
		{name: "text nan", in: "2 2\na 1 2\nb nan 1\n",
			want:      ParseError{Line: 3, Offset: 10, Err: ErrNonFinite},
			fragments: []string{"value 1 of \"b\" is NaN"}},
		{name: "text inf", in: "a 1 2\nb 1 -Inf\n",
			want:      ParseError{Line: 2, Offset: 6, Err: ErrNonFinite},
			fragments: []string{"value 2 of \"b\" is -Inf"}},
		{name: "text overflow", in: "1 2\na 1 1e39\n",
			want:      ParseError{Line: 2, Offset: 4, Err: ErrNonFinite},
			fragments: []string{"out of float32 range"}},
		{name: "text not a number", in: "1 2\na 1 x\n",
			want:      ParseError{Line: 2, Offset: 4, Err: ErrFormat},
			fragments: []string{`value 2 of "a" ("x") is not a number`}},
		{name: "binary nan", in: bin("2 1\na ", one, "\nb ", nan, "\n"), format: FormatBinary,
			want:      ParseError{Entry: 2, Offset: 11, Err: ErrNonFinite},
			fragments: []string{"value 1 of \"b\" is NaN"}},
		{name: "text duplicate", in: "3 1\na 1\nb 2\na 3\n",
			want:      ParseError{Line: 4, Offset: 12, Err: ErrDuplicateWord},
			fragments: []string{`"a" already appeared at line 2`}},
		{name: "binary duplicate", in: bin("2 1\na ", one, "\na ", one, "\n"), format: FormatBinary,
			want:      ParseError{Entry: 2, Offset: 11, Err: ErrDuplicateWord},
			fragments: []string{`"a" already appeared at entry 1`}},
		{name: "binary truncated vector", in: bin("1 2\na ", one), format: FormatBinary,
			hideSize: true, want: ParseError{Entry: 1, Offset: 4, Err: ErrFormat},
			fragments: []string{"ends inside the vector of \"a\": 4 of 8 bytes"}},
		// Entry 1 sets the rule "newline after the vector"; entry 2 breaks it.
		{name: "binary newline rule", in: bin("3 1\na ", one, "\nb ", one, "c ", one, "\n"),
			format: FormatBinary, want: ParseError{Entry: 2, Offset: 11, Err: ErrFormat},
			fragments: []string{"no newline follows the vector of \"b\""}},
		{name: "binary trailing data", in: bin("1 1\na ", one, "\nzz"), format: FormatBinary,
			want:      ParseError{Offset: 11, Err: ErrCount},
			fragments: []string{"data follows the 1 entries"}},
		{name: "glove no values", in: "a\n", format: FormatGloVe,
			want:      ParseError{Line: 1, Err: ErrFormat},
			fragments: []string{"holds no values"}},
		{name: "glove ragged", in: "a 1 2\nb 1\n",
			want:      ParseError{Line: 2, Offset: 6, Err: ErrFormat},
			fragments: []string{"2 fields where 3 are due (a word and 2 values)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r io.Reader = strings.NewReader(tt.in)
			if tt.hideSize {
				r = hide{r}
			}
			_, err := Read(r, "in", ReadOptions{Format: tt.format, Logger: quiet})
			tt.want.File = "in"
			checkErr(t, err, tt.want, tt.fragments...)
		})
	}
}

// TestReadText checks the liberties text files take.
func TestReadText(t *testing.T) {
	ab := content([]string{"a", "b"}, 2, 1, 2, 3, -4)
	tests := []struct {
		name string
		in   string
		opt  ReadOptions
		want loaded
	}{
		{"plain", "2 2\na 1 2\nb 3 -4\n", ReadOptions{}, ab},
		{"no final newline", "2 2\na 1 2\nb 3 -4", ReadOptions{}, ab},
		{"crlf", "2 2\r\na 1 2\r\nb 3 -4\r\n", ReadOptions{}, ab},
		{"fastText trailing space", "2 2\na 1 2 \nb 3 -4 \n", ReadOptions{}, ab},
		{"tabs and blank lines", "2 2\n\na\t1\t2\n  \nb 3  -4\n\n", ReadOptions{}, ab},
		{"limit", "3 2\na 1 2\nb 3 -4\nc 5 6\n", ReadOptions{Limit: 2}, ab},
		{"limit ignores the rest", "9 2\na 1 2\nb 3 -4\nbroken\n", ReadOptions{Limit: 2}, ab},
		{"glove limit", "a 1 2\nb 3 -4\nc 5 6\n", ReadOptions{Limit: 2}, ab},
		{"no vectors", "0 5\n", ReadOptions{}, loaded{Words: []string{}, Dim: 5, Bits: []uint32{}}},
		{"non-ASCII word", "1 1\nnaïve 0.5\n", ReadOptions{},
			content([]string{"naïve"}, 1, 0.5)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opt.Logger = quiet
			v, err := Read(strings.NewReader(tt.in), "in", tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, contentOf(v)); diff != "" {
				t.Errorf("content (-want +got):\n%s", diff)
			}
		})
	}
}

// TestReadLongLine reads a text line longer than the read buffer.
func TestReadLongLine(t *testing.T) {
	const dim = 300_000 // "w" then dim times " 0.25": about 1.5 MB
	in := "1 300000\nw" + strings.Repeat(" 0.25", dim) + "\n"
	v, err := Read(strings.NewReader(in), "long", ReadOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if v.Dim != dim || v.Data[0] != 0.25 || v.Data[dim-1] != 0.25 {
		t.Errorf("got dim %d, first %v, last %v; want %d, 0.25, 0.25",
			v.Dim, v.Data[0], v.Data[dim-1], dim)
	}
}

// TestReadGzip reads a gzip-compressed copy of 06b; offsets in errors then
// count decompressed bytes.
func TestReadGzip(t *testing.T) {
	plain, err := os.ReadFile("testdata/06b-w2v-header-read-as-glove.txt")
	if err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	_, _ = zw.Write(plain)
	_ = zw.Close()
	v, err := Read(bytes.NewReader(z.Bytes()), "06b.gz", ReadOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	want, err := Read(bytes.NewReader(plain), "06b", ReadOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(contentOf(want), contentOf(v)); diff != "" {
		t.Errorf("content (-plain +gzip):\n%s", diff)
	}

	z.Reset()
	zw = gzip.NewWriter(&z)
	_, _ = zw.Write([]byte("1 1\na 1\nb 2\n"))
	_ = zw.Close()
	_, err = Read(&z, "x.gz", ReadOptions{Logger: quiet})
	checkErr(t, err, ParseError{File: "x.gz", Line: 3, Offset: 8, Decompressed: true,
		Err: ErrCount}, "(of the decompressed content)")
}

// TestForcedBinaryOnText warns when a forced binary read gets text.
func TestForcedBinaryOnText(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	// "cat 0.1 0.2 0.3\n" happens to split as a 3-byte word, a space and 12
	// bytes, so it loads as binary; the warning says it looks like text.
	_, err := ReadFile("testdata/12b-bom-header.vec", ReadOptions{Format: FormatBinary,
		Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "looks like text") {
		t.Errorf("log = %q, want a warning that the content looks like text", logs.String())
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"auto": FormatAuto, "bin": FormatBinary,
		"binary": FormatBinary, "text": FormatText, "vec": FormatText, "glove": FormatGloVe} {
		got, err := ParseFormat(in)
		if err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseFormat("word2vec"); err == nil {
		t.Error("ParseFormat(word2vec) succeeded, want an error")
	}
}

func TestLookup(t *testing.T) {
	v := &Vectors{Words: []string{"a", "b", "a"}, Dim: 1, Data: []float32{1, 2, 3}}
	for _, tt := range []struct {
		word string
		row  int
		ok   bool
	}{{"a", 0, true}, {"b", 1, true}, {"c", 0, false}} {
		row, ok := v.Lookup(tt.word)
		if row != tt.row || ok != tt.ok {
			t.Errorf("Lookup(%q) = %d, %v; want %d, %v", tt.word, row, ok, tt.row, tt.ok)
		}
	}

	r, err := Read(strings.NewReader("2 1\nx 1\ny 2\n"), "in", ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if row, ok := r.Lookup("y"); row != 1 || !ok {
		t.Errorf("Lookup(y) after Read = %d, %v; want 1, true", row, ok)
	}
}

// TestVocabularyIsNotVectors: a vocabulary file ("word count" lines, as vocab.txt) must not
// load as one-dimensional GloVe vectors under auto-detection.
func TestVocabularyIsNotVectors(t *testing.T) {
	_, err := Read(strings.NewReader("the 70150\nof 41222\nand 30011\n"), "vocab.txt",
		ReadOptions{})
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "vocabulary") {
		t.Fatalf("err = %v, want ErrFormat saying it looks like a vocabulary", err)
	}
	v, err := Read(strings.NewReader("the 0.5\nof 1\n"), "one-dim.txt",
		ReadOptions{Format: FormatGloVe})
	if err != nil || v.Dim != 1 || len(v.Words) != 2 {
		t.Fatalf("forced GloVe of dim 1: %v, %+v", err, v)
	}
}
