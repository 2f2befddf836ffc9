package corpus

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/skipgrid/skipgrid/shard"
)

// DefaultMaxSentence is the sentence length cap that a zero
// ReaderOptions.MaxSentence stands for.
const DefaultMaxSentence = 10000

// maxMaxSentence bounds ReaderOptions.MaxSentence.
const maxMaxSentence = 1 << 20

// ErrFileChanged is wrapped by the error for a chunk whose file no longer
// matches the plan: it is shorter than the chunk's end, or it was compressed
// or decompressed since. Plan the chunks again.
var ErrFileChanged = errors.New("file changed since its chunks were planned")

// ErrInvalidOptions is wrapped by the error for ReaderOptions that
// Validate refuses.
var ErrInvalidOptions = errors.New("invalid reader options")

// ReaderOptions configures a Reader. The zero value is valid: words
// tokenizer, sentences of at most DefaultMaxSentence tokens.
type ReaderOptions struct {
	// Tokenizer turns lines into tokens; zero means TokenizerWords.
	Tokenizer Tokenizer
	// MaxSentence is the most tokens in one sentence, in [1, 2^20]; a
	// longer line is split. Zero means DefaultMaxSentence.
	MaxSentence int
}

// DefaultReaderOptions returns the options that the zero value stands for,
// spelled out.
func DefaultReaderOptions() ReaderOptions {
	return ReaderOptions{Tokenizer: TokenizerWords, MaxSentence: DefaultMaxSentence}
}

// Validate reports every problem with o at once; each wraps
// ErrInvalidOptions.
func (o ReaderOptions) Validate() error {
	var errs []error
	switch o.Tokenizer {
	case 0, TokenizerWords, TokenizerWhitespace:
	default:
		errs = append(errs, fmt.Errorf("%w: %w %d; use words or whitespace",
			ErrInvalidOptions, ErrUnknownTokenizer, int(o.Tokenizer)))
	}
	if o.MaxSentence < 0 || o.MaxSentence > maxMaxSentence {
		errs = append(errs, fmt.Errorf("%w: max sentence %d is not in [1, %d] (0 means %d)",
			ErrInvalidOptions, o.MaxSentence, maxMaxSentence, DefaultMaxSentence))
	}
	return errors.Join(errs...)
}

// limits are the sizes a Reader works with; tests shrink them.
type limits struct {
	buffer   int // read buffer, at least 16 bytes
	maxToken int // longest token in bytes before it is cut, at least 8
	maxBytes int // sentence bytes at which a sentence ends; 0: from MaxSentence
}

var defaultLimits = limits{buffer: 64 << 10, maxToken: 4096}

// Stats counts what a Reader has read so far.
type Stats struct {
	// Lines counts the lines read, empty ones included.
	Lines uint64
	// EmptyLines counts the lines without a token.
	EmptyLines uint64
	// SplitLines counts the lines that gave more than one sentence.
	SplitLines uint64
	// Tokens counts the tokens returned.
	Tokens uint64
	// Bytes counts the (decompressed) bytes of the lines read, newlines and
	// a skipped byte-order mark included; over all chunks of a file it sums
	// to the file's length.
	Bytes uint64
}

// Reader streams the sentences of one chunk (one line is one sentence) in
// bounded memory, whatever the line length: a line longer than MaxSentence
// tokens is split into several sentences, never cut, and counted in
// Stats.SplitLines. A Reader is not safe for concurrent use.
type Reader struct {
	where       string // "chunk N of FILE" or the stream's name, for errors
	tok         Tokenizer
	maxSentence int
	lim         limits
	closers     []io.Closer

	// The stream. win is the buffered window that br last returned; off
	// bytes of it are consumed, and win[0] is at offset winPos of the
	// (decompressed) content.
	br       *bufio.Reader
	win      []byte
	off      int
	winPos   int64
	rerr     error // error that came with win (io.EOF at the end)
	short    bool  // the last scan stopped inside a rune at the end of win
	checkBOM bool  // the window at offset 0 is still to be checked for a BOM
	end      int64 // lines starting at or after end belong to the next chunk; -1: none
	done     bool  // no line of this chunk is left
	err      error // sticky: returned by every later Next

	// The current line and sentence.
	lineStart  int64 // offset at which the current line's content starts
	lineTokens int
	lineSplit  bool
	state      int      // token state: stOut, stWord, stApos or stTail
	tokStart   int      // where the current token starts in arena
	arena      []byte   // the sentence's tokens, back to back in arena[:used]
	used       int      // bytes of arena in use
	ends       []int    // end of each token in arena, in ends[:nTok]
	nTok       int      // tokens in the sentence
	out        [][]byte // the tokens as returned by Next

	stats Stats
}

