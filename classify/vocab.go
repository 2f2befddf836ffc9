package classify

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// MaxRows bounds the input rows of a task (words plus bigram buckets): row ids are int32.
const MaxRows = math.MaxInt32

// Vocab is the task vocabulary: row i of the input table is Words[i]. The first Trained words
// are the training file's, by count descending, then by bytes; the others are pretrained words
// that the training file lacks, in the vectors file's order, with count 0: no example trains
// them, but prediction finds them. Read-only once built; safe for concurrent readers.
type Vocab struct {
	Words  []string
	Counts []uint64
	// Trained is the number of words that occur in the training file.
	Trained int

	index map[string]int32
}

// BuildVocab makes the vocabulary of the examples of ds, followed by the words of extra that
// ds lacks (extra is typically a pretrained vectors file's words; nil for none).
func BuildVocab(ds *Dataset, extra []string) *Vocab {
	counts := map[string]uint64{}
	for _, ex := range ds.Examples {
		for _, t := range ex.Tokens {
			counts[t]++
		}
	}
	words := make([]string, 0, len(counts)+len(extra))
	for w := range counts {
		words = append(words, w)
	}
	slices.SortFunc(words, func(a, b string) int {
		if c := cmp.Compare(counts[b], counts[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})

	v := &Vocab{Trained: len(words), index: make(map[string]int32, len(words)+len(extra))}
	for i, w := range words {
		v.index[w] = int32(i)
		v.Counts = append(v.Counts, counts[w])
	}
	for _, w := range extra {
		if _, ok := v.index[w]; ok {
			continue
		}
		v.index[w] = int32(len(words))
		words = append(words, w)
		v.Counts = append(v.Counts, 0)
	}
	v.Words = words
	return v
}

// NewVocab rebuilds a Vocab from the lists of a message: equal lengths, no empty or repeated
// word, positive counts first (the trained words) and zeros after.
func NewVocab(words []string, counts []uint64) (*Vocab, error) {
	if len(words) != len(counts) {
		return nil, fmt.Errorf("task vocabulary: %d words but %d counts", len(words),
			len(counts))
	}
	if len(words) >= MaxRows {
		return nil, fmt.Errorf("task vocabulary: %d words, at most %d fit", len(words),
			MaxRows-1)
	}
	v := &Vocab{Words: words, Counts: counts, index: make(map[string]int32, len(words))}
	for i, w := range words {
		if w == "" {
			return nil, fmt.Errorf("task vocabulary: entry %d is empty", i)
		}
		if j, dup := v.index[w]; dup {
			return nil, fmt.Errorf("task vocabulary: entry %d (%q) repeats entry %d", i, w, j)
		}
		v.index[w] = int32(i)
		switch {
		case counts[i] > 0 && v.Trained == i:
			v.Trained++
		case counts[i] > 0:
			return nil, fmt.Errorf("task vocabulary: entry %d (%q) has count %d after a "+
				"word of count 0; trained words come first", i, w, counts[i])
		}
	}
	return v, nil
}

// Len returns the number of words.
func (v *Vocab) Len() int { return len(v.Words) }

// ID returns the row of word and whether it is in the vocabulary.
func (v *Vocab) ID(word string) (int32, bool) {
	id, ok := v.index[word]
	return id, ok
}

// fnv1a is the 32-bit FNV-1a hash of s's bytes.
func fnv1a(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// bigramMul combines the hashes of a bigram's two tokens, as fastText combines word n-grams.
const bigramMul = 116049371

// BigramBucket returns the bucket of the adjacent tokens a, b among buckets (> 0).
func BigramBucket(a, b string, buckets int) int {
	h := uint64(fnv1a(a))*bigramMul + uint64(fnv1a(b))
	return int(h % uint64(buckets))
}

// Features holds how a line's tokens become input rows.
type Features struct {
	// Words finds the rows of words.
	Words interface{ ID(string) (int32, bool) }
	// Rows is the number of word rows: bigram bucket b is row Rows + b.
	Rows int
	// Buckets is the number of bigram buckets; 0 turns bigrams off.
	Buckets int
}

// Append appends the rows of tokens to dst: each known word's row, in order, then one bucket
// row per pair of adjacent tokens (known or not). known counts the known words.
func (f Features) Append(dst []int32, tokens []string) (rows []int32, known int) {
	for _, t := range tokens {
		if id, ok := f.Words.ID(t); ok {
			dst = append(dst, id)
			known++
		}
	}
	if f.Buckets > 0 {
		for i := 1; i < len(tokens); i++ {
			dst = append(dst, int32(f.Rows+BigramBucket(tokens[i-1], tokens[i], f.Buckets)))
		}
	}
	return dst, known
}

// Encoded holds examples as row and label ids, back to back: example i's feature rows are
// Rows[RowEnd[i-1]:RowEnd[i]] (RowEnd[-1] taken as 0), its labels likewise.
type Encoded struct {
	Rows     []int32
	RowEnd   []int32
	Labels   []int32
	LabelEnd []int32
}

// ErrUnknownLabel: an example carries a label outside the label list.
var ErrUnknownLabel = errors.New("label not in the label list")

// Encode turns the examples of ds into rows of v (plus buckets bigram buckets after them) and
// indexes into labels. Every label of ds must be in labels.
func Encode(ds *Dataset, v *Vocab, labels []string, buckets int) (*Encoded, error) {
	if int64(v.Len())+int64(buckets) > MaxRows {
		return nil, fmt.Errorf("encode %s: %d words and %d buckets exceed %d rows", ds.Name,
			v.Len(), buckets, MaxRows)
	}
	labelID := make(map[string]int32, len(labels))
	for i, l := range labels {
		labelID[l] = int32(i)
	}
	f := Features{Words: v, Rows: v.Len(), Buckets: buckets}
	e := &Encoded{
		RowEnd:   make([]int32, 0, len(ds.Examples)),
		LabelEnd: make([]int32, 0, len(ds.Examples)),
	}
	for _, ex := range ds.Examples {
		e.Rows, _ = f.Append(e.Rows, ex.Tokens)
		if len(e.Rows) > math.MaxInt32 {
			return nil, fmt.Errorf("encode %s: more than %d feature rows in all", ds.Name,
				math.MaxInt32)
		}
		e.RowEnd = append(e.RowEnd, int32(len(e.Rows)))
		for _, l := range ex.Labels {
			id, ok := labelID[l]
			if !ok {
				return nil, fmt.Errorf("encode %s line %d: %w: %q", ds.Name, ex.Line,
					ErrUnknownLabel, l)
			}
			e.Labels = append(e.Labels, id)
		}
		e.LabelEnd = append(e.LabelEnd, int32(len(e.Labels)))
	}
	return e, nil
}

// Len returns the number of examples.
func (e *Encoded) Len() int { return len(e.RowEnd) }

// Example returns the feature rows and label ids of example i.
func (e *Encoded) Example(i int) (rows, labels []int32) {
	var r0, l0 int32
	if i > 0 {
		r0, l0 = e.RowEnd[i-1], e.LabelEnd[i-1]
	}
	return e.Rows[r0:e.RowEnd[i]], e.Labels[l0:e.LabelEnd[i]]
}
