package query

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/skipgrid/skipgrid/vectors"
)

// approx compares scores to within float32 rounding (relative or absolute)
// of hand-worked values.
var approx = cmpopts.EquateApprox(1e-6, 1e-6)

// plane holds 2-D vectors whose scores are easy to work by hand:
//
//	row word  vector    norm  unit
//	0   a     (3, 4)    5     (0.6, 0.8)
//	1   b     (4, 3)    5     (0.8, 0.6)
//	2   c     (0, 2)    2     (0, 1)
//	3   d     (1, 0)    1     (1, 0)
//	4   e     (-3, -4)  5     (-0.6, -0.8)
//	5   f     (6, 8)    10    (0.6, 0.8)
//	6   z     (0, 0)    0     (0, 0)
func plane() *vectors.Vectors {
	return &vectors.Vectors{
		Words: []string{"a", "b", "c", "d", "e", "f", "z"},
		Dim:   2,
		Data:  []float32{3, 4, 4, 3, 0, 2, 1, 0, -3, -4, 6, 8, 0, 0},
	}
}

func mustIndex(t testing.TB, v *vectors.Vectors, cfg Config) *Index {
	t.Helper()
	x, err := NewIndex(v, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestNeighborsByHand(t *testing.T) {
	x := mustIndex(t, plane(), DefaultConfig())
	tests := []struct {
		name   string
		word   string
		k      int
		metric Metric
		want   []Neighbor
	}{{
		// cos(a, x) = 0.6*x1 + 0.8*x2 over unit rows: f 1, b 0.48+0.48,
		// c 0.8, d 0.6, z 0 (a zero row), e -1. a itself is left out.
		name: "cosine", word: "a", k: 10, metric: MetricCosine,
		want: []Neighbor{{"f", 1}, {"b", 0.96}, {"c", 0.8}, {"d", 0.6}, {"z", 0}, {"e", -1}},
	}, {
		// a·x with a = (3, 4): f 18+32, b 12+12, c 8, d 3, z 0, e -9-16.
		name: "dot", word: "a", k: 10, metric: MetricDot,
		want: []Neighbor{{"f", 50}, {"b", 24}, {"c", 8}, {"d", 3}, {"z", 0}, {"e", -25}},
	}, {
		// |a - x|: b sqrt(1+1), c sqrt(9+4), d sqrt(4+16), f sqrt(9+16) = 5,
		// z sqrt(9+16) = 5 (the tie goes to the earlier row f), e sqrt(36+64).
		name: "euclidean", word: "a", k: 10, metric: MetricEuclidean,
		want: []Neighbor{{"b", math.Sqrt2}, {"c", math.Sqrt(13)}, {"d", math.Sqrt(20)},
			{"f", 5}, {"z", 5}, {"e", 10}},
	}, {
		// cos(d, x) = x1 of the unit rows: b 0.8, then a and f tie at 0.6 and
		// the earlier row a comes first; c 0, z 0 (the tie to c), e -0.6.
		name: "cosine ties", word: "d", k: 10, metric: MetricCosine,
		want: []Neighbor{{"b", 0.8}, {"a", 0.6}, {"f", 0.6}, {"c", 0}, {"z", 0},
			{"e", -0.6}},
	}, {
		name: "k cuts", word: "a", k: 2, metric: MetricCosine,
		want: []Neighbor{{"f", 1}, {"b", 0.96}},
	}, {
		// |z - x| is each row's norm: d 1, c 2, then a, b, e at 5, f 10.
		name: "zero query euclidean", word: "z", k: 3, metric: MetricEuclidean,
		want: []Neighbor{{"d", 1}, {"c", 2}, {"a", 5}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := x.Neighbors(tt.word, tt.k, tt.metric)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, approx); diff != "" {
				t.Errorf("neighbours of %s (-want +got):\n%s", tt.word, diff)
			}
		})
	}
}

func TestSimilarityByHand(t *testing.T) {
	x := mustIndex(t, plane(), DefaultConfig())
	tests := []struct {
		w1, w2 string
		metric Metric
		want   float64
	}{
		{"a", "b", MetricCosine, 0.96},          // 0.6*0.8 + 0.8*0.6
		{"a", "b", MetricDot, 24},               // 3*4 + 4*3
		{"a", "b", MetricEuclidean, math.Sqrt2}, // sqrt(1 + 1)
		{"a", "e", MetricCosine, -1},            // opposite directions
		{"a", "f", MetricEuclidean, 5},          // (6-3, 8-4) = (3, 4)
		{"a", "z", MetricCosine, 0},             // a zero row has cosine 0, not NaN
		{"c", "c", MetricEuclidean, 0},
		{"A", "B", MetricDot, 24}, // found ignoring case
	}
	for _, tt := range tests {
		got, err := x.Similarity(tt.w1, tt.w2, tt.metric)
		if err != nil {
			t.Fatalf("%s %s %v: %v", tt.w1, tt.w2, tt.metric, err)
		}
		if diff := cmp.Diff(tt.want, got, approx); diff != "" {
			t.Errorf("similarity %s %s %v (-want +got):\n%s", tt.w1, tt.w2, tt.metric, diff)
		}
	}
}

// analogyVectors are unit rows (or, for r, a row scaled by 27) chosen so
// that 3CosAdd and 3CosMul disagree, with cosines to a, b, c of
//
//	p = (0, 0.8, 0, 0.6):       0, 0.8, 0
//	r = (0, 10, 10, 23) / 27:   0, 10/27, 10/27  (100+100+529 = 27²)
//	s = (0, 0, 0, 1):           0, 0, 0
//
// b and c would top both rankings were they not left out (b scores
// 1 - 0 + 0 = 1 by 3CosAdd).
func analogyVectors() *vectors.Vectors {
	return &vectors.Vectors{
		Words: []string{"a", "b", "c", "p", "r", "s"},
		Dim:   4,
		Data: []float32{
			1, 0, 0, 0,
			0, 1, 0, 0,
			0, 0, 1, 0,
			0, 0.8, 0, 0.6,
			0, 10, 10, 23,
			0, 0, 0, 1,
		},
	}
}

func TestAnalogyByHand(t *testing.T) {
	x := mustIndex(t, analogyVectors(), DefaultConfig())
	tests := []struct {
		method AnalogyMethod
		want   []Neighbor
	}{{
		// cos(x,b) - cos(x,a) + cos(x,c): p 0.8, r 20/27, s 0.
		method: Method3CosAdd,
		want:   []Neighbor{{"p", 0.8}, {"r", 20.0 / 27}, {"s", 0}},
	}, {
		// b'c'/(a' + 0.001) with x' = (1+x)/2: r (37/54)²/0.501 = 0.93708331,
		// p 0.9*0.5/0.501 = 0.89820359, s 0.5*0.5/0.501 = 0.49900200.
		method: Method3CosMul,
		want: []Neighbor{{"r", 0.9370833093757617}, {"p", 0.8982035928143712},
			{"s", 0.499001996007984}},
	}}
	for _, tt := range tests {
		got, err := x.Analogy("a", "b", "c", 10, tt.method)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, got, approx); diff != "" {
			t.Errorf("%v (-want +got):\n%s", tt.method, diff)
		}
	}
}

