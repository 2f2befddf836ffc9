package word2vec

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas/gonum"
)

const (
	// maxExp bounds the sigmoid table: beyond ±maxExp the sigmoid counts as saturated.
	maxExp = 6
	// expTableSize is the resolution of the sigmoid and loss tables.
	expTableSize = 1000
)

var (
	// sigmoidTable[i] = σ(x) at x = (2i/expTableSize - 1) * maxExp, as word2vec's expTable.
	sigmoidTable [expTableSize]float32
	// lossTable[i] = -log σ(x) at the same points.
	lossTable [expTableSize]float32
)

func init() {
	for i := range expTableSize {
		x := (float64(i)/expTableSize*2 - 1) * maxExp
		sigmoidTable[i] = float32(1 / (1 + math.Exp(-x)))
		lossTable[i] = float32(math.Log1p(math.Exp(-x)))
	}
}

// tableIndex maps f in (-maxExp, maxExp) to its table entry, as word2vec does.
func tableIndex(f float32) int {
	return int((f + maxExp) * (expTableSize / maxExp / 2))
}

// negLogSigmoid is -log σ(f) from the table, linear (-f) or zero where the table saturates.
func negLogSigmoid(f float32) float32 {
	switch {
	case f >= maxExp:
		return 0
	case f <= -maxExp:
		return -f
	case f != f: // NaN: let it reach the loss, where the worker catches it
		return f
	}
	return lossTable[tableIndex(f)]
}

// Loss sums the negative-sampling loss of a batch: -log σ(u·v) for each true pair and
// -log σ(-u·v) for each negative, as computed before the pair's update.
type Loss struct {
	Sum   float64
	Terms int
}

// Trainer applies planned batches to local row buffers. It keeps scratch vectors, so one
// Trainer serves one goroutine.
type Trainer struct {
	p     Params
	blas  gonum.Implementation
	neu1  []float32
	neu1e []float32
}

// NewTrainer makes a trainer for p.
func NewTrainer(p Params) (*Trainer, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("word2vec: trainer: %w", err)
	}
	return &Trainer{p: p, neu1: make([]float32, p.Dim), neu1e: make([]float32, p.Dim)}, nil
}

// Train replays b on in and out, the input and output rows by slot (slot s at s*Dim), with
// learning rate alpha, and returns the loss seen on the way.
func (t *Trainer) Train(b *Batch, in, out []float32, alpha float32) Loss {
	var loss Loss
	neg := b.Neg
	start := int32(0)
	for _, end := range b.Ends {
		for i := start; i < end; i++ {
			if t.p.Model == CBOW {
				neg = t.cbow(b, i, start, end, in, out, alpha, neg, &loss)
			} else {
				neg = t.skipGram(b, i, start, end, in, out, alpha, neg, &loss)
			}
		}
		start = end
	}
	return loss
}

// window is the clipped context range [lo, hi] of position i.
func (t *Trainer) window(b *Batch, i, start, end int32) (lo, hi int32) {
	w := int32(t.p.Window) - int32(b.Shrink[i])
	return max(i-w, start), min(i+w, end-1)
}

// skipGram trains every (context, centre) pair of position i: the context word's input row
// against the centre's output row and the negatives', word2vec's formulation.
func (t *Trainer) skipGram(b *Batch, i, start, end int32, in, out []float32, alpha float32,
	neg []int32, loss *Loss) []int32 {
	dim := t.p.Dim
	centre := b.Out[i]
	lo, hi := t.window(b, i, start, end)
	for c := lo; c <= hi; c++ {
		if c == i {
			continue
		}
		ctx := b.In[c]
		l1 := in[int(ctx)*dim : int(ctx)*dim+dim]
		clear(t.neu1e)
		t.negativeRound(l1, centre, neg[:t.p.Negative], out, alpha, loss)
		neg = neg[t.p.Negative:]
		t.blas.Saxpy(dim, 1, t.neu1e, 1, l1, 1)
	}
	return neg
}

// cbow trains position i from the mean of its context input rows, then adds the error to each
// context row.
func (t *Trainer) cbow(b *Batch, i, start, end int32, in, out []float32, alpha float32,
	neg []int32, loss *Loss) []int32 {
	dim := t.p.Dim
	lo, hi := t.window(b, i, start, end)
	if hi == lo {
		return neg
	}

	clear(t.neu1)
	for c := lo; c <= hi; c++ {
		if c != i {
			s := int(b.In[c]) * dim
			t.blas.Saxpy(dim, 1, in[s:s+dim], 1, t.neu1, 1)
		}
	}
	t.blas.Sscal(dim, 1/float32(hi-lo), t.neu1, 1)

	clear(t.neu1e)
	t.negativeRound(t.neu1, b.Out[i], neg[:t.p.Negative], out, alpha, loss)
	for c := lo; c <= hi; c++ {
		if c != i {
			s := int(b.In[c]) * dim
			t.blas.Saxpy(dim, 1, t.neu1e, 1, in[s:s+dim], 1)
		}
	}
	return neg[t.p.Negative:]
}

// negativeRound trains hidden vector l1 against the positive output row and the negatives,
// accumulating the gradient for l1 in t.neu1e and updating the output rows in place.
func (t *Trainer) negativeRound(l1 []float32, positive int32, negs []int32, out []float32,
	alpha float32, loss *Loss) {
	dim := t.p.Dim
	for d := -1; d < len(negs); d++ {
		target, label := positive, float32(1)
		if d >= 0 {
			target, label = negs[d], 0
			if target == positive {
				continue
			}
		}
		l2 := out[int(target)*dim : int(target)*dim+dim]
		f := t.blas.Sdot(dim, l1, 1, l2, 1)

		if label == 1 {
			loss.Sum += float64(negLogSigmoid(f))
		} else {
			loss.Sum += float64(negLogSigmoid(-f))
		}
		loss.Terms++

		var g float32
		switch {
		case f >= maxExp:
			g = (label - 1) * alpha
		case f <= -maxExp:
			g = label * alpha
		case f != f: // NaN: spread it, so the worker's finiteness check sees it
			g = f
		default:
			g = (label - sigmoidTable[tableIndex(f)]) * alpha
		}
		t.blas.Saxpy(dim, g, l2, 1, t.neu1e, 1)
		t.blas.Saxpy(dim, g, l1, 1, l2, 1)
	}
}
