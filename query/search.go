package query

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"golang.org/x/sync/errgroup"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// batchQueries is the most query rows scored against one block of rows at a
// time; their products fill a buffer of batchQueries*block values.
const batchQueries = 64

// ranker turns the products of one block of rows into keys and offers them
// to the heaps. y holds, for each query row, m products stride apart; the
// block starts at row start.
type ranker func(y []float32, stride, start, m int, hs []topK)

// search is one exhaustive search: nq query rows of dim values, the ranker
// that reads their products, and a constructor of empty heaps.
type search struct {
	q     []float32
	nq    int
	rank  ranker
	heaps func() []topK
}

// run scores every row of the index for s, splitting the rows across
// cfg.Parallel goroutines, and returns the merged heaps.
func (x *Index) run(s search) []topK {
	parts := splitRows(x.Len(), x.cfg.Parallel, x.block)
	if len(parts) == 1 {
		hs := s.heaps()
		x.scan(s, 0, x.Len(), hs)
		return hs
	}

	all := make([][]topK, len(parts))
	var g errgroup.Group
	for p, r := range parts {
		g.Go(func() error {
			all[p] = s.heaps()
			x.scan(s, r[0], r[1], all[p])
			return nil
		})
	}
	_ = g.Wait() // scans return no errors

	hs := all[0]
	for _, o := range all[1:] {
		for j := range hs {
			hs[j].merge(&o[j])
		}
	}
	return hs
}

// scan scores rows [lo, hi) for s, one block of rows at a time: one
// matrix-vector product (gonum's Sgemv) per query row while the block is in
// cache, then the ranker.
//
// A batch uses Sgemv per query rather than one Sgemm per block: gonum's
// float32 Sgemm measured slower for these shapes than the Sgemv loop (see
// BenchmarkProducts).
func (x *Index) scan(s search, lo, hi int, hs []topK) {
	bp := x.buffer(s.nq * x.block)
	defer x.pool.Put(bp)
	y, dim := *bp, x.v.Dim
	for start := lo; start < hi; start += x.block {
		m := min(x.block, hi-start)
		a := blas32.General{Rows: m, Cols: dim, Stride: dim,
			Data: x.v.Data[start*dim : (start+m)*dim]}
		for j := range s.nq {
			q := blas32.Vector{N: dim, Inc: 1, Data: s.q[j*dim : (j+1)*dim]}
			out := blas32.Vector{N: m, Inc: 1, Data: y[j*x.block : j*x.block+m]}
			blas32.Gemv(blas.NoTrans, 1, a, q, 0, out)
		}
		s.rank(y, x.block, start, m, hs)
	}
}

// buffer returns a pooled buffer of at least n values.
func (x *Index) buffer(n int) *[]float32 {
	bp, _ := x.pool.Get().(*[]float32)
	if bp == nil || cap(*bp) < n {
		b := make([]float32, n)
		return &b
	}
	*bp = (*bp)[:n]
	return bp
}

// rankCosine offers each product as it is: the cosine, for unit queries.
func rankCosine(y []float32, stride, start, m int, hs []topK) {
	for j := range hs {
		h := &hs[j]
		thr := h.threshold()
		for i, s := range y[j*stride : j*stride+m] {
			if s >= thr {
				h.offer(s, int32(start+i))
				thr = h.threshold()
			}
		}
	}
}

// rankDot offers the product times the row's norm: the dot product over the
// query's norm, which ranks the same.
func (x *Index) rankDot(y []float32, stride, start, m int, hs []topK) {
	norms := x.norms[start : start+m]
	for j := range hs {
		h := &hs[j]
		thr := h.threshold()
		for i, s := range y[j*stride : j*stride+m] {
			if key := s * norms[i]; key >= thr {
				h.offer(key, int32(start+i))
				thr = h.threshold()
			}
		}
	}
}

