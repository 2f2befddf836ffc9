package query

import (
	"fmt"
	"math"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/skipgrid/skipgrid/vectors"
)

// maxRows bounds the rows of an Index: row numbers are int32 inside.
const maxRows = math.MaxInt32

// Index answers neighbour, analogy and similarity queries over a fixed set
// of vectors. It is immutable once built and safe for concurrent use.
type Index struct {
	// v holds the words, the word lookup and, in Data, every row scaled to
	// unit length (a zero row stays zero): one contiguous row-major matrix.
	v      *vectors.Vectors
	norms  []float32 // Euclidean norm of each row as given
	sq     []float32 // squared norm of each row as given
	folded map[string]int32
	cfg    Config
	block  int       // rows scored by one product call
	pool   sync.Pool // of *[]float32 product buffers
}

// NewIndex builds an index of v. It copies what it keeps, so v stays the
// caller's. It refuses a v whose Data length is not len(Words)*Dim, a
// dimension below 1, more than 2^31-1 rows, and non-finite values, all
// wrapping ErrInvalidArgument.
func NewIndex(v *vectors.Vectors, cfg Config) (*Index, error) {
	if v == nil {
		return nil, fmt.Errorf("%w: no vectors", ErrInvalidArgument)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	own := &vectors.Vectors{Words: append([]string(nil), v.Words...), Dim: v.Dim,
		Data: append([]float32(nil), v.Data...)}
	return adopt(own, cfg)
}

// LoadFile reads the vectors file at path and builds its index. The rows
// are normalised in the memory they were read into, so loading needs no
// second copy of the matrix.
func LoadFile(path string, opt vectors.ReadOptions, cfg Config) (*Index, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	v, err := vectors.ReadFile(path, opt)
	if err != nil {
		return nil, err
	}
	x, err := adopt(v, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return x, nil
}

// adopt builds an index that takes v over: v.Data is scaled in place and v
// must not be used elsewhere afterwards. cfg must be valid.
func adopt(v *vectors.Vectors, cfg Config) (*Index, error) {
	if v.Dim < 1 {
		return nil, fmt.Errorf("%w: dimension %d: it must be at least 1", ErrInvalidArgument,
			v.Dim)
	}
	n := len(v.Words)
	if n > maxRows {
		return nil, fmt.Errorf("%w: %d words exceed the limit of %d", ErrInvalidArgument, n,
			maxRows)
	}
	if len(v.Data) != n*v.Dim {
		return nil, fmt.Errorf("%w: %d values for %d words of dimension %d, want %d",
			ErrInvalidArgument, len(v.Data), n, v.Dim, n*v.Dim)
	}

	x := &Index{v: v, norms: make([]float32, n), sq: make([]float32, n), cfg: cfg,
		block: blockRows(v.Dim)}
	if err := x.normalise(); err != nil {
		return nil, err
	}

	// Index the words now, so that no query pays for it, and fold case.
	v.Lookup("")
	x.folded = foldWords(v.Words)
	return x, nil
}

// blockRows is the number of rows one product call scores: about 256 KiB of
// matrix, which stays in a core's cache while every query of a batch reads it.
func blockRows(dim int) int {
	return max(64, (256<<10)/(4*dim))
}

// normalise records each row's norm and scales the row to unit length,
// splitting the rows across cfg.Parallel goroutines.
func (x *Index) normalise() error {
	var g errgroup.Group
	for _, r := range splitRows(len(x.norms), x.cfg.Parallel, 1024) {
		g.Go(func() error { return x.normaliseRows(r[0], r[1]) })
	}
	return g.Wait()
}

// normaliseRows normalises rows [lo, hi). Sums are taken in float64.
func (x *Index) normaliseRows(lo, hi int) error {
	dim := x.v.Dim
	for i := lo; i < hi; i++ {
		row := x.v.Data[i*dim : (i+1)*dim]
		var ss float64
		for _, f := range row {
			ss += float64(f) * float64(f)
		}
		if math.IsNaN(ss) || math.IsInf(ss, 0) {
			return fmt.Errorf("%w: the vector of word %d (%q) holds a NaN or infinite value",
				ErrInvalidArgument, i, x.v.Words[i])
		}
		norm := math.Sqrt(ss)
		x.norms[i], x.sq[i] = float32(norm), float32(ss)
		if ss == 0 {
			continue
		}
		inv := 1 / norm
		for j, f := range row {
			row[j] = float32(float64(f) * inv)
		}
	}
	return nil
}

// splitRows cuts [0, n) into at most parts contiguous ranges of at least
// minRows rows each (one range when n is small).
func splitRows(n, parts, minRows int) [][2]int {
	parts = max(1, min(parts, n/minRows))
	out := make([][2]int, 0, parts)
	for p := range parts {
		out = append(out, [2]int{n * p / parts, n * (p + 1) / parts})
	}
	return out
}

// foldWords maps the lower-case form of every word that is not already
// lower-case to the earliest such row.
func foldWords(words []string) map[string]int32 {
	folded := make(map[string]int32)
	for i, w := range words {
		low := strings.ToLower(w)
		if low == w {
			continue
		}
		if _, seen := folded[low]; !seen {
			folded[low] = int32(i)
		}
	}
	return folded
}

// Len returns the number of words.
func (x *Index) Len() int { return len(x.norms) }

// Dim returns the dimension of the vectors.
func (x *Index) Dim() int { return x.v.Dim }

// Word returns the word of row i.
func (x *Index) Word(i int) string { return x.v.Words[i] }

// Norm returns the Euclidean norm of row i as given.
func (x *Index) Norm(i int) float32 { return x.norms[i] }

// Vector appends row i as given (its unit row times its norm, within float32
// rounding of the original) to dst and returns the extended slice.
func (x *Index) Vector(dst []float32, i int) []float32 {
	norm := float64(x.norms[i])
	for _, u := range x.unit(i) {
		dst = append(dst, float32(float64(u)*norm))
	}
	return dst
}

// unit returns row i scaled to unit length, aliasing the matrix.
func (x *Index) unit(i int) []float32 {
	dim := x.v.Dim
	return x.v.Data[i*dim : (i+1)*dim : (i+1)*dim]
}

// Lookup returns the row of word. A word is matched byte for byte first;
// failing that, ignoring case (both sides lower-cased with strings.ToLower),
// where the earliest row wins: vectors files list frequent words first, so
// that is the most frequent spelling. A word matching neither is an error
// wrapping ErrUnknownWord that names it.
func (x *Index) Lookup(word string) (int, error) {
	if i, ok := x.v.Lookup(word); ok {
		return i, nil
	}
	low := strings.ToLower(word)
	best := -1
	if i, ok := x.v.Lookup(low); ok {
		best = i
	}
	if i, ok := x.folded[low]; ok && (best < 0 || int(i) < best) {
		best = int(i)
	}
	if best < 0 {
		return -1, fmt.Errorf("%w %q: it is not in the vocabulary of %d words, exactly or "+
			"ignoring case", ErrUnknownWord, word, x.Len())
	}
	return best, nil
}

// Similarity returns the score of w1 and w2 under m: their cosine, their dot
// product, or their Euclidean distance. Unknown words are errors wrapping
// ErrUnknownWord, an unknown metric ErrInvalidArgument.
func (x *Index) Similarity(w1, w2 string, m Metric) (float64, error) {
	if !m.valid() {
		return 0, fmt.Errorf("%w: %v", ErrInvalidArgument, m)
	}
	i, err := x.Lookup(w1)
	if err != nil {
		return 0, err
	}
	j, err := x.Lookup(w2)
	if err != nil {
		return 0, err
	}
	return x.score(i, x.unit(j), float64(x.norms[j]), m), nil
}

// score returns the score of row i and the vector u*norm (u of unit length
// or zero) under m, in float64.
func (x *Index) score(i int, u []float32, norm float64, m Metric) float64 {
	ui, ni := x.unit(i), float64(x.norms[i])
	switch m {
	case MetricCosine, MetricDot:
		var s float64
		for j, f := range ui {
			s += float64(f) * float64(u[j])
		}
		if m == MetricDot {
			s *= ni * norm
		}
		return s
	default:
		var ss float64
		for j, f := range ui {
			d := float64(f)*ni - float64(u[j])*norm
			ss += d * d
		}
		return math.Sqrt(ss)
	}
}
