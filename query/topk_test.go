package query

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTopK(t *testing.T) {
	// Keep 3 of: row 0 key 1, row 1 key 5, row 2 key 3 (skipped), row 3
	// key 5, row 4 key 2, row 5 key 4, row 6 key 4. Best first: 5 (row 1,
	// then row 3 of the same key), then 4 (row 5 before row 6).
	tk := newTopK(3, []int32{2})
	for row, key := range []float32{1, 5, 3, 5, 2, 4, 4} {
		tk.offer(key, int32(row))
	}
	want := []hit{{5, 1}, {5, 3}, {4, 5}}
	if diff := cmp.Diff(want, tk.sorted(), cmp.AllowUnexported(hit{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestTopKMerge(t *testing.T) {
	// Two halves of rows 0..5 with keys 0, 6, 2, 5, 9, 1: the best 2 of
	// all are row 4 (9) and row 1 (6), whichever half holds them.
	a, b := newTopK(2, nil), newTopK(2, nil)
	for row, key := range []float32{0, 6, 2} {
		a.offer(key, int32(row))
	}
	for row, key := range []float32{5, 9, 1} {
		b.offer(key, int32(row+3))
	}
	a.merge(&b)
	want := []hit{{9, 4}, {6, 1}}
	if diff := cmp.Diff(want, a.sorted(), cmp.AllowUnexported(hit{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
