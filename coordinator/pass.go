package coordinator

import (
	"slices"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// task names one unit of work of a pass: a chunk in a round (the counting pass has one round,
// the training pass one round per epoch).
type task struct {
	Round int `json:"round"`
	Chunk int `json:"chunk"`
}

// pass schedules the tasks of one kind, rounds x chunks of them, in (round, chunk) order.
// Tasks are numbered flat (round*chunks + chunk). A task is pending, leased (by exactly one
// lease) or done; a leased task that is released goes back to the pending set, ahead of every
// task after it. A pass is plain data so that it can be saved and restored.
type pass struct {
	Kind   skipgridpb.TaskKind `json:"kind"`
	Rounds int                 `json:"rounds"`
	Chunks int                 `json:"chunks"`
	// Next is the first task never leased; every task before it was leased at least once.
	Next int `json:"next"`
	// Retry holds released tasks, ascending.
	Retry []int `json:"retry"`
	// Done marks completed tasks.
	Done []bool `json:"done"`
	// Attempts counts the leases of each task.
	Attempts []uint16 `json:"attempts"`
	// DoneInRound counts the completed tasks of each round.
	DoneInRound []int `json:"done_in_round"`
	// DoneTotal counts all completed tasks.
	DoneTotal int `json:"done_total"`
}

func newPass(kind skipgridpb.TaskKind, rounds, chunks int) *pass {
	return &pass{
		Kind:        kind,
		Rounds:      rounds,
		Chunks:      chunks,
		Done:        make([]bool, rounds*chunks),
		Attempts:    make([]uint16, rounds*chunks),
		DoneInRound: make([]int, rounds),
	}
}

func (p *pass) total() int { return p.Rounds * p.Chunks }

func (p *pass) task(i int) task { return task{Round: i / p.Chunks, Chunk: i % p.Chunks} }

func (p *pass) index(t task) int { return t.Round*p.Chunks + t.Chunk }

// take returns the lowest pending task and counts the attempt; false when every task is
// leased or done.
func (p *pass) take() (int, bool) {
	i := -1
	switch {
	case len(p.Retry) > 0 && (p.Next >= p.total() || p.Retry[0] < p.Next):
		i = p.Retry[0]
		p.Retry = p.Retry[1:]
	case p.Next < p.total():
		i = p.Next
		p.Next++
	default:
		return 0, false
	}
	if p.Attempts[i] < ^uint16(0) {
		p.Attempts[i]++
	}
	return i, true
}

// release puts leased task i back in the pending set.
func (p *pass) release(i int) {
	at, _ := slices.BinarySearch(p.Retry, i)
	p.Retry = slices.Insert(p.Retry, at, i)
}

// finish marks leased task i done and reports whether its round is now complete.
func (p *pass) finish(i int) (roundDone bool) {
	p.Done[i] = true
	p.DoneTotal++
	r := i / p.Chunks
	p.DoneInRound[r]++
	return p.DoneInRound[r] == p.Chunks
}

// complete reports whether every task is done.
func (p *pass) complete() bool { return p.DoneTotal == p.total() }

// openRound returns the lowest round with a task not done (Rounds when all are done).
func (p *pass) openRound() int {
	for r, n := range p.DoneInRound {
		if n < p.Chunks {
			return r
		}
	}
	return p.Rounds
}
