package vocab

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// countText counts the strings.Fields tokens of text, in order.
func countText(text string) *Counter {
	c := NewCounter()
	for _, tok := range strings.Fields(text) {
		c.Add([]byte(tok))
	}
	return c
}

func readCase(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// smallText has counts c:5, a:3, b:3, d:1 (counted by hand), added in an order where b comes
// before a, so a correct build must reorder the a/b tie by bytes.
const smallText = "c b a c d b a c c b c a"

func TestBuildOrder(t *testing.T) {
	tests := []struct {
		name       string
		minCount   uint64
		maxVocab   int
		wantWords  []string
		wantCounts []uint64
		wantTotal  uint64
	}{
		// All words: count descending, the a/b tie by bytes. Total 5+3+3+1 = 12.
		{"all", 1, 0, []string{"c", "a", "b", "d"}, []uint64{5, 3, 3, 1}, 12},
		// min count 0 keeps everything too (no word has count 0).
		{"min count 0", 0, 0, []string{"c", "a", "b", "d"}, []uint64{5, 3, 3, 1}, 12},
		// min count 3 drops d (count 1). Total 11.
		{"min count 3", 3, 0, []string{"c", "a", "b"}, []uint64{5, 3, 3}, 11},
		// min count 4 keeps only c.
		{"min count 4", 4, 0, []string{"c"}, []uint64{5}, 5},
		// A cap inside the tie keeps the byte-smaller word: c, a. Total 8.
		{"max vocab 2", 1, 2, []string{"c", "a"}, []uint64{5, 3}, 8},
		{"max vocab 3", 1, 3, []string{"c", "a", "b"}, []uint64{5, 3, 3}, 11},
		// A cap above the size changes nothing.
		{"max vocab 10", 1, 10, []string{"c", "a", "b", "d"}, []uint64{5, 3, 3, 1}, 12},
		// min count and cap together: min count 2 leaves c, a, b; the cap keeps one.
		{"both", 2, 1, []string{"c"}, []uint64{5}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Build(countText(smallText), tt.minCount, tt.maxVocab)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantWords, v.Words); diff != "" {
				t.Errorf("words (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantCounts, v.Counts); diff != "" {
				t.Errorf("counts (-want +got):\n%s", diff)
			}
			if v.Len() != len(tt.wantWords) {
				t.Errorf("Len() = %d, want %d", v.Len(), len(tt.wantWords))
			}
			if v.TrainWords() != tt.wantTotal {
				t.Errorf("TrainWords() = %d, want %d", v.TrainWords(), tt.wantTotal)
			}
			for i, w := range tt.wantWords {
				id, ok := v.ID([]byte(w))
				if !ok || id != int32(i) {
					t.Errorf("ID(%q) = %d, %v; want %d, true", w, id, ok, i)
				}
			}
		})
	}
}

func TestBuildNegativeMaxVocab(t *testing.T) {
	if _, err := Build(countText(smallText), 1, -1); err == nil {
		t.Fatal("Build with max vocab -1 succeeded, want an error")
	}
}

// Case 15: ten distinct words, each once. With min count 5 nothing is left; the error must say
// how many distinct words there were (10), the highest count (1) and how to fix it.
func TestBuildMinCountEmpty(t *testing.T) {
	c := countText(readCase(t, "15-min-count-empty.txt"))
	if c.Len() != 10 {
		t.Fatalf("counter holds %d distinct words, want 10 (the case file's words)", c.Len())
	}

	v, err := Build(c, 5, 0)
	if !errors.Is(err, ErrEmpty) {
		t.Fatalf("Build = %v, %v; want ErrEmpty", v, err)
	}
	for _, want := range []string{"min count 5", "10 distinct words", "highest count is 1",
		"lower --min-count to 1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestBuildNoTokens(t *testing.T) {
	_, err := Build(NewCounter(), 1, 0)
	if !errors.Is(err, ErrEmpty) || !strings.Contains(err.Error(), "no token") {
		t.Fatalf("Build(empty counter) = %v; want ErrEmpty saying the corpus holds no token", err)
	}
}

// Case 29: 20 words w00..w19, each 3 times (60 tokens on 6 lines). With all counts equal the
// order is by bytes alone, so the vocabulary is w00, w01, ..., w19 whatever order the tokens
// are added in.
func TestBuildTiesIndependentOfOrder(t *testing.T) {
	toks := strings.Fields(readCase(t, "29-ties-corpus.txt"))
	if len(toks) != 60 {
		t.Fatalf("case file has %d tokens, want 60", len(toks))
	}
	var wantWords []string
	var wantCounts []uint64
	for i := range 20 {
		wantWords = append(wantWords, fmt.Sprintf("w%02d", i))
		wantCounts = append(wantCounts, 3)
	}

	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 29))
		shuffled := slices.Clone(toks)
		rng.Shuffle(len(shuffled), func(i, j int) {
			shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
		})

		// Alternate Add and AddN so both paths are covered.
		c := NewCounter()
		for i, tok := range shuffled {
			if i%2 == 0 {
				c.Add([]byte(tok))
			} else {
				c.AddN(tok, 1)
			}
		}
		v, err := Build(c, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(wantWords, v.Words); diff != "" {
			t.Errorf("seed %d: words (-want +got):\n%s", seed, diff)
		}
		if diff := cmp.Diff(wantCounts, v.Counts); diff != "" {
			t.Errorf("seed %d: counts (-want +got):\n%s", seed, diff)
		}
	}
}

