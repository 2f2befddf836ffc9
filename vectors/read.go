package vectors

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"unicode/utf8"
)

// ReadOptions controls reading. The zero value detects the format and reads
// every vector strictly.
type ReadOptions struct {
	// Format of the input; FormatAuto detects it (see the package doc).
	Format Format
	// ReplaceInvalidUTF8 replaces each run of invalid UTF-8 bytes in a word by
	// U+FFFD instead of refusing the file, and logs one warning that counts
	// the words changed.
	ReplaceInvalidUTF8 bool
	// Limit, when positive, reads only the first Limit vectors. The rest of
	// the file is not read, so a header count it fails to meet goes
	// unnoticed.
	Limit int
	// Logger receives warnings; nil means slog.Default().
	Logger *slog.Logger
}

const (
	// MaxDim is the largest dimension a header or first line may declare.
	MaxDim = 1 << 20
	// maxCount bounds a header's count: row ids elsewhere are 32-bit.
	maxCount = 1<<31 - 1
	// bufSize is the read buffer, also the window auto-detection looks at
	// and the longest word a binary entry may hold.
	bufSize = 1 << 20
	// maxPrealloc bounds the values reserved before they arrive, and
	// maxPreallocRows the rows when the input's size is unknown.
	maxPrealloc     = 1 << 22
	maxPreallocRows = 1 << 16
)

// ReadFile reads the vectors file at path.
func ReadFile(path string, opt ReadOptions) (*Vectors, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read vectors: %w", err)
	}
	defer f.Close()

	size := int64(-1)
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	return read(f, path, size, opt)
}

// Read reads vectors from r; name identifies r in errors. When r is an
// *os.File or has a Len method (bytes.Reader, strings.Reader), its size
// bounds what a header may declare.
func Read(r io.Reader, name string, opt ReadOptions) (*Vectors, error) {
	return read(r, name, sizeHint(r), opt)
}

// sizeHint returns the bytes left in r, or -1 when unknown.
func sizeHint(r io.Reader) int64 {
	switch r := r.(type) {
	case interface{ Len() int }:
		return int64(r.Len())
	case *os.File:
		st, err := r.Stat()
		if err != nil || !st.Mode().IsRegular() {
			return -1
		}
		pos, err := r.Seek(0, io.SeekCurrent)
		if err != nil {
			return -1
		}
		return st.Size() - pos
	}
	return -1
}

func read(r io.Reader, name string, size int64, opt ReadOptions) (*Vectors, error) {
	if opt.Format < FormatAuto || opt.Format > FormatGloVe {
		return nil, fmt.Errorf("read vectors %s: unknown format %d", name, int(opt.Format))
	}
	if opt.Limit < 0 {
		return nil, fmt.Errorf("read vectors %s: limit %d is negative", name, opt.Limit)
	}
	d := &decoder{name: name, size: size, opt: opt, log: opt.Logger}
	if d.log == nil {
		d.log = slog.Default()
	}

	// Open the stream: gzip, byte-order mark, emptiness.
	if err := d.open(r); err != nil {
		return nil, err
	}

	// Pick the format and decode.
	format := opt.Format
	if format == FormatAuto {
		f, err := d.detect()
		if err != nil {
			return nil, err
		}
		format = f
	}
	var err error
	switch format {
	case FormatBinary:
		err = d.readBinary()
	case FormatText:
		err = d.readText()
	case FormatGloVe:
		err = d.readGloVe()
	}
	if err != nil {
		return nil, err
	}

	if d.replaced > 0 {
		d.log.Warn("replaced invalid UTF-8 in words", "file", name, "words", d.replaced)
	}
	d.v.setIndex(d.index)
	return d.v, nil
}

