package vectors

import (
	"bufio"
	"errors"
	"io"
	"strconv"
)

// minTextEntry is the fewest bytes a text entry takes: a one-byte word and
// dim one-byte values, each after a separator (the last line may lack its
// newline).
func minTextEntry(dim int64) int64 { return 2*dim + 1 }

// binaryHint is the advice when text parsing fails on content that is not
// text.
const binaryHint = "the content after the header is not text: if this is word2vec binary, " +
	"read it with format bin or auto"

// readText reads word2vec text (and fastText .vec) after the byte-order mark.
func (d *decoder) readText() error {
	count, dim, err := d.readHeader(minTextEntry)
	if err != nil {
		return err
	}
	win, atEOF := d.window()
	binaryLike := !isText(win, uint64(dim), atEOF)

	want := d.want(count)
	d.start(want, dim, minTextEntry(int64(dim)))
	for len(d.v.Words) < want {
		line, err := d.nextLine()
		if err == io.EOF {
			return d.fail(whole, ErrCount, "the file is truncated, or fix the header's count",
				"the file holds %d vectors, but the header declares %d", len(d.v.Words), count)
		} else if err != nil {
			return err
		}
		if err := d.textRow(line); err != nil {
			return addHint(err, binaryLike, binaryHint)
		}
	}
	if want < count {
		return nil
	}
	return d.textEnd(count)
}

// textEnd checks that no vector follows the declared ones, and counts them
// when some do.
func (d *decoder) textEnd(count int) error {
	if _, err := d.nextLine(); err == io.EOF {
		return nil
	} else if err != nil {
		return err
	}

	at := where{line: d.line, off: d.lineOff}
	held := count + 1
	for {
		if _, err := d.nextLine(); err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		held++
	}
	return d.fail(at, ErrCount, "fix the header's count, or remove the extra lines",
		"more vectors than the header declares: it declares %d, the file holds %d",
		count, held)
}

// readGloVe reads GloVe text: no header, dimension from the first line.
func (d *decoder) readGloVe() error {
	line, err := d.nextLine()
	if err != nil {
		return d.eofOr(err)
	}
	first := append([]byte(nil), line...) // the look-ahead below reuses the buffer
	at := where{line: d.line, off: d.lineOff}
	_, rest := splitWord(first)
	dim := countFields(rest)
	switch {
	case dim == 0:
		return d.fail(at, ErrFormat, "GloVe rows hold a word and its values",
			"%q holds no values", clip(first))
	case dim > MaxDim:
		return d.fail(at, ErrFormat, "check that this is a vectors file",
			"%d values, beyond the largest dimension supported (%d)", dim, MaxDim)
	}
	if _, hd, ok := parseHeader(first); ok && d.nextFields() == hd+1 {
		return d.fail(at, ErrFormat, "read the file as word2vec text (format text, or auto)",
			"%q looks like a word2vec header (<count> <dim>), not a GloVe row", clip(first))
	}

	want := maxCount
	if d.opt.Limit > 0 {
		want = d.opt.Limit
	}
	d.start(want, dim, 0)
	for line := first; len(d.v.Words) < want; {
		if err := d.textRow(line); err != nil {
			return err
		}
		line, err = d.nextLine()
		if err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
	return nil
}

// nextFields returns the number of fields on the next line, or 0, without
// consuming it.
func (d *decoder) nextFields() uint64 {
	win, _ := d.window()
	line, _, _ := cutLine(win)
	word, rest := splitWord(trimRight(line))
	if len(word) == 0 {
		return 0
	}
	return uint64(1 + countFields(rest))
}

// textRow parses one line "word v1 ... vdim" into a new row.
func (d *decoder) textRow(line []byte) error {
	at := where{line: d.line, off: d.lineOff}
	wb, rest := splitWord(line)
	if len(wb) == 0 {
		return d.fail(at, ErrInvalidWord, "a word made of white space cannot be stored: "+
			"remove the line or fix its word",
			"the word is empty (the line starts with white space)")
	}
	if n := 1 + countFields(rest); n != d.dim+1 {
		hint := "the line is cut short, or the dimension is wrong"
		if n > d.dim+1 {
			hint = "the word may hold a space, which vectors files cannot store (the first " +
				"space ends the word), or the dimension is wrong"
		}
		return d.fail(at, ErrFormat, hint, "%d fields where %d are due (a word and %d %s)",
			n, d.dim+1, d.dim, plural(d.dim, "value", "values"))
	}
	word, err := d.word(wb, at)
	if err != nil {
		return err
	}

	row := d.grow()
	if j, err := parseValues(rest, row); err != nil {
		return d.valueErr(at, word, j, err)
	}
	if j := nonFinite(row); j >= 0 {
		return d.fail(at, ErrNonFinite, "repair or retrain the vectors: NaN and infinite "+
			"values are refused", "value %d of %q is %v", j+1, word, row[j])
	}
	d.add(word, at)
	return nil
}

// valueErr explains why value j (0-based) of a line did not parse.
func (d *decoder) valueErr(at where, word string, j int, err error) error {
	var ne *strconv.NumError
	if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
		return d.fail(at, ErrNonFinite, "repair the value: it must fit a float32",
			"value %d of %q (%q) is out of float32 range", j+1, word, ne.Num)
	}
	num := ""
	if ne != nil {
		num = ne.Num
	}
	return d.fail(at, ErrFormat, "repair the value", "value %d of %q (%q) is not a number",
		j+1, word, clip([]byte(num)))
}

