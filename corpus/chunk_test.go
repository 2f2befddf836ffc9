package corpus

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/klauspost/compress/gzip"

	"github.com/skipgrid/skipgrid/shard"
)

func TestChunkBoundaries(t *testing.T) {
	// "ab\ncd\nef" (8 bytes): lines start at 0, 3 and 6. Each chunk reads
	// the lines that start in its range, worked out by hand below.
	path := filepath.Join(t.TempDir(), "f.txt")
	if err := os.WriteFile(path, []byte("ab\ncd\nef"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		start, end int64
		want       [][]string
	}{
		{0, 3, [][]string{{"ab"}}},
		{3, 6, [][]string{{"cd"}}},         // byte 2 is '\n', so cd starts here
		{6, 8, [][]string{{"ef"}}},         // the last line has no newline
		{0, 1, [][]string{{"ab"}}},         // a line runs past End
		{1, 3, nil},                        // ab started before; cd starts at 3
		{2, 8, [][]string{{"cd"}, {"ef"}}}, // the '\n' at 2 ends ab, not ours
		{0, 4, [][]string{{"ab"}, {"cd"}}},
		{4, 6, nil},
		{4, 7, [][]string{{"ef"}}},
		{8, 8, nil},
	}
	for _, tt := range tests {
		r, err := OpenChunk(shard.Chunk{Path: path, Start: tt.start, End: tt.end},
			ReaderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAll(r)
		r.Close()
		if err != nil {
			t.Fatalf("[%d,%d): %v", tt.start, tt.end, err)
		}
		if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("[%d,%d) (-want +got):\n%s", tt.start, tt.end, diff)
		}
	}
}

// randomText makes a corpus file's content: lines of random tokens (mixed
// case, apostrophes, non-ASCII letters and spaces, invalid bytes), empty and
// blank lines, long lines, a BOM at times, and a final newline or not. Each
// non-empty line starts with a letters-only label, so that a line read twice
// or lost shows under both tokenizers.
func randomText(rng *rand.Rand, fileNo int) []byte {
	words := []string{"the", "Cat", "don't", "rock'n'roll", "'tis", "dogs'", "café",
		"\u212Aelvin", "naïve", "x", "ZEBRA", "e-mail", "42", "\xff\xfe", "\u2603"}
	spaces := []string{" ", "  ", "\t", "\r", "\u00a0", "\u3000", " \t "}
	var b strings.Builder
	if rng.IntN(4) == 0 {
		b.WriteString("\uFEFF")
	}
	nLines := rng.IntN(40)
	for i := range nLines {
		switch k := rng.IntN(10); {
		case k == 0: // empty
		case k == 1: // blank
			b.WriteString(spaces[rng.IntN(len(spaces))])
		default:
			fmt.Fprintf(&b, "q%sq%s", letters(fileNo), letters(i))
			n := rng.IntN(12)
			if k == 9 {
				n = 50 + rng.IntN(200) // a long line
			}
			for range n {
				b.WriteString(spaces[rng.IntN(len(spaces))])
				b.WriteString(words[rng.IntN(len(words))])
			}
		}
		if i < nLines-1 || rng.IntN(2) == 0 {
			b.WriteByte('\n')
		}
	}
	return []byte(b.String())
}

// letters spells n in base 26 with the letters a-z.
func letters(n int) string {
	s := string(rune('a' + n%26))
	for n /= 26; n > 0; n /= 26 {
		s = string(rune('a'+n%26)) + s
	}
	return s
}

// writeCorpus writes data to path, as one or more gzip members when gz.
func writeCorpus(t *testing.T, rng *rand.Rand, path string, data []byte, gz bool) {
	t.Helper()
	if gz {
		var buf bytes.Buffer
		rest := data
		for first := true; first || len(rest) > 0; first = false {
			n := len(rest)
			if rng.IntN(2) == 0 {
				n = rng.IntN(len(rest) + 1) // split into several members
			}
			zw := gzip.NewWriter(&buf)
			if _, err := zw.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		data = buf.Bytes()
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestChunksReadEveryLineOnce(t *testing.T) {
	// Property: for random files and chunk sizes, the sentences of all
	// chunks, in chunk order, are those of the whole file (per the oracle),
	// and the chunks' statistics add up to the whole file's.
	rng := rand.New(rand.NewPCG(7, 8))
	dir := t.TempDir()
	for fileNo := range 40 {
		data := randomText(rng, fileNo)
		gz := fileNo%2 == 1
		path := filepath.Join(dir, fmt.Sprintf("f%d", fileNo))
		writeCorpus(t, rng, path, data, gz)

		opt := ReaderOptions{Tokenizer: Tokenizer(1 + fileNo%4/2), MaxSentence: 1 + rng.IntN(30)}
		lim := limits{buffer: []int{16, 17, 64, 4096}[rng.IntN(4)], maxToken: 4096}
		want, wantSt := oracle(data, opt.Tokenizer, opt.MaxSentence)

		size := int64(len(data))
		sizes := []int64{2, 3, 5, 7, 16, 31, 100, 257, size - 1, size, size + 1, 1 << 20}
		if size < 400 {
			sizes = append(sizes, 1)
		}
		for _, cs := range sizes {
			if cs < 1 || size/cs > 400 {
				continue // keep the test fast: at most 400 chunks
			}
			got, st := readChunks(t, path, cs, opt, lim)
			name := fmt.Sprintf("file %d (gzip %t, %d bytes, %v, max %d, buffer %d), chunk "+
				"size %d", fileNo, gz, size, opt.Tokenizer, opt.MaxSentence, lim.buffer, cs)
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("%s: sentences (-whole file +chunks):\n%s", name, diff)
			}
			if diff := cmp.Diff(wantSt, st); diff != "" {
				t.Fatalf("%s: stats (-whole file +chunks):\n%s", name, diff)
			}
		}
	}
}

// readChunks plans path in chunks of cs bytes and reads them all in order.
func readChunks(t *testing.T, path string, cs int64, opt ReaderOptions,
	lim limits) ([][]string, Stats) {
	t.Helper()
	chunks, err := shard.PlanChunks([]string{path}, cs)
	if err != nil {
		t.Fatal(err)
	}
	var all [][]string
	var sum Stats
	for _, c := range chunks {
		r, err := openChunk(c, opt, lim)
		if err != nil {
			t.Fatal(err)
		}
		sents, err := readAll(r)
		if err != nil {
			t.Fatalf("chunk %+v: %v", c, err)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		all = append(all, sents...)
		st := r.Stats()
		sum.Lines += st.Lines
		sum.EmptyLines += st.EmptyLines
		sum.SplitLines += st.SplitLines
		sum.Tokens += st.Tokens
		sum.Bytes += st.Bytes
	}
	return all, sum
}

func TestChunkOfChangedFile(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(9, 10))
	text := []byte("one line\nanother line\n") // 22 bytes
	plain := filepath.Join(dir, "plain.txt")
	writeCorpus(t, rng, plain, text[:9], false) // cut to 9 bytes since planning
	gz := filepath.Join(dir, "text.gz")
	writeCorpus(t, rng, gz, text[:9], true)

	tests := []struct {
		name     string
		c        shard.Chunk
		atOpen   bool
		inErrMsg string
	}{
		{"plain file shorter than End", shard.Chunk{Path: plain, Start: 9, End: 22}, true,
			"has 9 bytes"},
		{"gzip content shorter than Start", shard.Chunk{Path: gz, Gzip: true, Start: 15,
			End: 22}, true, "before the chunk's start 15"},
		{"gzip content shorter than End", shard.Chunk{Path: gz, Gzip: true, Start: 0,
			End: 22}, false, "ends at byte 9, before the chunk's end 22"},
		{"was gzip, now plain", shard.Chunk{Path: plain, Gzip: true, End: 9}, true,
			"gzip=true but the file is now gzip=false"},
		{"was plain, now gzip", shard.Chunk{Path: gz, End: 9}, true,
			"gzip=false but the file is now gzip=true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := OpenChunk(tt.c, ReaderOptions{})
			if !tt.atOpen && err == nil {
				_, err = readAll(r)
				r.Close()
			}
			if !errors.Is(err, ErrFileChanged) {
				t.Fatalf("error = %v, want ErrFileChanged", err)
			}
			if !strings.Contains(err.Error(), tt.inErrMsg) ||
				!strings.Contains(err.Error(), tt.c.Path) {
				t.Errorf("error %q does not mention %q and the path", err, tt.inErrMsg)
			}
		})
	}
}

func TestChunkOfDamagedGzip(t *testing.T) {
	// A gzip member whose CRC-32 (the 4 bytes before the 4-byte length at
	// the end) is flipped: the text decompresses, then the check fails.
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte("some words\nmore words\n")) // 22 bytes
	zw.Close()
	data := buf.Bytes()
	data[len(data)-8] ^= 0xff
	path := filepath.Join(t.TempDir(), "damaged.gz")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}

	r, err := OpenChunk(shard.Chunk{Path: path, Gzip: true, End: 22}, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = readAll(r)
	if !errors.Is(err, gzip.ErrChecksum) || !strings.Contains(err.Error(), path+" at byte") {
		t.Errorf("error %v: want gzip.ErrChecksum, naming the file and the offset", err)
	}
}

func TestOpenChunkBadInput(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.txt")
	if _, err := OpenChunk(shard.Chunk{Path: missing, End: 5},
		ReaderOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want os.ErrNotExist", err)
	}
	for _, c := range []shard.Chunk{{Path: missing, Start: -1, End: 5},
		{Path: missing, Start: 6, End: 5}} {
		_, err := OpenChunk(c, ReaderOptions{})
		if err == nil || !strings.Contains(err.Error(), "not a valid chunk") {
			t.Errorf("chunk [%d,%d): %v, want an invalid-range error", c.Start, c.End, err)
		}
	}
}