// decoder holds the state of one read.
type decoder struct {
	br       *bufio.Reader
	name     string
	size     int64 // bytes in the input, -1 when unknown
	gzip     bool
	opt      ReadOptions
	log      *slog.Logger
	off      int64 // bytes consumed, including a byte-order mark
	line     int   // lines consumed
	lineOff  int64 // offset of the last line read
	long     []byte
	dim      int
	rows     int // the most rows expected
	v        *Vectors
	index    map[string]int
	lines    []int32 // line of each row (text formats), for duplicate errors
	replaced int     // words whose invalid UTF-8 was replaced
	nl       bool    // binary: entry 1 was followed by a newline
	prev     int64   // binary: offset of the previous entry
}

// where is a position in the input.
type where struct {
	line, entry int
	off         int64
}

// fail builds a *ParseError at position at.
func (d *decoder) fail(at where, sentinel error, hint, format string, args ...any) error {
	return &ParseError{File: d.name, Line: at.line, Entry: at.entry, Offset: at.off,
		Decompressed: d.gzip, Msg: fmt.Sprintf(format, args...), Hint: hint, Err: sentinel}
}

// whole is the position used for errors about the whole file.
var whole = where{off: -1}

// ioErr wraps an error of the underlying reader.
func (d *decoder) ioErr(err error) error {
	return fmt.Errorf("%s: read at byte offset %d: %w", d.name, d.off, err)
}

var bom = []byte{0xef, 0xbb, 0xbf}

// open sets up buffering, undoes gzip and skips a byte-order mark.
func (d *decoder) open(r io.Reader) error {
	br := bufio.NewReaderSize(r, bufSize)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return d.fail(whole, ErrFormat, "the file may be damaged: recompress it",
				"unreadable gzip header: %v", err)
		}
		br = bufio.NewReaderSize(zr, bufSize)
		d.size = -1
		d.gzip = true
	}
	d.br = br

	if p, _ := br.Peek(len(bom)); bytes.Equal(p, bom) {
		_, _ = br.Discard(len(bom))
		d.off = int64(len(bom))
	}
	if _, err := br.Peek(1); err == io.EOF {
		return d.fail(whole, ErrFormat, "give a vectors file that holds vectors",
			"the file is empty")
	} else if err != nil {
		return d.ioErr(err)
	}
	return nil
}

// window returns up to bufSize bytes ahead without consuming them, and
// whether they reach the end of the input.
func (d *decoder) window() ([]byte, bool) {
	p, err := d.br.Peek(bufSize)
	return p, err != nil
}

// detect picks the format from the first line and, after a header, from
// whether the content is text.
func (d *decoder) detect() (Format, error) {
	win, atEOF := d.window()
	first, rest, complete := cutLine(win)
	first = trimRight(first)
	if _, dim, ok := parseHeader(first); ok {
		if !complete || isText(rest, dim, atEOF) {
			return FormatText, nil
		}
		return FormatBinary, nil
	}
	if f := bytes.Fields(first); len(f) == 2 && isCount(f[1]) {
		// "word 70150": one integer per word is a vocabulary (skipgrid's vocab.txt,
		// word2vec's -save-vocab), not vectors of dimension 1.
		return 0, d.fail(where{line: 1, off: d.off}, ErrFormat,
			"give the vectors file (vectors.bin or vectors.txt), not the vocabulary; force "+
				"--format glove if this really is one-dimensional GloVe",
			"%q looks like a vocabulary file (a word and its count)", clip(first))
	}
	if looksLikeRow(first) {
		return FormatGloVe, nil
	}
	return 0, d.fail(where{line: 1, off: d.off}, ErrFormat,
		"check that this is a vectors file (word2vec binary or text, fastText .vec, GloVe)",
		"%q is neither a word2vec header (\"<count> <dim>\") nor a GloVe row "+
			"(a word and its values)", clip(first))
}

// cutLine splits b after its first newline; complete reports whether there
// was one.
func cutLine(b []byte) (line, rest []byte, complete bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil, false
	}
	return b[:i], b[i+1:], true
}

