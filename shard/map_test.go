package shard

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNewMapRejectsBadArguments(t *testing.T) {
	tests := []struct {
		name   string
		rows   uint64
		shards int
		nErrs  int
	}{
		{"zero shards", 10, 0, 1},
		{"negative shards", 10, -3, 1},
		{"too many shards", 10, maxShards + 1, 1},
		{"too many rows", 1<<32 + 1, 2, 1},
		{"both wrong", math.MaxUint64, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewMap(tt.rows, tt.shards)
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("NewMap(%d, %d) = %v, %v; want ErrInvalidArgument", tt.rows,
					tt.shards, m, err)
			}
			joined, ok := err.(interface{ Unwrap() []error })
			if !ok || len(joined.Unwrap()) != tt.nErrs {
				t.Errorf("NewMap(%d, %d) error %q: want %d problems reported", tt.rows,
					tt.shards, err, tt.nErrs)
			}
		})
	}
}

func TestCheckMapArgsAcceptsLimits(t *testing.T) {
	// 2^32 rows (ids 0..2^32-1) and 65536 shards are the largest valid values;
	// NewMap itself is not run on them because the row table would take 16 GiB.
	for _, a := range []struct {
		rows   uint64
		shards int
	}{{1 << 32, 1}, {0, 1}, {5, maxShards}} {
		if err := checkMapArgs(a.rows, a.shards); err != nil {
			t.Errorf("checkMapArgs(%d, %d) = %v, want nil", a.rows, a.shards, err)
		}
	}
}

func TestMapSmallByHand(t *testing.T) {
	// mix64(r) for r = 0..7 and JumpHash of it for 3 shards, from a separate
	// Python computation: shards 2,0,0,1,2,2,0,1. So shard 0 owns 1,2,6,
	// shard 1 owns 3,7 and shard 2 owns 0,4,5.
	m, err := NewMap(8, 3)
	if err != nil {
		t.Fatal(err)
	}
	wantShard := []int{2, 0, 0, 1, 2, 2, 0, 1}
	wantLocal := []uint32{0, 0, 1, 0, 1, 2, 2, 1}
	for r := range uint32(8) {
		if got := m.Shard(r); got != wantShard[r] {
			t.Errorf("Shard(%d) = %d, want %d", r, got, wantShard[r])
		}
		if got := m.Local(r); got != wantLocal[r] {
			t.Errorf("Local(%d) = %d, want %d", r, got, wantLocal[r])
		}
	}
	want := [][]uint32{{1, 2, 6}, {3, 7}, {0, 4, 5}}
	for s, w := range want {
		if diff := cmp.Diff(w, m.ShardRows(s)); diff != "" {
			t.Errorf("ShardRows(%d) (-want +got):\n%s", s, diff)
		}
	}
	if m.NumShards() != 3 || m.Rows() != 8 {
		t.Errorf("NumShards, Rows = %d, %d; want 3, 8", m.NumShards(), m.Rows())
	}
}

func TestMapShardRowsConsistent(t *testing.T) {
	// Property: for any size, the shards' row lists partition 0..rows-1, each
	// list ascends, and Local(ids[i]) == i and Shard(ids[i]) == s.
	rng := rand.New(rand.NewPCG(5, 6))
	for range 60 {
		rows := uint64(rng.IntN(3000))
		shards := 1 + rng.IntN(40)
		m, err := NewMap(rows, shards)
		if err != nil {
			t.Fatal(err)
		}
		seen := make([]bool, rows)
		for s := range shards {
			ids := m.ShardRows(s)
			for i, id := range ids {
				if i > 0 && ids[i-1] >= id {
					t.Fatalf("rows=%d shards=%d: ShardRows(%d) not ascending at %d", rows,
						shards, s, i)
				}
				if seen[id] {
					t.Fatalf("rows=%d shards=%d: row %d owned twice", rows, shards, id)
				}
				seen[id] = true
				if m.Shard(id) != s || m.Local(id) != uint32(i) {
					t.Fatalf("rows=%d shards=%d: row %d listed at %d of shard %d, but "+
						"Shard=%d Local=%d", rows, shards, id, i, s, m.Shard(id), m.Local(id))
				}
			}
		}
		for r, ok := range seen {
			if !ok {
				t.Fatalf("rows=%d shards=%d: row %d owned by no shard", rows, shards, r)
			}
		}
	}
}

func TestMapSpreadsEvenly(t *testing.T) {
	// Each of n shards should own rows/n rows; for a random assignment the
	// count is Binomial(rows, 1/n), so 5 standard deviations bound it.
	const rows = 100000
	for _, n := range []int{2, 3, 7, 16, 100} {
		m, err := NewMap(rows, n)
		if err != nil {
			t.Fatal(err)
		}
		owned := make([]int, n)
		for r := range uint32(rows) {
			owned[m.Shard(r)]++
		}
		p := 1 / float64(n)
		tol := 5 * math.Sqrt(rows*p*(1-p))
		for s := range n {
			got := float64(owned[s])
			if math.Abs(got-rows*p) > tol {
				t.Errorf("%d shards: shard %d owns %.0f rows, want %.0f ± %.0f", n, s, got,
					rows*p, tol)
			}
		}
	}
}

func TestMapStableWhenGrowing(t *testing.T) {
	// Growing from n to n+1 shards should move about rows/(n+1) rows (a
	// Binomial(rows, 1/(n+1)) count, bounded here by 5 standard deviations),
	// and every moved row must move to the new shard n.
	const rows = 200000
	prev, err := NewMap(rows, 1)
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 20; n++ {
		next, err := NewMap(rows, n+1)
		if err != nil {
			t.Fatal(err)
		}
		moved := 0
		for r := range uint32(rows) {
			from, to := prev.Shard(r), next.Shard(r)
			if from == to {
				continue
			}
			moved++
			if to != n {
				t.Fatalf("%d->%d shards: row %d moved from %d to %d, not to the new shard",
					n, n+1, r, from, to)
			}
		}
		p := 1 / float64(n+1)
		want, tol := rows*p, 5*math.Sqrt(rows*p*(1-p))
		if math.Abs(float64(moved)-want) > tol {
			t.Errorf("%d->%d shards: %d rows moved, want %.0f ± %.0f", n, n+1, moved, want, tol)
		}
		prev = next
	}
}

func TestMapPanicsOutOfRange(t *testing.T) {
	m, err := NewMap(4, 2)
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func(){
		"Shard(4)":      func() { m.Shard(4) },
		"Local(4)":      func() { m.Local(4) },
		"ShardRows(2)":  func() { m.ShardRows(2) },
		"ShardRows(-1)": func() { m.ShardRows(-1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", name)
				}
			}()
			f()
		}()
	}
}

func BenchmarkMapShard(b *testing.B) {
	m, err := NewMap(1<<20, 8)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var sink int
	for i := range b.N {
		sink += m.Shard(uint32(i) & (1<<20 - 1))
	}
	_ = sink
}
