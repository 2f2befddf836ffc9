package ps

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

func TestInitRowHandValues(t *testing.T) {
	// The top 24 bits of the first four outputs of the documented stream, worked out with an
	// independent script (Python integers) for seed 42, row 7; the value is
	// (u24/2^24 - 0.5)/4, exact in float32 for dim 4.
	tests := []struct {
		table skipgridpb.Table
		u24   [4]float64
	}{
		{input, [4]float64{13249925, 10715540, 16715557, 7014264}},
		{output, [4]float64{4585559, 10055932, 8570899, 518829}},
	}
	for _, tc := range tests {
		want := make([]float32, 4)
		for i, u := range tc.u24 {
			want[i] = float32((u/(1<<24) - 0.5) / 4)
		}
		got := make([]float32, 4)
		InitRow(42, tc.table, 7, got)
		if diff := cmp.Diff(want, got, bitwise); diff != "" {
			t.Errorf("InitRow(42, %v, 7) (-want +got):\n%s", tc.table, diff)
		}
	}
}

func TestInitRowRange(t *testing.T) {
	for _, dim := range []int{1, 3, 100, 300} {
		hi := 0.5 / float32(dim)
		row := make([]float32, dim)
		var lo, top float32
		for r := range uint32(2000) {
			InitRow(7, input, r, row)
			for _, v := range row {
				if v < -hi || v >= hi {
					t.Fatalf("dim %d row %d: %g outside [%g, %g)", dim, r, v, -hi, hi)
				}
				lo, top = min(lo, v), max(top, v)
			}
		}
		// 2000*dim uniform draws reach within 1% of both ends of the interval.
		if lo > -0.98*hi || top < 0.98*hi {
			t.Errorf("dim %d: draws span [%g, %g], want close to [%g, %g)", dim, lo, top, -hi, hi)
		}
	}
	// Different seeds, tables and rows start differently.
	a, b, c, d := make([]float32, 4), make([]float32, 4), make([]float32, 4), make([]float32, 4)
	InitRow(1, input, 5, a)
	InitRow(2, input, 5, b)
	InitRow(1, output, 5, c)
	InitRow(1, input, 6, d)
	if cmp.Equal(a, b) || cmp.Equal(a, c) || cmp.Equal(a, d) {
		t.Errorf("rows repeat: %v %v %v %v", a, b, c, d)
	}
}

// TestInitSameAcrossShardCounts configures the same job on one shard and on three, and checks
// that every row starts with the same values, which are InitRow's.
func TestInitSameAcrossShardCounts(t *testing.T) {
	single := configured(t, 0, 1)
	all := owned(t, 0, 1)
	want := pull(t, single, input, all)
	for i, id := range all {
		row := make([]float32, testDim)
		InitRow(testSeed, input, id, row)
		if diff := cmp.Diff(row, want[i*testDim:(i+1)*testDim], bitwise); diff != "" {
			t.Fatalf("row %d differs from InitRow (-InitRow +pulled):\n%s", id, diff)
		}
	}

	got := make([]float32, len(want))
	for sh := range 3 {
		s := configured(t, sh, 3)
		ids := owned(t, sh, 3)
		vals := pull(t, s, input, ids)
		for i, id := range ids {
			copy(got[int(id)*testDim:], vals[i*testDim:(i+1)*testDim])
		}
		zeros := pull(t, s, output, ids)
		if diff := cmp.Diff(make([]float32, len(zeros)), zeros); diff != "" {
			t.Errorf("shard %d: INIT_ZERO table not zero (-want +got):\n%s", sh, diff)
		}
	}
	if diff := cmp.Diff(want, got, bitwise); diff != "" {
		t.Errorf("rows on 3 shards differ from 1 shard (-one +three):\n%s", diff)
	}
}