// NewReader reads the whole of r as one chunk (from offset 0 to the end of
// the stream); name is used in errors. Closing the Reader does not close r.
// Options that Validate refuses make every Next return the error.
func NewReader(r io.Reader, name string, opt ReaderOptions) *Reader {
	return newReader(r, name, opt, defaultLimits)
}

func newReader(r io.Reader, name string, opt ReaderOptions, lim limits) *Reader {
	rd := newBareReader(name, opt, lim)
	if err := opt.Validate(); err != nil {
		rd.err = fmt.Errorf("read %s: %w", name, err)
		return rd
	}
	rd.br = bufio.NewReaderSize(r, lim.buffer)
	rd.checkBOM = true
	return rd
}

// newBareReader sets up a Reader without a stream, options resolved.
func newBareReader(where string, opt ReaderOptions, lim limits) *Reader {
	r := &Reader{where: where, tok: opt.Tokenizer, maxSentence: opt.MaxSentence, lim: lim,
		end: -1}
	if r.tok == 0 {
		r.tok = TokenizerWords
	}
	if r.maxSentence == 0 {
		r.maxSentence = DefaultMaxSentence
	}
	if r.lim.maxBytes == 0 {
		r.lim.maxBytes = max(64*r.maxSentence, 8<<10)
	}
	return r
}

// Stats returns the counts so far.
func (r *Reader) Stats() Stats { return r.stats }

// Close releases the file of a Reader from OpenChunk. It may be called more
// than once; Next fails after it.
func (r *Reader) Close() error {
	var errs []error
	for i := len(r.closers) - 1; i >= 0; i-- {
		if err := r.closers[i].Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", r.where, err))
		}
	}
	r.closers = nil
	if r.err == nil || r.err == io.EOF {
		r.err = fmt.Errorf("read %s: %w", r.where, fs.ErrClosed)
	}
	return errors.Join(errs...)
}

// Next returns the tokens of the next non-empty sentence. The slices alias
// the Reader's buffers and are valid only until the next call. At the end
// of the chunk it returns io.EOF; any other error names the file and the
// byte offset and ends the reading.
func (r *Reader) Next() ([][]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	r.used, r.nTok = 0, 0

	for !r.done {
		if r.off == len(r.win) || r.short {
			if r.rerr == io.EOF && !r.short {
				return r.finish()
			}
			if r.rerr != nil {
				return nil, r.failRead()
			}
			r.fill()
			continue
		}

		var n int
		var ev event
		if r.tok == TokenizerWhitespace {
			n, ev = r.scanSpace(r.win[r.off:], r.rerr == io.EOF)
		} else {
			n, ev = r.scanWords(r.win[r.off:], r.rerr == io.EOF)
		}
		r.off += n
		r.stats.Bytes += uint64(n)

		switch ev {
		case evShort:
			r.short = true
		case evFull:
			return r.sentence(), nil
		case evLine:
			r.endLine()
			if r.nTok > 0 {
				return r.sentence(), nil
			}
		}
	}

	// The chunk is complete, but a read error that came with the buffered
	// bytes (a gzip checksum that fails at the end of a member) still
	// spoils them.
	if r.rerr != nil && r.rerr != io.EOF {
		return nil, r.failRead()
	}
	r.err = io.EOF
	return nil, io.EOF
}

// pos returns the offset of the next unconsumed byte.
func (r *Reader) pos() int64 { return r.winPos + int64(r.off) }