func TestLookupFoldsCase(t *testing.T) {
	v := &vectors.Vectors{
		Words: []string{"Apple", "apple", "Berlin", "NASA", "Éclair"},
		Dim:   1,
		Data:  []float32{1, 2, 3, 4, 5},
	}
	x := mustIndex(t, v, DefaultConfig())
	tests := []struct {
		word string
		want int
	}{
		{"apple", 1},  // exact
		{"Apple", 0},  // exact
		{"APPLE", 0},  // ignoring case: Apple (row 0) is earlier than apple (row 1)
		{"berlin", 2}, // ignoring case
		{"nasa", 3},
		{"Nasa", 3},
		{"éCLAIR", 4}, // lower-casing is Unicode-aware
	}
	for _, tt := range tests {
		got, err := x.Lookup(tt.word)
		if err != nil || got != tt.want {
			t.Errorf("Lookup(%q) = %d, %v; want %d", tt.word, got, err, tt.want)
		}
	}

	_, err := x.Lookup("paris")
	if !errors.Is(err, ErrUnknownWord) || !strings.Contains(err.Error(), `"paris"`) {
		t.Errorf("Lookup(paris) error %v; want ErrUnknownWord naming the word", err)
	}
}

func TestBadArguments(t *testing.T) {
	x := mustIndex(t, plane(), DefaultConfig())
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	newIndex := func(v *vectors.Vectors) error {
		_, err := NewIndex(v, DefaultConfig())
		return err
	}
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"k 0", func() error { _, err := x.Neighbors("a", 0, MetricCosine); return err },
			ErrInvalidArgument},
		{"metric 9", func() error { _, err := x.Neighbors("a", 3, Metric(9)); return err },
			ErrInvalidArgument},
		{"unknown word", func() error {
			_, err := x.Neighbors("nope", 3, MetricCosine)
			return err
		}, ErrUnknownWord},
		{"unknown word in a batch", func() error {
			_, err := x.NeighborsBatch([]string{"a", "nope"}, 3, MetricCosine)
			return err
		}, ErrUnknownWord},
		{"unknown analogy word", func() error {
			_, err := x.Analogy("a", "b", "nope", 3, Method3CosAdd)
			return err
		}, ErrUnknownWord},
		{"method 0", func() error {
			_, err := x.Analogy("a", "b", "c", 3, AnalogyMethod(0))
			return err
		}, ErrInvalidArgument},
		{"unknown similarity word", func() error {
			_, err := x.Similarity("a", "nope", MetricCosine)
			return err
		}, ErrUnknownWord},
		{"short vector", func() error {
			_, err := x.NeighborsOfVector([]float32{1}, 3, MetricCosine)
			return err
		}, ErrInvalidArgument},
		{"NaN vector", func() error {
			_, err := x.NeighborsOfVector([]float32{1, nan}, 3, MetricCosine)
			return err
		}, ErrInvalidArgument},
		{"short data", func() error {
			return newIndex(&vectors.Vectors{Words: []string{"a"}, Dim: 2, Data: []float32{1}})
		}, ErrInvalidArgument},
		{"dim 0", func() error {
			return newIndex(&vectors.Vectors{Words: []string{"a"}, Dim: 0})
		}, ErrInvalidArgument},
		{"infinite value", func() error {
			return newIndex(&vectors.Vectors{Words: []string{"a"}, Dim: 1,
				Data: []float32{inf}})
		}, ErrInvalidArgument},
	}
	for _, tt := range tests {
		if err := tt.call(); !errors.Is(err, tt.want) {
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := NewIndex(plane(), Config{Parallel: 0}); err == nil {
		t.Error("NewIndex with Parallel 0: no error")
	}
}

func TestNewIndexCopies(t *testing.T) {
	v := plane()
	want := slices.Clone(v.Data)
	x := mustIndex(t, v, DefaultConfig())
	if diff := cmp.Diff(want, v.Data); diff != "" {
		t.Errorf("NewIndex changed the caller's data (-before +after):\n%s", diff)
	}
	// The vector of a comes back as given: (3, 4) within float32 rounding.
	if diff := cmp.Diff([]float32{3, 4}, x.Vector(nil, 0),
		cmpopts.EquateApprox(0, 1e-6)); diff != "" {
		t.Errorf("Vector(a) (-want +got):\n%s", diff)
	}
}

func TestNeighborsOfVector(t *testing.T) {
	x := mustIndex(t, plane(), DefaultConfig())
	// The vector (3, 4) is a's, but no word is left out: a and f have
	// cosine 1 (tie: a first), then b 0.96.
	got, err := x.NeighborsOfVector([]float32{3, 4}, 3, MetricCosine)
	if err != nil {
		t.Fatal(err)
	}
	want := []Neighbor{{"a", 1}, {"f", 1}, {"b", 0.96}}
	if diff := cmp.Diff(want, got, approx); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// randomVectors returns n seeded random vectors of dimension dim, words w0...
func randomVectors(seed uint64, n, dim int) *vectors.Vectors {
	rng := rand.New(rand.NewPCG(seed, 1))
	v := &vectors.Vectors{Words: make([]string, n), Dim: dim, Data: make([]float32, n*dim)}
	for i := range v.Words {
		v.Words[i] = "w" + itoa(i)
	}
	for i := range v.Data {
		v.Data[i] = float32(rng.NormFloat64())
	}
	return v
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// bruteForce ranks every other row against row q in float64, straight from
// the metric's definition.
func bruteForce(v *vectors.Vectors, q, k int, m Metric) []Neighbor {
	row := func(i int) []float32 { return v.Data[i*v.Dim : (i+1)*v.Dim] }
	dot := func(a, b []float32) float64 {
		var s float64
		for j := range a {
			s += float64(a[j]) * float64(b[j])
		}
		return s
	}
	var all []Neighbor
	for i := range v.Words {
		if i == q {
			continue
		}
		a, b := row(q), row(i)
		var s float64
		switch m {
		case MetricCosine:
			s = dot(a, b) / math.Sqrt(dot(a, a)*dot(b, b))
		case MetricDot:
			s = dot(a, b)
		default:
			s = math.Sqrt(dot(a, a) + dot(b, b) - 2*dot(a, b))
		}
		all = append(all, Neighbor{v.Words[i], s})
	}
	sort.SliceStable(all, func(i, j int) bool {
		if m == MetricEuclidean {
			return all[i].Score < all[j].Score
		}
		return all[i].Score > all[j].Score
	})
	return all[:k]
}

// TestMatchesBruteForce checks every metric on random vectors against the
// definitions, serially and with the rows split across goroutines and into
// small blocks, one query at a time and in batches.
func TestMatchesBruteForce(t *testing.T) {
	v := randomVectors(7, 1000, 24)
	queries := []string{"w0", "w1", "w17", "w500", "w999"}
	rows := []int{0, 1, 17, 500, 999}
	for _, par := range []int{1, 3} {
		x := mustIndex(t, v, Config{Parallel: par})
		x.block = 70 // several blocks, and parts of unequal blocks
		for _, m := range []Metric{MetricCosine, MetricDot, MetricEuclidean} {
			batch, err := x.NeighborsBatch(queries, 8, m)
			if err != nil {
				t.Fatal(err)
			}
			for i, q := range queries {
				want := bruteForce(v, rows[i], 8, m)
				one, err := x.Neighbors(q, 8, m)
				if err != nil {
					t.Fatal(err)
				}
				opt := cmpopts.EquateApprox(1e-5, 1e-5)
				if diff := cmp.Diff(want, one, opt); diff != "" {
					t.Errorf("parallel %d %v %s (-brute +index):\n%s", par, m, q, diff)
				}
				if diff := cmp.Diff(one, batch[i]); diff != "" {
					t.Errorf("parallel %d %v %s (-one +batch):\n%s", par, m, q, diff)
				}
			}
		}
	}
}

func TestKBeyondVocabulary(t *testing.T) {
	x := mustIndex(t, plane(), DefaultConfig())
	got, err := x.Neighbors("a", 1000, MetricCosine)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 { // every word but a
		t.Errorf("got %d neighbours, want the other 6 words", len(got))
	}
	res, err := x.Analogy("a", "b", "c", 1000, Method3CosMul)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 4 { // 7 words less a, b, c
		t.Errorf("got %d answers, want 4", len(res))
	}
}
