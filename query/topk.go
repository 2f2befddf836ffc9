package query

import (
	"math"
	"slices"
)

// hit is a candidate row and its ranking key: larger keys rank first, and
// of equal keys the lower row (the more frequent word).
type hit struct {
	key float32
	row int32
}

// before reports whether a ranks before b.
func (a hit) before(b hit) bool {
	return a.key > b.key || (a.key == b.key && a.row < b.row)
}

// topK keeps the k best hits offered, leaving out the rows in skip. It is a
// binary heap whose root is the worst hit kept, so a candidate is compared
// with one hit and most are turned away at once.
type topK struct {
	k    int
	skip []int32
	h    []hit
}

// newTopK returns an empty topK for k hits; skip is kept, not copied.
func newTopK(k int, skip []int32) topK {
	return topK{k: k, skip: skip, h: make([]hit, 0, min(k, 1<<16))}
}

// threshold returns the key a candidate must reach to be considered: the
// worst kept key once k hits are kept, -Inf before.
func (t *topK) threshold() float32 {
	if len(t.h) < t.k {
		return float32(math.Inf(-1))
	}
	return t.h[0].key
}

// offer considers row with key.
func (t *topK) offer(key float32, row int32) {
	c := hit{key, row}
	full := len(t.h) == t.k
	if full && !c.before(t.h[0]) {
		return
	}
	if slices.Contains(t.skip, row) {
		return
	}
	if !full {
		t.h = append(t.h, c)
		t.up(len(t.h) - 1)
		return
	}
	t.h[0] = c
	t.down(0)
}

// up restores the heap after a hit was placed at i, moving it towards the
// root while it ranks after its parent.
func (t *topK) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !t.h[p].before(t.h[i]) {
			return
		}
		t.h[p], t.h[i] = t.h[i], t.h[p]
		i = p
	}
}

// down restores the heap after the hit at i was replaced, moving it away
// from the root while a child ranks after it.
func (t *topK) down(i int) {
	n := len(t.h)
	for {
		w := i
		if l := 2*i + 1; l < n && t.h[w].before(t.h[l]) {
			w = l
		}
		if r := 2*i + 2; r < n && t.h[w].before(t.h[r]) {
			w = r
		}
		if w == i {
			return
		}
		t.h[w], t.h[i] = t.h[i], t.h[w]
		i = w
	}
}

// merge offers every hit of o to t.
func (t *topK) merge(o *topK) {
	for _, c := range o.h {
		t.offer(c.key, c.row)
	}
}

// sorted returns the kept hits, best first. It reorders t's storage.
func (t *topK) sorted() []hit {
	slices.SortFunc(t.h, func(a, b hit) int {
		if a.before(b) {
			return -1
		}
		if b.before(a) {
			return 1
		}
		return 0
	})
	return t.h
}
