package vectors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"unicode/utf8"
)

// minBinaryEntry is the fewest bytes a binary entry takes: a one-byte word,
// its space and the values (the newline is optional).
func minBinaryEntry(dim int64) int64 { return 4*dim + 2 }

// spaceHint is the advice for a word that held a space when written.
const spaceHint = "word2vec binary cannot hold words with white space (the first space " +
	"ends the word): re-export the vectors with words free of white space"

// readBinary reads word2vec binary after the byte-order mark.
func (d *decoder) readBinary() error {
	count, dim, err := d.readHeader(minBinaryEntry)
	if err != nil {
		return err
	}

	// A forced binary read of a text file fails somewhere odd: say why.
	textLike := false
	if d.opt.Format == FormatBinary {
		win, atEOF := d.window()
		textLike = len(bytes.TrimSpace(win)) > 0 && isText(win, uint64(dim), atEOF)
	}

	want := d.want(count)
	d.start(want, dim, minBinaryEntry(int64(dim)))
	raw := make([]byte, 4*dim)
	for e := 1; e <= want; e++ {
		if err := d.binaryEntry(e, count, raw); err != nil {
			return addHint(err, textLike,
				"the content looks like word2vec text: read it with format text or auto")
		}
	}
	if want == count {
		if err := d.binaryEnd(count); err != nil {
			return addHint(err, textLike,
				"the content looks like word2vec text: read it with format text or auto")
		}
	}
	if textLike {
		d.log.Warn("read as word2vec binary as asked, but the content looks like text",
			"file", d.name, "hint", "read it with format text or auto")
	}
	return nil
}

// addHint appends advice to a *ParseError when cond holds.
func addHint(err error, cond bool, hint string) error {
	var pe *ParseError
	if cond && errors.As(err, &pe) {
		pe.Hint += "; " + hint
	}
	return err
}

// binaryEntry reads entry e (1-based) into a new row; raw holds 4*dim bytes.
func (d *decoder) binaryEntry(e, count int, raw []byte) error {
	at := where{entry: e, off: d.off}
	wb, err := d.br.ReadSlice(' ')
	if err != nil {
		return d.binaryWordErr(at, count, wb, err)
	}
	d.off += int64(len(wb))
	word, err := d.word(wb[:len(wb)-1], at)
	if err != nil {
		return d.explainShift(at, wb, err)
	}

	n, err := io.ReadFull(d.br, raw)
	d.off += int64(n)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return d.fail(at, ErrFormat, "the file is truncated, or the header's dimension is wrong",
			"the file ends inside the vector of %q: %d of %d bytes", word, n, len(raw))
	} else if err != nil {
		return d.ioErr(err)
	}

	row := d.grow()
	for j := range row {
		row[j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:]))
	}
	if j := nonFinite(row); j >= 0 {
		return d.fail(at, ErrNonFinite, "repair or retrain the vectors: NaN and infinite "+
			"values are refused", "value %d of %q is %v", j+1, word, row[j])
	}

	if err := d.binaryNewline(at, word, raw); err != nil {
		return err
	}
	d.add(word, at)
	d.prev = at.off
	return nil
}

// binaryWordErr explains a failure to find the space that ends a word.
func (d *decoder) binaryWordErr(at where, count int, wb []byte, err error) error {
	switch {
	case err == bufio.ErrBufferFull:
		return d.fail(at, ErrFormat, "check that the file is word2vec binary",
			"no space within %d bytes, so no word ends there", bufSize)
	case err == io.EOF && len(wb) == 0:
		return d.fail(where{off: d.off}, ErrCount,
			"the file is truncated, or the header's count is wrong",
			"the file ends after %d entries, but the header declares %d", at.entry-1, count)
	case err == io.EOF:
		return d.fail(at, ErrFormat, "the file is truncated",
			"the file ends inside the entry's word (%q)", clip(wb))
	}
	return d.ioErr(err)
}

