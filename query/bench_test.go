package query

import (
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"github.com/skipgrid/skipgrid/vectors"
)

// The benchmark vectors: 50,000 seeded random words of dimension 100
// (20 MB of float32), about the size of a small trained vocabulary.
const benchWords, benchDim = 50_000, 100

var benchVectors = sync.OnceValue(func() *vectors.Vectors {
	return randomVectors(99, benchWords, benchDim)
})

// benchQueries returns n query words spread over the vocabulary.
func benchQueries(n int) []string {
	v := benchVectors()
	out := make([]string, n)
	for i := range out {
		out[i] = v.Words[(i*7919)%len(v.Words)]
	}
	return out
}

// BenchmarkLoad reads a binary vectors file and builds its index.
func BenchmarkLoad(b *testing.B) {
	path := filepath.Join(b.TempDir(), "v.bin")
	if err := vectors.WriteFile(path, benchVectors(), vectors.FormatBinary); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(benchWords * (benchDim*4 + 8)))
	for b.Loop() {
		if _, err := LoadFile(path, vectors.ReadOptions{}, DefaultConfig()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchWords)*float64(b.N)/b.Elapsed().Seconds(), "words/s")
}

// benchNeighbors measures top-10 cosine queries, batch words a call.
func benchNeighbors(b *testing.B, cfg Config, batch int) {
	x := mustIndex(b, benchVectors(), cfg)
	qs := benchQueries(1024)
	i := 0
	for b.Loop() {
		words := qs[i%len(qs) : i%len(qs)+batch]
		if _, err := x.NeighborsBatch(words, 10, MetricCosine); err != nil {
			b.Fatal(err)
		}
		i += batch
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "queries/s")
}

func BenchmarkNeighbors(b *testing.B)        { benchNeighbors(b, DefaultConfig(), 1) }
func BenchmarkNeighborsBatch64(b *testing.B) { benchNeighbors(b, DefaultConfig(), 64) }

func BenchmarkNeighborsParallel(b *testing.B) {
	benchNeighbors(b, Config{Parallel: runtime.GOMAXPROCS(0)}, 1)
}

func BenchmarkNeighborsEuclidean(b *testing.B) {
	x := mustIndex(b, benchVectors(), DefaultConfig())
	for b.Loop() {
		if _, err := x.Neighbors("w12345", 10, MetricEuclidean); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAnalogy3CosMul(b *testing.B) {
	x := mustIndex(b, benchVectors(), DefaultConfig())
	for b.Loop() {
		if _, err := x.Analogy("w1", "w2", "w3", 10, Method3CosMul); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProducts compares the two ways of taking the products of 64
// unit queries with every row that gonum offers: the Sgemv per query and
// block that scan uses, and one Sgemm per block (C = Q·Bᵀ). It is why scan
// does not use Sgemm.
func BenchmarkProducts(b *testing.B) {
	x := mustIndex(b, benchVectors(), DefaultConfig())
	const nq = 64
	q := blas32.General{Rows: nq, Cols: benchDim, Stride: benchDim,
		Data: x.v.Data[:nq*benchDim]}
	y := make([]float32, nq*x.block)
	block := func(start int) (blas32.General, int) {
		m := min(x.block, x.Len()-start)
		return blas32.General{Rows: m, Cols: benchDim, Stride: benchDim,
			Data: x.v.Data[start*benchDim : (start+m)*benchDim]}, m
	}

	b.Run("gemv", func(b *testing.B) {
		for b.Loop() {
			for start := 0; start < x.Len(); start += x.block {
				a, m := block(start)
				for j := range nq {
					blas32.Gemv(blas.NoTrans, 1, a,
						blas32.Vector{N: benchDim, Inc: 1, Data: q.Data[j*benchDim:]}, 0,
						blas32.Vector{N: m, Inc: 1, Data: y[j*x.block:]})
				}
			}
		}
		b.ReportMetric(float64(b.N*nq)/b.Elapsed().Seconds(), "queries/s")
	})
	b.Run("gemm", func(b *testing.B) {
		for b.Loop() {
			for start := 0; start < x.Len(); start += x.block {
				a, m := block(start)
				c := blas32.General{Rows: nq, Cols: m, Stride: x.block, Data: y}
				blas32.Gemm(blas.NoTrans, blas.Trans, 1, q, a, 0, c)
			}
		}
		b.ReportMetric(float64(b.N*nq)/b.Elapsed().Seconds(), "queries/s")
	})
}