// fill drops the consumed bytes and buffers as many more as fit.
func (r *Reader) fill() {
	_, _ = r.br.Discard(r.off) // never fails: the bytes are buffered
	r.winPos += int64(r.off)
	r.off, r.short = 0, false
	r.win, r.rerr = r.br.Peek(r.br.Size())

	if r.checkBOM {
		r.checkBOM = false
		if bytes.HasPrefix(r.win, bom) {
			r.off = len(bom)
			r.stats.Bytes += uint64(len(bom))
			r.lineStart = int64(len(bom))
		}
	}
}

// bom is the UTF-8 encoding of U+FEFF, skipped at byte 0 of a file.
var bom = []byte{0xef, 0xbb, 0xbf}

// endLine counts the line just ended by a '\n' and decides whether the
// next line still belongs to the chunk.
func (r *Reader) endLine() {
	r.stats.Lines++
	if r.lineTokens == 0 {
		r.stats.EmptyLines++
	}
	r.lineTokens, r.lineSplit = 0, false
	r.lineStart = r.pos()
	if r.end >= 0 && r.lineStart >= r.end {
		r.done = true
	}
}

// finish ends the chunk at the end of the stream: the last line needs no
// '\n'.
func (r *Reader) finish() ([][]byte, error) {
	if r.state != stOut {
		r.endToken()
	}
	if r.pos() > r.lineStart {
		r.endLine()
	}
	r.done = true

	if r.end >= 0 && r.pos() < r.end {
		return nil, r.fail(fmt.Errorf("read %s: the content ends at byte %d, before the "+
			"chunk's end %d: %w; plan the chunks again", r.where, r.pos(), r.end,
			ErrFileChanged))
	}
	if r.nTok > 0 {
		return r.sentence(), nil
	}
	r.err = io.EOF
	return nil, io.EOF
}

// failRead fails with the error that came with the buffered bytes.
func (r *Reader) failRead() error {
	return r.fail(fmt.Errorf("read %s at byte %d: %w", r.where, r.pos(), r.rerr))
}

// fail makes err the Reader's sticky error and returns it.
func (r *Reader) fail(err error) error {
	r.err = err
	return err
}

// sentence returns the current sentence's tokens, each capped so that an
// append by the caller cannot spill into the next token.
func (r *Reader) sentence() [][]byte {
	r.stats.Tokens += uint64(r.nTok)
	r.out = r.out[:0]
	start := 0
	for _, e := range r.ends[:r.nTok] {
		r.out = append(r.out, r.arena[start:e:e])
		start = e
	}
	return r.out
}

// OpenChunk opens the file of c and returns a Reader of the lines that
// start in [c.Start, c.End) of its decompressed content.
//
// A plain file is read from c.Start. A gzip file is decompressed from the
// start and the bytes before c.Start are discarded. Either way, when
// c.Start > 0, the reading starts one byte early and skips through the next
// '\n': the line that starts exactly at c.Start belongs to this chunk only
// if the byte before it is a '\n'; otherwise it began in an earlier chunk.
func OpenChunk(c shard.Chunk, opt ReaderOptions) (*Reader, error) {
	return openChunk(c, opt, defaultLimits)
}

func openChunk(c shard.Chunk, opt ReaderOptions, lim limits) (*Reader, error) {
	where := fmt.Sprintf("chunk %d of %s", c.ID, c.Path)
	if err := opt.Validate(); err != nil {
		return nil, fmt.Errorf("open %s: %w", where, err)
	}
	if c.Start < 0 || c.End < c.Start {
		return nil, fmt.Errorf("open %s: range [%d, %d) is not a valid chunk; use the "+
			"chunks that shard.PlanChunks returns", where, c.Start, c.End)
	}

	r := newBareReader(where, opt, lim)
	r.end = c.End
	src, err := r.openSource(c)
	if err != nil {
		_ = r.Close()
		return nil, err
	}
	r.br = bufio.NewReaderSize(src, lim.buffer)
	if err := r.seekLineStart(c); err != nil {
		_ = r.Close()
		return nil, err
	}
	return r, nil
}
