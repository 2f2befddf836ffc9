package vectors

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// WriteBinary writes v in word2vec binary format, with a newline after each
// vector as word2vec itself writes. It refuses vectors that reading would
// refuse (see Check) before writing anything.
func WriteBinary(w io.Writer, v *Vectors) error {
	if err := v.Check(); err != nil {
		return err
	}
	return encodeBinary(w, v)
}

// WriteText writes v in word2vec text format, each value in the shortest
// form that parses back to the same float32. It refuses vectors that reading
// would refuse (see Check) before writing anything.
func WriteText(w io.Writer, v *Vectors) error {
	if err := v.Check(); err != nil {
		return err
	}
	return encodeText(w, v, true)
}

// WriteFile writes v to path atomically: to a temporary file in the same
// directory, synced, then renamed over path. FormatAuto picks text for
// names ending in .txt or .vec and binary otherwise; FormatGloVe writes text
// without the header.
func WriteFile(path string, v *Vectors, f Format) error {
	if f == FormatAuto {
		f = FormatBinary
		if ext := strings.ToLower(filepath.Ext(path)); ext == ".txt" || ext == ".vec" {
			f = FormatText
		}
	}
	if f < FormatBinary || f > FormatGloVe {
		return fmt.Errorf("write vectors %s: unknown format %d", path, int(f))
	}
	if err := v.Check(); err != nil {
		return fmt.Errorf("write vectors %s: %w", path, err)
	}
	err := writeAtomic(path, func(w io.Writer) error {
		if f == FormatBinary {
			return encodeBinary(w, v)
		}
		return encodeText(w, v, f == FormatText)
	})
	if err != nil {
		return fmt.Errorf("write vectors %s: %w", path, err)
	}
	return nil
}

// writeAtomic runs write on a temporary file beside path and renames it
// into place once written and synced; on failure the temporary file goes.
func writeAtomic(path string, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()

	if err := write(tmp); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	done = true

	// Make the rename itself durable; not every system can sync a directory.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// Check reports what would make v unwritable or unreadable: a dimension
// below 1, a Data length that is not len(Words)*Dim, a word CheckWord
// refuses, a word given twice, a NaN or infinite value. Errors name the
// word's index and wrap ErrInvalidWord, ErrDuplicateWord or ErrNonFinite.
func (v *Vectors) Check() error {
	if v.Dim < 1 {
		return fmt.Errorf("%w: dimension %d: it must be at least 1", ErrFormat, v.Dim)
	}
	if len(v.Data) != len(v.Words)*v.Dim {
		return fmt.Errorf("%w: %d values for %d words of dimension %d, want %d", ErrFormat,
			len(v.Data), len(v.Words), v.Dim, len(v.Words)*v.Dim)
	}
	seen := make(map[string]int, len(v.Words))
	for i, w := range v.Words {
		if err := CheckWord(w); err != nil {
			return fmt.Errorf("word at index %d: %w", i, err)
		}
		if j, dup := seen[w]; dup {
			return fmt.Errorf("word at index %d: %w: %q is also the word at index %d",
				i, ErrDuplicateWord, w, j)
		}
		seen[w] = i
		if j := nonFinite(v.Row(i)); j >= 0 {
			return fmt.Errorf("word at index %d (%q): %w: value %d is %v",
				i, w, ErrNonFinite, j+1, v.Row(i)[j])
		}
	}
	return nil
}

func encodeBinary(w io.Writer, v *Vectors) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	fmt.Fprintf(bw, "%d %d\n", len(v.Words), v.Dim)
	buf := make([]byte, 0, 4*v.Dim+1)
	for i, word := range v.Words {
		_, _ = bw.WriteString(word)
		_ = bw.WriteByte(' ')
		buf = buf[:0]
		for _, x := range v.Row(i) {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(x))
		}
		buf = append(buf, '\n')
		_, _ = bw.Write(buf) // errors stick, Flush reports them
	}
	return bw.Flush()
}

func encodeText(w io.Writer, v *Vectors, header bool) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	if header {
		fmt.Fprintf(bw, "%d %d\n", len(v.Words), v.Dim)
	}
	buf := make([]byte, 0, 16*v.Dim)
	for i, word := range v.Words {
		buf = append(buf[:0], word...)
		for _, x := range v.Row(i) {
			buf = append(buf, ' ')
			buf = strconv.AppendFloat(buf, float64(x), 'g', -1, 32)
		}
		buf = append(buf, '\n')
		_, _ = bw.Write(buf) // errors stick, Flush reports them
	}
	return bw.Flush()
}
