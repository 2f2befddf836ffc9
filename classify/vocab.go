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
	words := slices.Grow(byCount(counts), len(extra))

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

// byCount returns the keys of counts, most counted first, then by bytes: the order of the
// task vocabulary, and of label counts in reports.
func byCount[C cmp.Ordered](counts map[string]C) []string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if c := cmp.Compare(counts[b], counts[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return keys
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

// EOS is the word fastText reads at the end of every line: the model adds its row to the
// features of every line with a token, as fastText does, so the row learns what every line
// shares (much like a bias). It is not a word of the vocabulary: its row comes after the
// bigram buckets (see Features).
const EOS = "</s>"

// fnv1a is fastText's word hash: 32-bit FNV-1a over the bytes, each byte sign-extended
// before the xor (fastText hashes int8_t(c)), which changes the result only for bytes of
// 0x80 and above.
func fnv1a(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(int8(s[i]))
		h *= 16777619
	}
	return h
}

// bigramMul combines the hashes of a bigram's two tokens, as fastText combines word n-grams.
const bigramMul = 116049371

// BigramBucket returns the bucket of the adjacent tokens a, b among buckets (> 0), as fastText
// computes it: the 32-bit hashes are held as int32 and sign-extended to 64 bits, so the
// bucket is (sext(h(a)) * 116049371 + sext(h(b))) mod 2^64 mod buckets.
func BigramBucket(a, b string, buckets int) int {
	return int(bigramHash(fnv1a(a), fnv1a(b)) % uint64(buckets))
}

// bigramHash combines two word hashes as fastText's addWordNgrams does.
func bigramHash(a, b uint32) uint64 {
	return uint64(int64(int32(a)))*bigramMul + uint64(int64(int32(b)))
}

// Features holds how a line's tokens become input rows.
type Features struct {
	// Words finds the rows of words.
	Words interface{ ID(string) (int32, bool) }
	// Rows is the number of word rows: bigram bucket b is row Rows + b.
	Rows int
	// Buckets is the number of bigram buckets; 0 turns bigrams off.
	Buckets int
	// EOS adds the end-of-line row, row Rows + Buckets, to every line with a token, and
	// makes the last token and EOS one more bigram, as fastText does.
	EOS bool
}

// EOSRow returns the row of EOS (meaningful when f.EOS is set).
func (f Features) EOSRow() int32 { return int32(f.Rows + f.Buckets) }

// Append appends the rows of tokens to dst: each known word's row, in order, then the EOS
// row, then one bucket row per pair of adjacent tokens (known or not, EOS the last). known
// counts the known words; a line without tokens gets no row.
func (f Features) Append(dst []int32, tokens []string) (rows []int32, known int) {
	for _, t := range tokens {
		if id, ok := f.Words.ID(t); ok {
			dst = append(dst, id)
			known++
		}
	}
	if len(tokens) == 0 {
		return dst, known
	}
	if f.EOS {
		dst = append(dst, f.EOSRow())
	}
	if f.Buckets > 0 {
		prev := fnv1a(tokens[0])
		for _, t := range tokens[1:] {
			h := fnv1a(t)
			dst = append(dst, int32(f.Rows+int(bigramHash(prev, h)%uint64(f.Buckets))))
			prev = h
		}
		if f.EOS {
			dst = append(dst, int32(f.Rows+int(bigramHash(prev, eosHash)%uint64(f.Buckets))))
		}
	}
	return dst, known
}

// eosHash is fnv1a(EOS).
var eosHash = fnv1a(EOS)

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

// InputRows is the number of input rows of a task of words words and buckets bigram buckets:
// the words, the buckets and the EOS row.
func InputRows(words, buckets int) int64 { return int64(words) + int64(buckets) + 1 }

// Encode turns the examples of ds into rows of v, plus buckets bigram buckets and the EOS
// row after them (see Features), and indexes into labels. Every label of ds must be in
// labels.
func Encode(ds *Dataset, v *Vocab, labels []string, buckets int) (*Encoded, error) {
	if InputRows(v.Len(), buckets) > MaxRows {
		return nil, fmt.Errorf("encode %s: %d words, %d buckets and the EOS row exceed %d "+
			"rows", ds.Name, v.Len(), buckets, MaxRows)
	}
	labelID := make(map[string]int32, len(labels))
	for i, l := range labels {
		labelID[l] = int32(i)
	}
	f := Features{Words: v, Rows: v.Len(), Buckets: buckets, EOS: true}
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
