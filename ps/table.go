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

	// stripes[l%numStripes] guards row l of data and ver. Hold at most one stripe at a time.
	stripes [numStripes]sync.RWMutex
	data    []float32
	// ver[l] counts the pushes applied to row l since the process started (modulo 2^32).
	ver []uint32
}

func newTable(id skipgridpb.Table, m *shard.Map, localRows, dim int) *table {
	return &table{id: id, dim: dim, m: m, data: make([]float32, localRows*dim),
		ver: make([]uint32, localRows)}
}

// row returns the storage of local row l. Callers hold l's stripe, or own the table alone.
func (t *table) row(l uint32) []float32 {
	off := int(l) * t.dim
	return t.data[off : off+t.dim : off+t.dim]
}

// read copies local row l into dst under l's read lock and returns its version.
func (t *table) read(l uint32, dst []float32) uint32 {
	mu := &t.stripes[l%numStripes]
	mu.RLock()
	copy(dst, t.row(l))
	v := t.ver[l]
	mu.RUnlock()
	return v
}

// noVersion marks a delta sent without the version it was computed from.
const noVersion = -1

// add adds delta to local row l under l's write lock, divided by its staleness, the pushes
// applied to the row since version pulled, when that is above 1 (noVersion: never). One
// push in between is the normal overlap of two workers and is not damped; more means many
// workers moved the row from the same start, and their deltas would add up to several
// times the step each took (measured: the Wikipedia sample diverges with 3 or 4 workers
// without it). A version ahead of the row's (a row restored from a checkpoint, whose counts
// started again) counts as fresh.
func (t *table) add(l uint32, delta []float32, pulled int64) {
	mu := &t.stripes[l%numStripes]
	mu.Lock()
	r := t.row(l)
	scale := float32(1)
	if pulled != noVersion {
		if stale := t.ver[l] - uint32(pulled); stale > 1 && stale < 1<<31 {
			scale = 1 / float32(stale)
		}
	}
	if scale == 1 {
		for i, d := range delta[:len(r)] {
			r[i] += d
		}
	} else {
		for i, d := range delta[:len(r)] {
			r[i] += scale * d
		}
	}
	t.ver[l]++
	mu.Unlock()
}

// bytes is the size of the table's values.
func (t *table) bytes() uint64 { return uint64(len(t.data)) * 4 }
