// Package vocab counts words and turns the counts into the final vocabulary of a job.
//
// # Model
//
// Counting happens in pieces: every worker counts the tokens of its chunks with a Counter and
// sends the counts to the coordinator, which merges them into one Counter with AddN. Build then
// keeps the words that occur at least min-count times, orders them and assigns row ids: row id
// i is Words[i]. The order is by count descending, then by the word's bytes ascending, so the
// same counts give the same vocabulary in every process whatever order words were added in
// (never map order).
//
// Workers receive the vocabulary as two lists and rebuild it with New, which checks that the
// lists are a valid vocabulary (same lengths, the order above, no duplicates, no empty words or
// words with white space or invalid UTF-8).
//
// # What callers must do
//
//  1. Use a Counter from one goroutine at a time; it has no lock.
//  2. Treat a Vocab as read-only once built: its fields are exported for reading, and changing
//     them breaks ID. A Vocab is safe for concurrent readers.
package vocab

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"unicode/utf8"
)

// ErrEmpty reports that no word is left in the vocabulary after min-count and max-vocab.
var ErrEmpty = errors.New("vocabulary is empty")

// ErrInvalid reports lists that do not form a valid vocabulary (see New).
var ErrInvalid = errors.New("invalid vocabulary")

// Counter counts tokens. Not safe for concurrent use. The zero value is not usable; call
// NewCounter.
type Counter struct {
	// index maps a word to its position in words and counts.
	index  map[string]int
	words  []string
	counts []uint64
}

// NewCounter returns an empty Counter.
func NewCounter() *Counter {
	return &Counter{index: make(map[string]int)}
}

// Add counts one occurrence of tok. It does not allocate when the word is already known and
// does not keep tok.
func (c *Counter) Add(tok []byte) {
	// NB: the string(tok) conversion in a map lookup does not allocate.
	if i, ok := c.index[string(tok)]; ok {
		c.counts[i] = addSat(c.counts[i], 1)
		return
	}
	c.insert(string(tok), 1)
}

// AddN counts n occurrences of word; n == 0 does nothing. Counts saturate at the largest
// uint64 rather than wrapping.
func (c *Counter) AddN(word string, n uint64) {
	if n == 0 {
		return
	}
	if i, ok := c.index[word]; ok {
		c.counts[i] = addSat(c.counts[i], n)
		return
	}
	c.insert(word, n)
}

func (c *Counter) insert(word string, n uint64) {
	c.index[word] = len(c.words)
	c.words = append(c.words, word)
	c.counts = append(c.counts, n)
}

// Len returns the number of distinct words counted.
func (c *Counter) Len() int { return len(c.words) }

// Sorted returns copies of the words and their counts, ordered by the word's bytes. It is
// meant for messages and tests.
func (c *Counter) Sorted() (words []string, counts []uint64) {
	order := make([]int, len(c.words))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(c.words[a], c.words[b]) })

	words = make([]string, len(order))
	counts = make([]uint64, len(order))
	for i, j := range order {
		words[i], counts[i] = c.words[j], c.counts[j]
	}
	return words, counts
}

// addSat returns a+b, or the largest uint64 when the sum overflows.
func addSat(a, b uint64) uint64 {
	s, carry := bits.Add64(a, b, 0)
	if carry != 0 {
		return math.MaxUint64
	}
	return s
}

// Vocab is the final vocabulary: row id i is Words[i] and Counts[i] its count in the corpus.
// Rows are ordered by count descending, then by the word's bytes ascending. Read-only once
// built; safe for concurrent readers.
type Vocab struct {
	// Words holds the vocabulary words in row-id order.
	Words []string
	// Counts holds the corpus count of each word, parallel to Words.
	Counts []uint64

	index map[string]int32
	total uint64
}

// Build makes the vocabulary of the words of c that occur at least minCount times, keeping the
// maxVocab most frequent of them (0 = no cap; ties at the cap are broken by the word's bytes).
// An empty result is ErrEmpty wrapped with the number of distinct words, the highest count and
// a hint to lower min-count. Words that New would refuse (empty, with white space or invalid
// UTF-8) and totals that overflow fail with ErrInvalid. c is not changed.
func Build(c *Counter, minCount uint64, maxVocab int) (*Vocab, error) {
	if maxVocab < 0 {
		return nil, fmt.Errorf("build vocabulary: max vocab %d is negative; use 0 for no cap",
			maxVocab)
	}

	// Keep the positions of the words that pass min-count, then order them.
	var highest uint64
	keep := make([]int, 0, len(c.words))
	for i, n := range c.counts {
		highest = max(highest, n)
		if n >= minCount {
			keep = append(keep, i)
		}
	}
	if len(keep) == 0 {
		return nil, emptyError(c.Len(), highest, minCount)
	}
	slices.SortFunc(keep, func(a, b int) int {
		return compareEntries(c.words[a], c.counts[a], c.words[b], c.counts[b])
	})
	if maxVocab > 0 && len(keep) > maxVocab {
		keep = keep[:maxVocab]
	}

	words := make([]string, len(keep))
	counts := make([]uint64, len(keep))
	for i, j := range keep {
		words[i], counts[i] = c.words[j], c.counts[j]
	}
	return newChecked(words, counts)
}