// isText reports whether b, the bytes after a header of dimension dim, read
// as vectors text: valid UTF-8 without NUL bytes and, unless blank, with a
// line of dim+1 fields among its first 64 lines. Other control bytes are
// allowed, since words may hold them. Only complete lines count unless atEOF;
// a first line longer than b is judged by its bytes alone.
func isText(b []byte, dim uint64, atEOF bool) bool {
	if !atEOF {
		i := bytes.LastIndexByte(b, '\n')
		if i < 0 {
			return plainUTF8(cutPartialRune(b))
		}
		b = b[:i+1]
	}
	if !plainUTF8(b) {
		return false
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return true
	}
	for n := 0; n < 64 && len(b) > 0; n++ {
		line, rest, _ := cutLine(b)
		b = rest
		word, values := splitWord(trimRight(line))
		if len(word) > 0 && uint64(countFields(values)) == dim {
			return true
		}
	}
	return false
}

// plainUTF8 reports whether b is valid UTF-8 without NUL bytes.
func plainUTF8(b []byte) bool {
	return bytes.IndexByte(b, 0) < 0 && utf8.Valid(b)
}

// cutPartialRune drops an incomplete rune at the end of b.
func cutPartialRune(b []byte) []byte {
	i := len(b) - 1
	for i > 0 && len(b)-i < utf8.UTFMax && !utf8.RuneStart(b[i]) {
		i--
	}
	if i >= 0 && !utf8.FullRune(b[i:]) {
		return b[:i]
	}
	return b
}

