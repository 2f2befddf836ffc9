package shard

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/bits"
	"os"

	"github.com/klauspost/compress/gzip"
)

// Chunk is a range of one corpus file: every line that starts at a byte
// offset in [Start, End) of the file's decompressed content belongs to the
// chunk, however far past End it runs (Hadoop's rule; no line is lost or read
// twice whatever the boundaries). A line starts at offset 0 and after every
// '\n'. Read chunks with package corpus, which applies the rule.
type Chunk struct {
	// ID numbers the chunks of a plan 0..n-1, in file order, then offset
	// order.
	ID int
	// Path is the file as given to PlanChunks.
	Path string
	// Gzip says the file is gzip-compressed (one or more members); Start and
	// End are then offsets in the decompressed content.
	Gzip bool
	// Start and End bound the offsets at which the chunk's lines start.
	Start, End int64
}

// gzipMagic is the first two bytes of every gzip member (RFC 1952).
var gzipMagic = []byte{0x1f, 0x8b}

// PlanChunks splits files into chunks of about chunkBytes each: a file of s
// bytes gets ceil(s/chunkBytes) chunks of nearly equal size, none larger than
// chunkBytes. Plain files are measured by stat. Gzip files, recognised by the
// magic bytes 1f 8b and not by their name, are measured by decompressing them
// once, all members included. IDs are 0..n-1 in the order of paths, then of
// offsets. Empty files give no chunk.
//
// A missing, unreadable or corrupt file is an error that names it, and wraps
// the cause (errors.Is(err, fs.ErrNotExist) for a missing file). chunkBytes < 1
// is an error wrapping ErrInvalidArgument.
func PlanChunks(paths []string, chunkBytes int64) ([]Chunk, error) {
	if chunkBytes < 1 {
		return nil, fmt.Errorf("%w: chunk size %d bytes must be at least 1",
			ErrInvalidArgument, chunkBytes)
	}

	var chunks []Chunk
	for _, path := range paths {
		isGzip, size, err := measure(path)
		if err != nil {
			return nil, err
		}
		chunks = appendChunks(chunks, path, isGzip, size, chunkBytes)
	}
	return chunks, nil
}

// appendChunks appends the chunks of one file of size bytes to chunks. The
// k-th of n boundaries is floor(size*k/n), computed in 128 bits.
func appendChunks(chunks []Chunk, path string, isGzip bool, size, chunkBytes int64) []Chunk {
	if size <= 0 {
		return chunks
	}

	n := uint64((size-1)/chunkBytes + 1)
	boundary := func(k uint64) int64 {
		hi, lo := bits.Mul64(uint64(size), k)
		q, _ := bits.Div64(hi, lo, n) // hi < n because k <= n and size < 2^63
		return int64(q)
	}
	for k := range n {
		chunks = append(chunks, Chunk{
			ID:    len(chunks),
			Path:  path,
			Gzip:  isGzip,
			Start: boundary(k),
			End:   boundary(k + 1),
		})
	}
	return chunks
}

// measure tells whether path is gzip-compressed and returns the length of
// its (decompressed) content.
func measure(path string) (isGzip bool, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return false, 0, fmt.Errorf("plan chunks: %w", err)
	}
	defer f.Close()

	st, err := f.Stat()
	if err != nil {
		return false, 0, fmt.Errorf("plan chunks: %w", err)
	}
	if st.IsDir() {
		return false, 0, fmt.Errorf("plan chunks: %s is a directory; give corpus files", path)
	}

	br := bufio.NewReaderSize(f, 1<<16)
	head, err := br.Peek(len(gzipMagic))
	if err != nil && err != io.EOF {
		return false, 0, fmt.Errorf("plan chunks: read %s: %w", path, err)
	}
	if !bytes.Equal(head, gzipMagic) {
		return false, st.Size(), nil
	}

	zr, err := gzip.NewReader(br)
	if err != nil {
		return true, 0, fmt.Errorf("plan chunks: %s starts like gzip but its header "+
			"is bad: %w", path, err)
	}
	defer zr.Close()
	n, err := io.Copy(io.Discard, zr)
	if err != nil {
		return true, 0, fmt.Errorf("plan chunks: decompress %s: %w after %d bytes of "+
			"decompressed content; the file is damaged or truncated", path, err, n)
	}
	return true, n, nil
}