// rankEuclidean returns a ranker for queries of norms qn that offers
// 2*|q|*|x|*cos - |x|^2, which is |q|^2 - |q-x|^2: larger is nearer.
func (x *Index) rankEuclidean(qn []float32) ranker {
	return func(y []float32, stride, start, m int, hs []topK) {
		norms, sq := x.norms[start:start+m], x.sq[start:start+m]
		for j := range hs {
			h := &hs[j]
			thr, q2 := h.threshold(), 2*qn[j]
			for i, s := range y[j*stride : j*stride+m] {
				if key := q2*norms[i]*s - sq[i]; key >= thr {
					h.offer(key, int32(start+i))
					thr = h.threshold()
				}
			}
		}
	}
}

// rankCosMul offers 3CosMul's score to the one heap, from the products of
// the unit rows of a, b and c (in that order).
func rankCosMul(y []float32, stride, start, m int, hs []topK) {
	h := &hs[0]
	thr := h.threshold()
	ya, yb, yc := y[:m], y[stride:stride+m], y[2*stride:2*stride+m]
	for i := range m {
		key := (1 + yb[i]) / 2 * ((1 + yc[i]) / 2) / ((1+ya[i])/2 + CosMulEpsilon)
		if key >= thr {
			h.offer(key, int32(start+i))
			thr = h.threshold()
		}
	}
}