// isCount reports whether b is a plain decimal count such as a vocabulary file holds.
func isCount(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// looksLikeRow reports whether line is a word followed by at least one
// number, as a GloVe row is.
func looksLikeRow(line []byte) bool {
	f := bytes.Fields(line)
	return len(f) >= 2 && allNumbers(f[1:])
}

func allNumbers(fields [][]byte) bool {
	for _, f := range fields {
		if _, err := parseFloat(f); err != nil {
			return false
		}
	}
	return true
}

// parseHeader reports whether line is exactly two unsigned decimal integers.
// A number too large for uint64 reads as the largest uint64, which the
// bounds checks then refuse.
func parseHeader(line []byte) (count, dim uint64, ok bool) {
	f := bytes.Fields(line)
	if len(f) != 2 {
		return 0, 0, false
	}
	count, ok1 := parseUint(f[0])
	dim, ok2 := parseUint(f[1])
	return count, dim, ok1 && ok2
}

func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > (1<<64-1-9)/10 {
			n = 1<<64 - 1
			continue
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// readHeader reads and checks "<count> <dim>". minEntry is the fewest bytes
// one entry can take in the format, used to bound count by the file size.
func (d *decoder) readHeader(minEntry func(dim int64) int64) (count, dim int, err error) {
	line, err := d.readLine()
	if err != nil {
		return 0, 0, d.eofOr(err)
	}
	at := where{line: d.line, off: d.lineOff}
	c, dm, ok := parseHeader(line)
	if !ok {
		hint := "give the header \"<count> <dim>\", or pass the right format"
		msg := fmt.Sprintf("%q is not a word2vec header (\"<count> <dim>\")", clip(line))
		if looksLikeRow(line) {
			msg += ": it looks like GloVe (a word and its values, no header)"
			hint = "read the file as GloVe (format glove, or auto)"
		}
		return 0, 0, d.fail(at, ErrFormat, hint, "%s", msg)
	}

	switch {
	case dm == 0:
		return 0, 0, d.fail(at, ErrFormat, "fix the header: the dimension must be at least 1",
			"the header declares dimension 0")
	case dm > MaxDim:
		return 0, 0, d.fail(at, ErrFormat, "check the header; this may not be a vectors file",
			"the header declares dimension %d, beyond the largest supported (%d)", dm, MaxDim)
	case c > maxCount:
		return 0, 0, d.fail(at, ErrCount, "check the header; this may not be a vectors file",
			"the header declares %d vectors, beyond the largest supported (%d)", c, maxCount)
	}

	// Check the count against the size, unless a limit means the count
	// will not be checked.
	count, dim = int(c), int(dm)
	if d.size >= 0 && count > 0 && d.want(count) == count {
		left, need := d.size-d.off, minEntry(int64(dim))
		if int64(count) > left/need {
			return 0, 0, d.fail(at, ErrCount,
				"the file is truncated, or the header's count or dimension is wrong",
				"the header declares %d vectors of dimension %d, but the %d bytes after it "+
					"have room for at most %d", count, dim, left, left/need)
		}
	}
	return count, dim, nil
}

// eofOr turns a premature end of input into a format error.
func (d *decoder) eofOr(err error) error {
	if err == io.EOF {
		return d.fail(whole, ErrFormat, "the file is truncated", "the file ends too early")
	}
	return err
}

// want returns how many vectors to read given the header's count.
func (d *decoder) want(count int) int {
	if d.opt.Limit > 0 && d.opt.Limit < count {
		return d.opt.Limit
	}
	return count
}

// start prepares storage for up to rows vectors of dimension dim. With
// minEntry > 0 (a header gave rows) it reserves no more than the input can
// hold when its size is known; otherwise, or without a size, a bounded
// amount. grow doubles from there, never past rows.
func (d *decoder) start(rows, dim int, minEntry int64) {
	d.dim = dim
	d.rows = rows
	reserve := min(rows, maxPreallocRows, maxPrealloc/dim)
	if d.size >= 0 && minEntry > 0 {
		reserve = int(min(int64(rows), (d.size-d.off)/minEntry+1))
	}
	d.v = &Vectors{Dim: dim, Words: make([]string, 0, reserve),
		Data: make([]float32, 0, reserve*dim)}
	d.index = make(map[string]int, reserve)
}

// grow appends a row of zeros and returns it.
func (d *decoder) grow() []float32 {
	n := len(d.v.Data)
	if n+d.dim > cap(d.v.Data) {
		rows := min(max(2*cap(d.v.Data)/d.dim, 16), d.rows)
		bigger := make([]float32, n, max(rows*d.dim, n+d.dim))
		copy(bigger, d.v.Data)
		d.v.Data = bigger
	}
	d.v.Data = d.v.Data[:n+d.dim]
	return d.v.Data[n:]
}

// word checks the bytes of a word and returns it as a string.
func (d *decoder) word(b []byte, at where) (string, error) {
	if len(b) == 0 {
		return "", d.fail(at, ErrInvalidWord, "remove the entry or give it a word",
			"the word is empty")
	}
	if i := indexSpace(b); i >= 0 {
		return "", d.fail(at, ErrInvalidWord,
			"vectors files cannot hold words with white space: re-export them without such words",
			"the word %q holds white space (%q at byte %d)", clip(b), b[i], i)
	}

	var s string
	if utf8.Valid(b) {
		s = string(b)
	} else {
		if !d.opt.ReplaceInvalidUTF8 {
			return "", d.fail(at, ErrInvalidWord,
				"convert the file to UTF-8, or read it with the option that replaces "+
					"invalid bytes (--replace-invalid-utf8)",
				"the word %q is not valid UTF-8", clip(b))
		}
		s = strings.ToValidUTF8(string(b), "\uFFFD")
		d.replaced++
	}

	if j, dup := d.index[s]; dup {
		first := fmt.Sprintf("entry %d", j+1)
		if d.lines != nil {
			first = fmt.Sprintf("line %d", d.lines[j])
		}
		return "", d.fail(at, ErrDuplicateWord, "remove one of the two",
			"the word %q already appeared at %s", s, first)
	}
	return s, nil
}

// add records the word of the row last grown.
func (d *decoder) add(word string, at where) {
	d.index[word] = len(d.v.Words)
	d.v.Words = append(d.v.Words, word)
	if d.lines != nil || at.line > 0 {
		d.lines = append(d.lines, int32(at.line))
	}
}

// indexSpace returns the index of the first ASCII white space byte in b, or
// -1.
func indexSpace(b []byte) int {
	for i, c := range b {
		if c <= ' ' && (c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r') {
			return i
		}
	}
	return -1
}

// clip shortens b for messages.
func clip(b []byte) string {
	const max = 60
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}
