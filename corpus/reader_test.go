package corpus

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"

	"github.com/skipgrid/skipgrid/shard"
)

// countFile reads a testdata file as one chunk and counts its tokens.
func countFile(t *testing.T, name string, opt ReaderOptions) (map[string]int, [][]string,
	Stats) {
	t.Helper()
	path := filepath.Join("testdata", name)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := OpenChunk(shard.Chunk{Path: path, End: st.Size()}, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sents, err := readAll(r)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, tok := range flatten(sents) {
		counts[tok]++
	}
	return counts, sents, r.Stats()
}

func TestCaseNoTrailingNewline(t *testing.T) {
	// testdata/09-no-trailing-newline.txt is "the cat sat\nthe dog ran"
	// (23 bytes): the end of the file ends the second sentence.
	counts, sents, st := countFile(t, "09-no-trailing-newline.txt", ReaderOptions{})
	want := map[string]int{"the": 2, "cat": 1, "sat": 1, "dog": 1, "ran": 1}
	if diff := cmp.Diff(want, counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	wantSents := [][]string{{"the", "cat", "sat"}, {"the", "dog", "ran"}}
	if diff := cmp.Diff(wantSents, sents); diff != "" {
		t.Errorf("sentences (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Stats{Lines: 2, Tokens: 6, Bytes: 23}, st); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

func TestCaseEmptyLines(t *testing.T) {
	// testdata/11-empty-lines.txt (29 bytes) holds five lines: "the cat",
	// "", "   ", "the  dog\t\tran" and "\t". Three have no token.
	for _, tok := range []Tokenizer{TokenizerWords, TokenizerWhitespace} {
		counts, _, st := countFile(t, "11-empty-lines.txt", ReaderOptions{Tokenizer: tok})
		want := map[string]int{"the": 2, "cat": 1, "dog": 1, "ran": 1}
		if diff := cmp.Diff(want, counts); diff != "" {
			t.Errorf("%v: counts (-want +got):\n%s", tok, diff)
		}
		if diff := cmp.Diff(Stats{Lines: 5, EmptyLines: 3, Tokens: 5, Bytes: 29}, st); diff != "" {
			t.Errorf("%v: stats (-want +got):\n%s", tok, diff)
		}
	}
}

func TestCaseBOM(t *testing.T) {
	// testdata/12-bom-corpus.txt is EF BB BF "hello world\nhello there\n"
	// (27 bytes). With the whitespace tokenizer a BOM left in place would
	// show as part of the first token.
	for _, tok := range []Tokenizer{TokenizerWords, TokenizerWhitespace} {
		counts, _, st := countFile(t, "12-bom-corpus.txt", ReaderOptions{Tokenizer: tok})
		want := map[string]int{"hello": 2, "world": 1, "there": 1}
		if diff := cmp.Diff(want, counts); diff != "" {
			t.Errorf("%v: counts (-want +got):\n%s", tok, diff)
		}
		if diff := cmp.Diff(Stats{Lines: 2, Tokens: 4, Bytes: 27}, st); diff != "" {
			t.Errorf("%v: stats (-want +got):\n%s", tok, diff)
		}
	}
}

func TestBOMOnlyAtByteZero(t *testing.T) {
	// "a\n" then a BOM and "b\n" (7 bytes): the second line starts at byte
	// 2, so a chunk from 2 (or a whole read) keeps its BOM as text.
	data := []byte("a\n\xef\xbb\xbfb\n")
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	opt := ReaderOptions{Tokenizer: TokenizerWhitespace}
	for _, c := range []shard.Chunk{{Path: path, End: 7}, {Path: path, Start: 2, End: 7}} {
		r, err := OpenChunk(c, opt)
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAll(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := [][]string{{"a"}, {"\uFEFFb"}}
		if c.Start == 2 {
			want = want[1:]
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("chunk [%d,%d) (-want +got):\n%s", c.Start, c.End, diff)
		}
	}
}

func TestCaseHugeLine(t *testing.T) {
	// testdata/14-huge-single-line.txt is one 72,499-byte line of 25,000
	// tokens without a newline, zebra and yak 3,750 times each. With
	// MaxSentence 1000 it gives 25 sentences of 1000 tokens; by default
	// (10000) it gives 10000, 10000 and 5000. Either way one split line.
	for _, tt := range []struct {
		max  int
		lens []int
	}{
		{1000, []int{1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000,
			1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000}},
		{0, []int{10000, 10000, 5000}},
	} {
		counts, sents, st := countFile(t, "14-huge-single-line.txt",
			ReaderOptions{MaxSentence: tt.max})
		if counts["zebra"] != 3750 || counts["yak"] != 3750 {
			t.Errorf("max %d: zebra %d, yak %d; want 3750 each", tt.max, counts["zebra"],
				counts["yak"])
		}
		var lens []int
		for _, s := range sents {
			lens = append(lens, len(s))
		}
		if diff := cmp.Diff(tt.lens, lens); diff != "" {
			t.Errorf("max %d: sentence lengths (-want +got):\n%s", tt.max, diff)
		}
		want := Stats{Lines: 1, SplitLines: 1, Tokens: 25000, Bytes: 72499}
		if diff := cmp.Diff(want, st); diff != "" {
			t.Errorf("max %d: stats (-want +got):\n%s", tt.max, diff)
		}
	}
}

func TestSplitCountsOncePerLine(t *testing.T) {
	// With MaxSentence 2: "a b" fills one sentence exactly (no split);
	// "a b c d e" gives 3 sentences and one split line; "a b " + "\n" ends
	// on white space after a full sentence (no split, not empty).
	in := "a b\na b c d e\na b \n\n"
	got, st, err := readBytes([]byte(in), ReaderOptions{MaxSentence: 2}, defaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"a", "b"}, {"a", "b"}, {"c", "d"}, {"e"}, {"a", "b"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sentences (-want +got):\n%s", diff)
	}
	wantSt := Stats{Lines: 4, EmptyLines: 1, SplitLines: 1, Tokens: 9, Bytes: 20}
	if diff := cmp.Diff(wantSt, st); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

// wordStream yields "word " repeated up to n bytes without holding them.
type wordStream struct{ left int }

func (w *wordStream) Read(p []byte) (int, error) {
	if w.left == 0 {
		return 0, io.EOF
	}
	n := min(len(p), w.left)
	for i := range n {
		p[i] = "word "[(w.left-i)%5]
	}
	w.left -= n
	return n, nil
}

func TestHugeLineBoundedMemory(t *testing.T) {
	// A 64 MiB line of 5-byte tokens ("word " rotated) and a 16 MiB token:
	// the sentence buffer must stay under its caps (64 bytes per token of
	// MaxSentence, plus one token) whatever the line's length.
	for _, tt := range []struct {
		name string
		src  io.Reader
	}{
		{"many tokens", &wordStream{left: 64 << 20}},
		{"one token", io.LimitReader(repeatByte('x'), 16<<20)},
	} {
		r := NewReader(tt.src, tt.name, ReaderOptions{Tokenizer: TokenizerWhitespace,
			MaxSentence: 1000})
		var maxCap int
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			maxCap = max(maxCap, cap(r.arena))
		}
		// 64*1000 bytes (8 KiB minimum) plus a 4096-byte token; append may
		// round the capacity up, hence the factor of 2.
		if limit := 2 * (64*1000 + 4096); maxCap > limit {
			t.Errorf("%s: sentence buffer grew to %d bytes, want at most %d", tt.name,
				maxCap, limit)
		}
		if st := r.Stats(); st.Lines != 1 || st.SplitLines != 1 {
			t.Errorf("%s: stats %+v, want one split line", tt.name, st)
		}
	}
}

type repeatByte byte

func (b repeatByte) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

func TestNoAllocationPerSentence(t *testing.T) {
	// Reading ten times as many lines must not allocate more: buffers are
	// reused from one sentence to the next.
	line := "The quick brown fox doesn't jump over the lazy dog's kennel.\n"
	allocs := func(lines int) float64 {
		data := []byte(strings.Repeat(line, lines))
		return testing.AllocsPerRun(20, func() {
			r := NewReader(bytes.NewReader(data), "x", ReaderOptions{})
			for {
				if _, err := r.Next(); err != nil {
					break
				}
			}
		})
	}
	if few, many := allocs(100), allocs(1000); many != few {
		t.Errorf("reading 100 lines allocates %.0f times, 1000 lines %.0f times", few, many)
	}
}

func TestReadErrorNamesOffset(t *testing.T) {
	// 40 good bytes, then the stream fails: Next reports the name, the
	// offset and the cause, and keeps reporting it.
	cause := errors.New("disk on fire")
	src := io.MultiReader(strings.NewReader(strings.Repeat("ab cd\n", 6)+"ef gh\n"[:4]),
		iotest.ErrReader(cause))
	r := newReader(src, "corpus.txt", ReaderOptions{}, limits{buffer: 16, maxToken: 4096})
	_, err := readAll(r)
	if !errors.Is(err, cause) || !strings.Contains(err.Error(), "corpus.txt at byte 40") {
		t.Fatalf("error %v: want the cause, the name and byte 40", err)
	}
	if _, again := r.Next(); again != err {
		t.Errorf("second Next = %v, want the same error", again)
	}
}

func TestOptionsValidate(t *testing.T) {
	if err := (ReaderOptions{}).Validate(); err != nil {
		t.Errorf("zero options: %v", err)
	}
	if err := DefaultReaderOptions().Validate(); err != nil {
		t.Errorf("default options: %v", err)
	}
	bad := ReaderOptions{Tokenizer: 9, MaxSentence: -1}
	err := bad.Validate()
	if !errors.Is(err, ErrInvalidOptions) || !errors.Is(err, ErrUnknownTokenizer) ||
		!strings.Contains(err.Error(), "max sentence -1") {
		t.Errorf("Validate(%+v) = %v; want both problems", bad, err)
	}
	if _, err := OpenChunk(shard.Chunk{Path: "x", End: 1}, bad); !errors.Is(err,
		ErrInvalidOptions) {
		t.Errorf("OpenChunk with bad options: %v", err)
	}
	r := NewReader(strings.NewReader("a"), "s", bad)
	if _, err := r.Next(); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("NewReader with bad options: Next = %v", err)
	}
}

func TestCloseThenNext(t *testing.T) {
	path := filepath.Join("testdata", "09-no-trailing-newline.txt")
	r, err := OpenChunk(shard.Chunk{Path: path, End: 23}, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := r.Next(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Next after Close = %v, want fs.ErrClosed", err)
	}
}

func BenchmarkWordsTokenizer(b *testing.B) {
	benchTokenizer(b, TokenizerWords)
}

func BenchmarkWhitespaceTokenizer(b *testing.B) {
	benchTokenizer(b, TokenizerWhitespace)
}

// benchText returns the Lee background corpus (about 360 KB of English news
// text, one document per line) from SKIPGRID_BENCH_TEXT or the shared data
// folder, and skips the benchmark when it is absent.
func benchText(b *testing.B) []byte {
	paths := []string{os.Getenv("SKIPGRID_BENCH_TEXT"),
		"../shared/data/corpus/lee_background.cor",
		"../../shared/data/corpus/lee_background.cor"}
	for _, p := range paths {
		if p == "" {
			continue
		}
		if data, err := os.ReadFile(p); err == nil {
			return data
		}
	}
	b.Skip("lee_background.cor not found; set SKIPGRID_BENCH_TEXT to a text file")
	return nil
}

func benchTokenizer(b *testing.B, tok Tokenizer) {
	data := benchText(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var tokens uint64
	for b.Loop() {
		r := NewReader(bytes.NewReader(data), "bench", ReaderOptions{Tokenizer: tok})
		for {
			if _, err := r.Next(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
		tokens = r.Stats().Tokens
	}
	b.ReportMetric(float64(tokens), "tokens/op")
}
