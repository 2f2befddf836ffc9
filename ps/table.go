package ps

import (
	"sync"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/shard"
)

// numStripes is the number of row locks per table. Enough that concurrent pushes of disjoint
// minibatches rarely meet on a stripe, few enough to cost nothing (24 KiB a table).
const numStripes = 1024

// table is one table's rows on this shard: localRows rows of dim values, row-major, row with
// local index l at data[l*dim:(l+1)*dim].
type table struct {
	id  skipgridpb.Table
	dim int
	// m places the table's rows: the job's map, or the table's own when its rows differ.
	m *shard.Map

	// stripes[l%numStripes] guards row l of data. Hold at most one stripe at a time.
	stripes [numStripes]sync.RWMutex
	data    []float32
}

func newTable(id skipgridpb.Table, m *shard.Map, localRows, dim int) *table {
	return &table{id: id, dim: dim, m: m, data: make([]float32, localRows*dim)}
}

// row returns the storage of local row l. Callers hold l's stripe, or own the table alone.
func (t *table) row(l uint32) []float32 {
	off := int(l) * t.dim
	return t.data[off : off+t.dim : off+t.dim]
}

// read copies local row l into dst under l's read lock.
func (t *table) read(l uint32, dst []float32) {
	mu := &t.stripes[l%numStripes]
	mu.RLock()
	copy(dst, t.row(l))
	mu.RUnlock()
}

// add adds delta to local row l under l's write lock.
func (t *table) add(l uint32, delta []float32) {
	mu := &t.stripes[l%numStripes]
	mu.Lock()
	r := t.row(l)
	for i, d := range delta[:len(r)] {
		r[i] += d
	}
	mu.Unlock()
}

// bytes is the size of the table's values.
func (t *table) bytes() uint64 { return uint64(len(t.data)) * 4 }