func emptyError(distinct int, highest, minCount uint64) error {
	if distinct == 0 {
		return fmt.Errorf("%w: the corpus holds no token; check the corpus files and the "+
			"tokenizer", ErrEmpty)
	}
	return fmt.Errorf("%w after min count %d: the corpus has %d distinct words and the highest "+
		"count is %d; lower --min-count to %d or less", ErrEmpty, minCount, distinct, highest,
		highest)
}

// compareEntries orders vocabulary entries: count descending, then word bytes ascending.
func compareEntries(wa string, na uint64, wb string, nb uint64) int {
	if c := cmp.Compare(nb, na); c != 0 {
		return c
	}
	return cmp.Compare(wa, wb)
}

// New rebuilds a Vocab from the lists of a message. It checks that the lists have the same
// length, that no word is empty, holds ASCII white space or invalid UTF-8, that no word occurs
// twice, that no count is zero, and that the entries follow the vocabulary order. Errors wrap
// ErrInvalid (or ErrEmpty for empty lists) and name the entry. New keeps the slices.
func New(words []string, counts []uint64) (*Vocab, error) {
	if len(words) != len(counts) {
		return nil, fmt.Errorf("%w: %d words but %d counts; the lists must have the same length",
			ErrInvalid, len(words), len(counts))
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("%w: the lists hold no word", ErrEmpty)
	}
	for i, w := range words {
		if counts[i] == 0 {
			return nil, fmt.Errorf("%w: entry %d (%q): count is 0; every vocabulary word "+
				"occurs at least once", ErrInvalid, i, w)
		}
		if i > 0 && compareEntries(words[i-1], counts[i-1], w, counts[i]) >= 0 {
			return nil, fmt.Errorf("%w: entry %d (%q, count %d) does not follow entry %d (%q, "+
				"count %d): entries must be ordered by count descending, then by word bytes "+
				"ascending, without repeats", ErrInvalid, i, w, counts[i], i-1, words[i-1],
				counts[i-1])
		}
	}
	return newChecked(words, counts)
}

// newChecked indexes ordered lists. It refuses words that cannot be written out, duplicates
// that the order check cannot see (the same word with different counts) and totals that
// overflow.
func newChecked(words []string, counts []uint64) (*Vocab, error) {
	if len(words) > math.MaxInt32 {
		return nil, fmt.Errorf("%w: %d words; at most %d fit in row ids", ErrInvalid,
			len(words), math.MaxInt32)
	}

	v := &Vocab{Words: words, Counts: counts, index: make(map[string]int32, len(words))}
	for i, w := range words {
		if err := checkWord(w); err != nil {
			return nil, fmt.Errorf("%w: entry %d (%q): %v", ErrInvalid, i, w, err)
		}
		if j, dup := v.index[w]; dup {
			return nil, fmt.Errorf("%w: entry %d (%q) repeats entry %d", ErrInvalid, i, w, j)
		}
		v.index[w] = int32(i)

		sum, carry := bits.Add64(v.total, counts[i], 0)
		if carry != 0 {
			return nil, fmt.Errorf("%w: the sum of the counts overflows 64 bits at entry %d (%q)",
				ErrInvalid, i, w)
		}
		v.total = sum
	}
	return v, nil
}

// checkWord refuses the words that cannot be written to a vectors file or a vocab.txt line.
func checkWord(w string) error {
	if w == "" {
		return errors.New("empty word")
	}
	if !utf8.ValidString(w) {
		return errors.New("invalid UTF-8")
	}
	for i := 0; i < len(w); i++ {
		switch w[i] {
		case ' ', '\t', '\n', '\v', '\f', '\r':
			return fmt.Errorf("white space at byte %d", i)
		}
	}
	return nil
}

// Len returns the number of words.
func (v *Vocab) Len() int { return len(v.Words) }

// ID returns the row id of tok and whether tok is in the vocabulary. It does not allocate.
func (v *Vocab) ID(tok []byte) (int32, bool) {
	id, ok := v.index[string(tok)]
	return id, ok
}

// TrainWords returns the sum of the counts: the words one epoch trains before subsampling.
func (v *Vocab) TrainWords() uint64 { return v.total }

// WriteText writes one "word count\n" line per row, in row-id order.
func (v *Vocab) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	var num []byte
	for i, word := range v.Words {
		bw.WriteString(word)
		bw.WriteByte(' ')
		num = strconv.AppendUint(num[:0], v.Counts[i], 10)
		num = append(num, '\n')
		if _, err := bw.Write(num); err != nil {
			return fmt.Errorf("write vocabulary row %d: %w", i, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write vocabulary: %w", err)
	}
	return nil
}