// Neighbors returns the k nearest words of word under m, best first,
// leaving out word itself: the largest cosines or dot products, or the
// smallest Euclidean distances. Fewer than k come back when the vocabulary
// is smaller. Ties go to the earlier row.
func (x *Index) Neighbors(word string, k int, m Metric) ([]Neighbor, error) {
	res, err := x.NeighborsBatch([]string{word}, k, m)
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

// NeighborsBatch answers Neighbors for each word, scoring each block of
// rows against many words while it is in cache, which is faster than one
// call per word. The first unknown word fails the whole batch.
func (x *Index) NeighborsBatch(words []string, k int, m Metric) ([][]Neighbor, error) {
	if err := checkKMetric(k, m); err != nil {
		return nil, err
	}
	rows := make([]int, len(words))
	for i, w := range words {
		r, err := x.Lookup(w)
		if err != nil {
			return nil, err
		}
		rows[i] = r
	}

	dim := x.v.Dim
	q := make([]float32, 0, len(rows)*dim)
	qn := make([]float32, len(rows))
	skips := make([][]int32, len(rows))
	for i, r := range rows {
		q = append(q, x.unit(r)...)
		qn[i] = x.norms[r]
		skips[i] = []int32{int32(r)}
	}
	return x.knn(q, qn, skips, k, m), nil
}

// NeighborsOfVector returns the k nearest words of vec under m, best first.
// vec must have Dim finite values; no word is left out.
func (x *Index) NeighborsOfVector(vec []float32, k int, m Metric) ([]Neighbor, error) {
	if err := checkKMetric(k, m); err != nil {
		return nil, err
	}
	if len(vec) != x.v.Dim {
		return nil, fmt.Errorf("%w: the vector has %d values, the index dimension %d",
			ErrInvalidArgument, len(vec), x.v.Dim)
	}
	var ss float64
	for _, f := range vec {
		ss += float64(f) * float64(f)
	}
	if math.IsNaN(ss) || math.IsInf(ss, 0) {
		return nil, fmt.Errorf("%w: the vector holds a NaN or infinite value",
			ErrInvalidArgument)
	}
	norm := math.Sqrt(ss)
	q := make([]float32, len(vec))
	if norm > 0 {
		for j, f := range vec {
			q[j] = float32(float64(f) / norm)
		}
	}
	return x.knn(q, []float32{float32(norm)}, [][]int32{nil}, k, m)[0], nil
}

// checkKMetric checks the arguments every search takes.
func checkKMetric(k int, m Metric) error {
	if k < 1 {
		return fmt.Errorf("%w: k is %d, must be at least 1", ErrInvalidArgument, k)
	}
	if !m.valid() {
		return fmt.Errorf("%w: %v: use cosine, dot or euclidean", ErrInvalidArgument, m)
	}
	return nil
}

// knn searches for the unit query rows q (of norms qn), batchQueries at a
// time, and returns each query's neighbours with their scores under m.
func (x *Index) knn(q, qn []float32, skips [][]int32, k int, m Metric) [][]Neighbor {
	dim := x.v.Dim
	out := make([][]Neighbor, len(qn))
	for lo := 0; lo < len(qn); lo += batchQueries {
		hi := min(lo+batchQueries, len(qn))
		s := search{q: q[lo*dim : hi*dim], nq: hi - lo, heaps: func() []topK {
			hs := make([]topK, hi-lo)
			for j := range hs {
				hs[j] = newTopK(k, skips[lo+j])
			}
			return hs
		}}
		switch m {
		case MetricCosine:
			s.rank = rankCosine
		case MetricDot:
			s.rank = x.rankDot
		default:
			s.rank = x.rankEuclidean(qn[lo:hi])
		}
		for j, h := range x.run(s) {
			out[lo+j] = x.finish(&h, m, q[(lo+j)*dim:(lo+j+1)*dim], float64(qn[lo+j]))
		}
	}
	return out
}

// finish turns the hits of a query (unit row u, norm) into neighbours with
// their scores under m. Euclidean distances are recomputed in float64 from
// the rows and the hits sorted again by distance, then row, so that neither
// scores nor order suffer the cancellation in the ranking keys.
func (x *Index) finish(h *topK, m Metric, u []float32, norm float64) []Neighbor {
	hits := h.sorted()
	out := make([]Neighbor, len(hits))
	if m == MetricEuclidean {
		type scored struct {
			d   float64
			row int32
		}
		ss := make([]scored, len(hits))
		for i, c := range hits {
			ss[i] = scored{x.score(int(c.row), u, norm, MetricEuclidean), c.row}
		}
		slices.SortFunc(ss, func(a, b scored) int {
			return cmp.Or(cmp.Compare(a.d, b.d), cmp.Compare(a.row, b.row))
		})
		for i, s := range ss {
			out[i] = Neighbor{Word: x.v.Words[s.row], Score: s.d}
		}
		return out
	}

	for i, c := range hits {
		out[i] = Neighbor{Word: x.v.Words[c.row], Score: float64(c.key)}
		if m == MetricDot {
			out[i].Score *= norm
		}
	}
	return out
}

// Analogy answers "a is to b as c is to ?" with the k best words under
// method, leaving out a, b and c. Scores are 3CosAdd's sum of cosines or
// 3CosMul's quotient (see AnalogyMethod). Unknown words are errors wrapping
// ErrUnknownWord.
func (x *Index) Analogy(a, b, c string, k int, method AnalogyMethod) ([]Neighbor, error) {
	if k < 1 {
		return nil, fmt.Errorf("%w: k is %d, must be at least 1", ErrInvalidArgument, k)
	}
	if !method.valid() {
		return nil, fmt.Errorf("%w: %v: use 3cosadd or 3cosmul", ErrInvalidArgument, method)
	}
	var rows [3]int
	for i, w := range []string{a, b, c} {
		r, err := x.Lookup(w)
		if err != nil {
			return nil, err
		}
		rows[i] = r
	}

	skip := []int32{int32(rows[0]), int32(rows[1]), int32(rows[2])}
	s := search{heaps: func() []topK { return []topK{newTopK(k, skip)} }}
	ua, ub, uc := x.unit(rows[0]), x.unit(rows[1]), x.unit(rows[2])
	if method == Method3CosAdd {
		// The sum of cosines is the cosine product with b - a + c.
		s.q, s.nq, s.rank = make([]float32, len(ua)), 1, rankCosine
		for j := range s.q {
			s.q[j] = ub[j] - ua[j] + uc[j]
		}
	} else {
		s.q, s.nq, s.rank = slices.Concat(ua, ub, uc), 3, rankCosMul
	}

	hits := x.run(s)[0].sorted()
	out := make([]Neighbor, len(hits))
	for i, h := range hits {
		out[i] = Neighbor{Word: x.v.Words[h.row], Score: float64(h.key)}
	}
	return out, nil
}