func TestCounterSortedAndAddN(t *testing.T) {
	c := countText(smallText)
	c.AddN("a", 2)
	c.AddN("e", 4)
	c.AddN("f", 0) // no effect

	// By bytes: a 3+2, b 3, c 5, d 1, e 4.
	words, counts := c.Sorted()
	if diff := cmp.Diff([]string{"a", "b", "c", "d", "e"}, words); diff != "" {
		t.Errorf("words (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]uint64{5, 3, 5, 1, 4}, counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if c.Len() != 5 {
		t.Errorf("Len() = %d, want 5", c.Len())
	}
}

func TestCounterSaturates(t *testing.T) {
	c := NewCounter()
	c.AddN("x", math.MaxUint64-1)
	c.Add([]byte("x"))
	c.Add([]byte("x")) // would wrap to 0
	_, counts := c.Sorted()
	if counts[0] != math.MaxUint64 {
		t.Errorf("count = %d, want the saturated %d", counts[0], uint64(math.MaxUint64))
	}

	// Two saturated words sum past 64 bits: Build must refuse rather than wrap TrainWords.
	c.AddN("y", math.MaxUint64)
	if _, err := Build(c, 1, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("Build with overflowing total = %v, want ErrInvalid", err)
	}
}

func TestNew(t *testing.T) {
	v, err := New([]string{"c", "a", "b", "d"}, []uint64{5, 3, 3, 1})
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := v.ID([]byte("b")); !ok || id != 2 {
		t.Errorf("ID(b) = %d, %v; want 2, true", id, ok)
	}
	if _, ok := v.ID([]byte("zz")); ok {
		t.Error("ID(zz) found a word that is not in the vocabulary")
	}
	if v.TrainWords() != 12 {
		t.Errorf("TrainWords() = %d, want 5+3+3+1 = 12", v.TrainWords())
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name   string
		words  []string
		counts []uint64
		want   error
		msg    string
	}{
		{"length mismatch", []string{"a", "b"}, []uint64{2}, ErrInvalid, "2 words but 1 counts"},
		{"empty", nil, nil, ErrEmpty, "no word"},
		{"count ascending", []string{"a", "b"}, []uint64{1, 2}, ErrInvalid, "entry 1"},
		{"tie not by bytes", []string{"b", "a"}, []uint64{2, 2}, ErrInvalid, "entry 1"},
		{"adjacent duplicate", []string{"a", "a"}, []uint64{2, 2}, ErrInvalid, "entry 1"},
		// In order by count, but a repeats with another count.
		{"distant duplicate", []string{"a", "b", "a"}, []uint64{5, 3, 1}, ErrInvalid,
			"entry 2 (\"a\") repeats entry 0"},
		{"zero count", []string{"a", "b"}, []uint64{2, 0}, ErrInvalid, "count is 0"},
		{"empty word", []string{"a", ""}, []uint64{2, 1}, ErrInvalid, "empty word"},
		{"space", []string{"new york"}, []uint64{1}, ErrInvalid, "white space at byte 3"},
		{"bad utf-8", []string{"caf\xc3"}, []uint64{1}, ErrInvalid, "invalid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := New(tt.words, tt.counts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("New = %v, %v; want %v", v, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
		})
	}
}

func TestNoAllocations(t *testing.T) {
	v, err := Build(countText(smallText), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	known, unknown := []byte("b"), []byte("zebra")
	if n := testing.AllocsPerRun(100, func() {
		v.ID(known)
		v.ID(unknown)
	}); n != 0 {
		t.Errorf("ID allocates %v times per call, want 0", n)
	}

	c := countText(smallText)
	if n := testing.AllocsPerRun(100, func() { c.Add(known) }); n != 0 {
		t.Errorf("Add of a known word allocates %v times per call, want 0", n)
	}
}

func TestWriteText(t *testing.T) {
	v, err := Build(countText(smallText), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := v.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("c 5\na 3\nb 3\nd 1\n", buf.String()); diff != "" {
		t.Errorf("text (-want +got):\n%s", diff)
	}
}

// FuzzNew feeds New lists built from arbitrary bytes: it must never panic, and whatever it
// accepts must index every word at its own position.
func FuzzNew(f *testing.F) {
	f.Add("c\na\nb\nd", uint64(5), uint64(3))
	f.Add("a\na", uint64(2), uint64(2))
	f.Add("new york\n", uint64(1), uint64(0))
	f.Fuzz(func(t *testing.T, lines string, hi, step uint64) {
		words := strings.Split(lines, "\n")
		counts := make([]uint64, len(words))
		for i := range counts {
			counts[i] = hi - uint64(i)*step
		}
		v, err := New(words, counts)
		if err != nil {
			return
		}
		for i, w := range words {
			if id, ok := v.ID([]byte(w)); !ok || id != int32(i) {
				t.Fatalf("ID(%q) = %d, %v; want %d", w, id, ok, i)
			}
		}
	})
}