// nextLine returns the next line that is not blank, without trailing white
// space; io.EOF at the end of input. The slice is valid until the next read.
func (d *decoder) nextLine() ([]byte, error) {
	for {
		line, err := d.readLine()
		if err != nil || len(line) > 0 {
			return line, err
		}
	}
}

// readLine returns the next line without trailing white space (its newline,
// a carriage return, spaces and tabs); io.EOF when no bytes are left.
func (d *decoder) readLine() ([]byte, error) {
	d.lineOff = d.off
	b, err := d.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		d.long = append(d.long[:0], b...)
		for err == bufio.ErrBufferFull {
			b, err = d.br.ReadSlice('\n')
			d.long = append(d.long, b...)
		}
		b = d.long
	}
	if err != nil && err != io.EOF {
		return nil, d.ioErr(err)
	}
	if len(b) == 0 {
		return nil, io.EOF
	}
	d.off += int64(len(b))
	d.line++
	return trimRight(b), nil
}

func isSep(c byte) bool { return c == ' ' || c == '\t' }

// trimRight removes trailing spaces, tabs, carriage returns and newlines.
func trimRight(b []byte) []byte {
	for len(b) > 0 {
		switch b[len(b)-1] {
		case ' ', '\t', '\r', '\n':
			b = b[:len(b)-1]
		default:
			return b
		}
	}
	return b
}

// splitWord splits a line at its first separator; the word is empty when
// the line starts with one.
func splitWord(line []byte) (word, rest []byte) {
	for i, c := range line {
		if isSep(c) {
			return line[:i], line[i:]
		}
	}
	return line, nil
}

// countFields counts the runs of non-separator bytes in b.
func countFields(b []byte) int {
	n := 0
	in := false
	for _, c := range b {
		sep := isSep(c)
		if !sep && !in {
			n++
		}
		in = !sep
	}
	return n
}

// parseValues parses the fields of b into row, which has room for all of
// them; it returns the index of the field that failed.
func parseValues(b []byte, row []float32) (int, error) {
	j := 0
	for i := 0; i < len(b); {
		for i < len(b) && isSep(b[i]) {
			i++
		}
		if i == len(b) {
			break
		}
		k := i
		for k < len(b) && !isSep(b[k]) {
			k++
		}
		x, err := parseFloat(b[i:k])
		if err != nil {
			return j, err
		}
		row[j] = x
		j++
		i = k
	}
	return j, nil
}

// parseFloat parses a float32; "NaN" and "Inf" parse, for the caller to
// refuse with the word named. The conversion to string does not allocate for
// short fields, as strconv does not keep its argument.
func parseFloat(b []byte) (float32, error) {
	x, err := strconv.ParseFloat(string(b), 32)
	return float32(x), err
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
