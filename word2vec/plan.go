package word2vec

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

// Model selects the training architecture.
type Model int

const (
	// SkipGram predicts each context word from the centre word.
	SkipGram Model = iota + 1
	// CBOW predicts the centre word from the mean of its context.
	CBOW
)

// String names the model as the command line does.
func (m Model) String() string {
	switch m {
	case SkipGram:
		return "sg"
	case CBOW:
		return "cbow"
	}
	return fmt.Sprintf("model(%d)", int(m))
}

// ParseModel reads "sg"/"skipgram" or "cbow".
func ParseModel(s string) (Model, error) {
	switch s {
	case "sg", "skipgram", "skip-gram":
		return SkipGram, nil
	case "cbow":
		return CBOW, nil
	}
	return 0, fmt.Errorf("word2vec: unknown model %q (want sg or cbow)", s)
}

// Params are the hyper-parameters the kernel needs.
type Params struct {
	Model    Model
	Dim      int
	Window   int
	Negative int
}

// Validate reports every invalid field at once.
func (p Params) Validate() error {
	var errs []error
	if p.Model != SkipGram && p.Model != CBOW {
		errs = append(errs, fmt.Errorf("model: %d is neither sg nor cbow", int(p.Model)))
	}
	if p.Dim < 1 || p.Dim > 4096 {
		errs = append(errs, fmt.Errorf("dim: %d outside 1..4096", p.Dim))
	}
	if p.Window < 1 || p.Window > 255 {
		errs = append(errs, fmt.Errorf("window: %d outside 1..255", p.Window))
	}
	if p.Negative < 1 || p.Negative > 1000 {
		errs = append(errs, fmt.Errorf("negative: %d outside 1..1000", p.Negative))
	}
	return errors.Join(errs...)
}

// Batch is a planned minibatch: every position as local row slots, with the random draws
// already made. The slices are owned by the Planner and valid until its next Plan.
type Batch struct {
	// In and Out are the input- and output-table slots of each position.
	In, Out []int32
	// Ends holds the end offset (exclusive) of each sentence in In and Out.
	Ends []int32
	// Shrink is word2vec's random window reduction b of each position: the position sees
	// Window-b words on each side.
	Shrink []uint8
	// Neg holds output slots of negatives, Negative per training target, in training order.
	Neg []int32
}

// Words is the number of positions in the batch.
func (b *Batch) Words() int { return len(b.In) }

// Planner turns sentences of row ids into Batches. It keeps vocabulary-sized slot maps, so
// one Planner serves one training goroutine; it is not safe for concurrent use.
type Planner struct {
	p       Params
	sampler *Sampler

	inSlot, outSlot []int32 // by row id; -1 when the row is not in the current batch

	// InIDs and OutIDs are the global row ids of the current batch's slots, by slot.
	InIDs, OutIDs []uint32

	batch Batch
}

// NewPlanner makes a planner for rows 0..sampler.Len()-1.
func NewPlanner(p Params, sampler *Sampler) (*Planner, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("word2vec: planner: %w", err)
	}
	pl := &Planner{
		p:       p,
		sampler: sampler,
		inSlot:  make([]int32, sampler.Len()),
		outSlot: make([]int32, sampler.Len()),
	}
	for i := range pl.inSlot {
		pl.inSlot[i] = -1
		pl.outSlot[i] = -1
	}
	return pl, nil
}

// Plan maps the sentences (row ids, flat, with Ends as in Batch) to a Batch, drawing window
// reductions and negatives from rng. The ids slices are not retained.
func (pl *Planner) Plan(ids []int32, ends []int32, rng *rand.PCG) *Batch {
	pl.reset()

	b := &pl.batch
	b.Ends = append(b.Ends, ends...)
	for _, id := range ids {
		b.In = append(b.In, pl.slotIn(id))
		b.Out = append(b.Out, pl.slotOut(id))
		b.Shrink = append(b.Shrink, uint8(rng.Uint64()%uint64(pl.p.Window)))
	}

	// Negatives, in the order Train consumes them: per training target of each position.
	start := int32(0)
	for _, end := range ends {
		for i := start; i < end; i++ {
			targets := pl.targets(i, start, end)
			for range targets * pl.p.Negative {
				b.Neg = append(b.Neg, pl.slotOut(pl.sampler.Draw(rng.Uint64())))
			}
		}
		start = end
	}
	return b
}

// targets is how many negative-sampling rounds position i trains: one per context word for
// Skip-Gram, one for CBOW when it has any context.
func (pl *Planner) targets(i, start, end int32) int {
	shrink := int32(pl.batch.Shrink[i])
	w := int32(pl.p.Window)
	lo := max(i-w+shrink, start)
	hi := min(i+w-shrink, end-1)
	ctx := int(hi - lo) // the window minus the centre
	if pl.p.Model == CBOW {
		return min(ctx, 1)
	}
	return ctx
}

func (pl *Planner) slotIn(id int32) int32 {
	if s := pl.inSlot[id]; s >= 0 {
		return s
	}
	s := int32(len(pl.InIDs))
	pl.inSlot[id] = s
	pl.InIDs = append(pl.InIDs, uint32(id))
	return s
}

func (pl *Planner) slotOut(id int32) int32 {
	if s := pl.outSlot[id]; s >= 0 {
		return s
	}
	s := int32(len(pl.OutIDs))
	pl.outSlot[id] = s
	pl.OutIDs = append(pl.OutIDs, uint32(id))
	return s
}

// reset clears the slot maps of the previous batch in time proportional to its rows.
func (pl *Planner) reset() {
	for _, id := range pl.InIDs {
		pl.inSlot[id] = -1
	}
	for _, id := range pl.OutIDs {
		pl.outSlot[id] = -1
	}
	pl.InIDs = pl.InIDs[:0]
	pl.OutIDs = pl.OutIDs[:0]

	b := &pl.batch
	b.In, b.Out, b.Ends = b.In[:0], b.Out[:0], b.Ends[:0]
	b.Shrink, b.Neg = b.Shrink[:0], b.Neg[:0]
}
