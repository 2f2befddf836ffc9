package vectors

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// benchFiles holds 145,000 vectors of dimension 100 (the size of a small
// trained vocabulary) in both formats, built once.
var benchFiles = sync.OnceValues(func() (bin, text []byte) {
	const n, dim = 145_000, 100
	r := rand.New(rand.NewPCG(7, 7))
	v := &Vectors{Words: make([]string, n), Dim: dim, Data: make([]float32, n*dim)}
	for i := range v.Words {
		v.Words[i] = fmt.Sprintf("word%d", i)
	}
	for i := range v.Data {
		v.Data[i] = float32(r.NormFloat64() * 0.3)
	}
	var b, t bytes.Buffer
	if err := WriteBinary(&b, v); err != nil {
		panic(err)
	}
	if err := WriteText(&t, v); err != nil {
		panic(err)
	}
	return b.Bytes(), t.Bytes()
})

func benchRead(b *testing.B, data []byte, f Format) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		v, err := Read(bytes.NewReader(data), "bench", ReadOptions{Format: f})
		if err != nil || v.Len() != 145_000 {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadBinary reads 145k x 100 binary vectors; it should take well
// under a second.
func BenchmarkReadBinary(b *testing.B) {
	bin, _ := benchFiles()
	benchRead(b, bin, FormatAuto)
}

// BenchmarkReadText reads the same vectors as text.
func BenchmarkReadText(b *testing.B) {
	_, text := benchFiles()
	benchRead(b, text, FormatAuto)
}

// BenchmarkWriteBinary writes them as binary.
func BenchmarkWriteBinary(b *testing.B) {
	bin, _ := benchFiles()
	v, err := Read(bytes.NewReader(bin), "bench", ReadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(bin)))
	for b.Loop() {
		var buf bytes.Buffer
		if err := WriteBinary(&buf, v); err != nil {
			b.Fatal(err)
		}
	}
}
