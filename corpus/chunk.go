package corpus

import (
	"bufio"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/gzip"

	"github.com/skipgrid/skipgrid/shard"
)

// openSource opens the file of c and returns its content positioned at
// c.Start-1 (or 0), checking that the file still matches the plan.
func (r *Reader) openSource(c shard.Chunk) (io.Reader, error) {
	f, err := os.Open(c.Path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", r.where, err)
	}
	r.closers = append(r.closers, f)

	var head [2]byte
	n, err := f.ReadAt(head[:], 0)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("open %s: %w", r.where, err)
	}
	if isGzip := n == 2 && head == [2]byte{0x1f, 0x8b}; isGzip != c.Gzip {
		return nil, fmt.Errorf("open %s: the chunk was planned with gzip=%t but the file "+
			"is now gzip=%t: %w", r.where, c.Gzip, isGzip, ErrFileChanged)
	}
	skip := max(c.Start-1, 0)

	if !c.Gzip {
		st, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", r.where, err)
		}
		if st.Size() < c.End {
			return nil, fmt.Errorf("open %s: the file has %d bytes, fewer than the chunk's "+
				"end %d: %w", r.where, st.Size(), c.End, ErrFileChanged)
		}
		if _, err := f.Seek(skip, io.SeekStart); err != nil {
			return nil, fmt.Errorf("open %s: seek to byte %d: %w", r.where, skip, err)
		}
		return f, nil
	}

	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("open %s: gzip header: %w", r.where, err)
	}
	r.closers = append(r.closers, zr)

	// TODO(skipgrid): decompress from a seek index instead of discarding,
	// because reaching chunk k of a gzip file now costs decompressing all k
	// chunks before it (quadratic in a file's chunk count). An index would
	// record, every few MiB of output, the input bit offset and the last 32
	// KiB of output (as zlib's zran does); klauspost/compress/flate does not
	// expose its bit position or accept a preset window, so it needs an
	// inflater of our own, and a place beside the plan to keep the index.
	if got, err := io.CopyN(io.Discard, zr, skip); err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("open %s: the content ends at byte %d, before the "+
				"chunk's start %d: %w", r.where, got, c.Start, ErrFileChanged)
		}
		return nil, fmt.Errorf("open %s: decompress up to byte %d: %w", r.where, skip, err)
	}
	return zr, nil
}

// seekLineStart moves the stream of chunk c to its first line: byte 0, or
// the byte after the first '\n' at or after c.Start-1.
func (r *Reader) seekLineStart(c shard.Chunk) error {
	if c.Start == 0 {
		r.checkBOM = true
		r.done = c.End <= 0
		return nil
	}

	r.winPos = c.Start - 1
	for {
		part, err := r.br.ReadSlice('\n')
		r.winPos += int64(len(part))
		if err == nil {
			break
		}
		if err == io.EOF {
			r.rerr = io.EOF // Next ends the chunk, checking its length
			break
		}
		if err != bufio.ErrBufferFull {
			return fmt.Errorf("open %s: find the first line after byte %d: %w", r.where,
				c.Start-1, err)
		}
	}
	r.lineStart = r.winPos
	r.done = r.winPos >= c.End
	return nil
}