// binaryNewline consumes the newline that may follow a vector, and checks
// that every entry follows entry 1's rule (a file either has them or not).
func (d *decoder) binaryNewline(at where, word string, raw []byte) error {
	p, err := d.br.Peek(1)
	if len(p) == 0 {
		if err != io.EOF {
			return d.ioErr(err)
		}
		return nil // the end of input is fine after any entry
	}
	nl := p[0] == '\n'
	if nl {
		_, _ = d.br.Discard(1)
		d.off++
	}

	switch {
	case at.entry == 1:
		d.nl = nl
	case d.nl && !nl:
		return d.missingNewline(at, word, raw)
	case !d.nl && nl:
		if p, _ := d.br.Peek(1); len(p) == 0 {
			return nil // a newline at the very end only
		}
		return d.fail(at, ErrFormat, "an earlier word may hold a space, or the file was "+
			"written inconsistently: "+spaceHint,
			"a newline follows the vector of %q, but none followed entry 1's", word)
	}
	return nil
}

// missingNewline explains an entry that lacks the newline entry 1 had.
func (d *decoder) missingNewline(at where, word string, raw []byte) error {
	blob := append([]byte(word), ' ')
	blob = append(blob, raw...)
	ahead, _ := d.br.Peek(min(bufSize, len(raw)+4096))
	blob = append(blob, ahead...)
	if real, ok := realWord(blob, len(word), d.dim); ok {
		return d.fail(at, ErrInvalidWord, spaceHint,
			"the entry's word seems to be %q, which holds a space, so this entry and "+
				"all after it are misaligned", real)
	}
	return d.fail(at, ErrFormat, "the word may hold a space, or the header's dimension "+
		"may be wrong: "+spaceHint,
		"no newline follows the vector of %q, but one followed entry 1's", word)
}

// explainShift turns an invalid word into an error about the previous
// entry when that entry's word, as written, held a space: the bytes after
// the space were read as its vector, and the vector's tail as this word.
func (d *decoder) explainShift(at where, wb []byte, err error) error {
	if at.entry < 2 || !bytes.ContainsAny(wb[:len(wb)-1], asciiSpace) {
		return err
	}
	last := len(d.v.Words) - 1
	prev := d.v.Words[last]

	blob := append([]byte(prev), ' ')
	for _, x := range d.v.Row(last) {
		blob = binary.LittleEndian.AppendUint32(blob, math.Float32bits(x))
	}
	if d.nl {
		blob = append(blob, '\n')
	}
	blob = append(blob, wb...)
	ahead, _ := d.br.Peek(min(bufSize, 4*d.dim+4096))
	blob = append(blob, ahead...)

	real, ok := realWord(blob, len(prev), d.dim)
	if !ok {
		return err
	}
	return d.fail(where{entry: at.entry - 1, off: d.prev}, ErrInvalidWord, spaceHint,
		"the entry's word seems to be %q, which holds a space, so this entry and all "+
			"after it are misaligned", real)
}

// realWord looks in blob, the bytes of an entry whose word was read as its
// first n bytes, for the shape "<word holding spaces> <4*dim bytes>\n" and
// returns that word.
func realWord(blob []byte, n, dim int) (string, bool) {
	for p := n + 1 + 4*dim; p < len(blob); p++ {
		if blob[p] != '\n' {
			continue
		}
		s := p - 4*dim - 1
		w := blob[:s]
		if blob[s] == ' ' && bytes.IndexByte(w, ' ') >= 0 && utf8.Valid(w) &&
			!bytes.ContainsAny(w, "\t\n\v\f\r") {
			return string(w), true
		}
	}
	return "", false
}

// binaryEnd checks that nothing follows the declared entries.
func (d *decoder) binaryEnd(count int) error {
	p, err := d.br.Peek(1)
	if len(p) > 0 {
		return d.fail(where{off: d.off}, ErrCount,
			"the header's count is too small, or the file has trailing bytes: fix the count "+
				"or cut the file", "data follows the %d entries the header declares", count)
	}
	if err != io.EOF {
		return d.ioErr(err)
	}
	return nil
}

// nonFinite returns the index of the first NaN or infinite value, or -1.
func nonFinite(row []float32) int {
	for j, x := range row {
		if x != x || x > math.MaxFloat32 || x < -math.MaxFloat32 {
			return j
		}
	}
	return -1
}
