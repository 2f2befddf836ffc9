package classify

import (
	"math"
)

// Trainer trains the bag-of-embeddings classifier one example at a time by SGD, on rows the
// caller holds (copies pulled from parameter-server shards, or a whole model). It holds one
// goroutine's scratch: use one Trainer per goroutine.
type Trainer struct {
	dim, labels int
	hidden      []float32 // h: the mean of the feature rows
	grad        []float32 // dL/dh
	logits      []float64 // z
	probs       []float64 // p = softmax(z)
	coef        []float32 // p - y
}

// NewTrainer returns a Trainer for rows of dim values and labels labels (both positive).
func NewTrainer(dim, labels int) *Trainer {
	return &Trainer{
		dim: dim, labels: labels,
		hidden: make([]float32, dim), grad: make([]float32, dim),
		logits: make([]float64, labels), probs: make([]float64, labels),
		coef: make([]float32, labels),
	}
}

// Step trains one example in place and returns its loss. in holds the input rows (row r at
// in[r*dim:(r+1)*dim]), rows the example's feature rows (repeats allowed), out the classifier
// rows (label k at out[k*dim:(k+1)*dim]) and targets the example's distinct labels; the target
// distribution puts 1/len(targets) on each. The classifier rows move by lrOut times their
// gradient and the input rows by lrIn times theirs (lrIn 0 leaves in untouched). An example
// without rows or targets trains nothing: ok is false. A non-finite loss is returned as it is,
// after the rows were updated: the caller must stop and discard them.
func (t *Trainer) Step(in []float32, rows []int32, out []float32, targets []int32,
	lrOut, lrIn float32) (loss float64, ok bool) {
	if len(rows) == 0 || len(targets) == 0 {
		return 0, false
	}
	loss = t.gradient(in, rows, out, targets)
	dim := t.dim

	// W_k -= lrOut (p_k - y_k) h, with dL/dh already taken from the old W.
	for k, c := range t.coef {
		axpy(-lrOut*c, t.hidden, out[k*dim:(k+1)*dim])
	}
	if lrIn == 0 {
		return loss, true
	}

	// Each occurrence of a row gets dL/dh / n.
	scale := -lrIn / float32(len(rows))
	for _, r := range rows {
		axpy(scale, t.grad, in[int(r)*dim:int(r+1)*dim])
	}
	return loss, true
}

// gradient runs the forward pass and fills hidden, probs, coef (p - y) and grad (dL/dh); it
// returns the loss. rows and targets are not empty.
func (t *Trainer) gradient(in []float32, rows []int32, out []float32, targets []int32) float64 {
	t.forward(in, rows)
	lse := softmax(out, t.hidden, t.logits, t.probs)

	y := 1 / float64(len(targets))
	loss := lse
	for k, p := range t.probs {
		t.coef[k] = float32(p)
	}
	for _, k := range targets {
		loss -= y * t.logits[k]
		t.coef[k] -= float32(y)
	}

	clear(t.grad)
	dim := t.dim
	for k, c := range t.coef {
		axpy(c, out[k*dim:(k+1)*dim], t.grad)
	}
	return loss
}

// forward sets hidden to the mean of the feature rows.
func (t *Trainer) forward(in []float32, rows []int32) {
	clear(t.hidden)
	dim := t.dim
	for _, r := range rows {
		axpy(1, in[int(r)*dim:int(r+1)*dim], t.hidden)
	}
	inv := 1 / float32(len(rows))
	for i := range t.hidden {
		t.hidden[i] *= inv
	}
}

// softmax sets logits to W h (W's row k at out[k*dim:]) and probs to their softmax, and
// returns the log of the sum of exp(logits), computed stably.
func softmax(out, hidden []float32, logits, probs []float64) float64 {
	dim := len(hidden)
	hi := math.Inf(-1)
	for k := range logits {
		z := float64(dot(out[k*dim:(k+1)*dim], hidden))
		logits[k] = z
		hi = max(hi, z)
	}
	var sum float64
	for k, z := range logits {
		probs[k] = math.Exp(z - hi)
		sum += probs[k]
	}
	for k := range probs {
		probs[k] /= sum
	}
	return hi + math.Log(sum)
}

// dot returns the dot product of a and b (len(a) <= len(b)).
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s float32
	for i, x := range a {
		s += x * b[i]
	}
	return s
}

// axpy adds a*x to y (len(x) <= len(y)).
func axpy(a float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += a * v
	}
}
