package classify

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestSoftmaxHandValues(t *testing.T) {
	// h = (1, 0); W rows (0,0), (ln 2, 0), (ln 3, 0): logits 0, ln 2, ln 3, so
	// p = (1, 2, 3) / 6 and log-sum-exp = ln 6.
	out := []float32{0, 0, float32(math.Ln2), 0, float32(math.Log(3)), 0}
	logits, probs := make([]float64, 3), make([]float64, 3)
	lse := softmax(out, []float32{1, 0}, logits, probs)
	approx := cmpopts.EquateApprox(0, 1e-6)
	if diff := cmp.Diff([]float64{1.0 / 6, 2.0 / 6, 3.0 / 6}, probs, approx); diff != "" {
		t.Errorf("probs (-want +got):\n%s", diff)
	}
	if !cmp.Equal(math.Log(6), lse, approx) {
		t.Errorf("log-sum-exp %v, want ln 6", lse)
	}

	// The same scores through Trainer: rows (1,0) and (1,0) average to h = (1, 0).
	tr := NewTrainer(2, 3)
	in := []float32{1, 0}
	cases := []struct {
		targets []int32
		want    float64 // -sum y_k log p_k
	}{
		{[]int32{2}, math.Log(2)},                               // -ln(3/6)
		{[]int32{0}, math.Log(6)},                               // -ln(1/6)
		{[]int32{0, 2}, -(math.Log(1.0/6) + math.Log(0.5)) / 2}, // half on each
	}
	for _, tc := range cases {
		got := tr.gradient(in, []int32{0, 0}, out, tc.targets)
		if !cmp.Equal(tc.want, got, approx) {
			t.Errorf("targets %v: loss %v, want %v", tc.targets, got, tc.want)
		}
	}
}

// randomProblem returns input rows, an example's rows (with a repeat), classifier rows and
// targets, all seeded.
func randomProblem(seed uint64, dim, labels int) (in []float32, rows []int32, out []float32) {
	rng := rand.New(rand.NewPCG(seed, 1))
	in = make([]float32, 4*dim)
	out = make([]float32, labels*dim)
	for i := range in {
		in[i] = float32(rng.Float64()*2 - 1)
	}
	for i := range out {
		out[i] = float32(rng.Float64()*2 - 1)
	}
	return in, []int32{2, 0, 2, 3}, out
}

// TestGradientFiniteDifference checks dL/dW and dL/d(input row) against central
// differences of the loss, for a single and a double target.
func TestGradientFiniteDifference(t *testing.T) {
	const dim, labels, eps = 5, 4, 1e-2
	for _, targets := range [][]int32{{1}, {0, 3}} {
		in, rows, out := randomProblem(3, dim, labels)
		tr := NewTrainer(dim, labels)
		tr.gradient(in, rows, out, targets)
		coef := append([]float32(nil), tr.coef...)
		hidden := append([]float32(nil), tr.hidden...)
		grad := append([]float32(nil), tr.grad...)

		loss := func() float64 { return NewTrainer(dim, labels).gradient(in, rows, out, targets) }
		numeric := func(x *float32) float64 {
			was := *x
			*x = was + eps
			up := loss()
			*x = was - eps
			down := loss()
			*x = was
			return (up - down) / (2 * eps)
		}

		// dL/dW_kj = (p_k - y_k) h_j.
		for k := range labels {
			for j := range dim {
				want := float64(coef[k] * hidden[j])
				if got := numeric(&out[k*dim+j]); math.Abs(got-want) > 2e-3 {
					t.Errorf("targets %v: dL/dW[%d][%d] analytic %v, numeric %v", targets, k,
						j, want, got)
				}
			}
		}
		// Row 2 occurs twice of 4, rows 0 and 3 once, row 1 never: dL/d row = count/4 dL/dh.
		for r, count := range []float64{1, 0, 2, 1} {
			for j := range dim {
				want := count / 4 * float64(grad[j])
				if got := numeric(&in[r*dim+j]); math.Abs(got-want) > 2e-3 {
					t.Errorf("targets %v: dL/d row %d [%d] analytic %v, numeric %v", targets,
						r, j, want, got)
				}
			}
		}
	}
}

// TestStepMovesAgainstGradient checks that Step changes every row by exactly -lr times the
// gradient taken before the step, and leaves frozen input rows bit for bit.
func TestStepMovesAgainstGradient(t *testing.T) {
	const dim, labels = 3, 3
	in, rows, out := randomProblem(9, dim, labels)
	targets := []int32{2}
	tr := NewTrainer(dim, labels)
	tr.gradient(in, rows, out, targets)
	wantOut := append([]float32(nil), out...)
	for k := range labels {
		for j := range dim {
			wantOut[k*dim+j] -= 0.5 * tr.coef[k] * tr.hidden[j]
		}
	}
	wantIn := append([]float32(nil), in...)
	for _, r := range rows {
		for j := range dim {
			wantIn[int(r)*dim+j] += -0.25 / 4 * tr.grad[j]
		}
	}

	frozenIn := append([]float32(nil), in...)
	frozenOut := append([]float32(nil), out...)
	if _, ok := NewTrainer(dim, labels).Step(frozenIn, rows, frozenOut, targets, 0.5,
		0); !ok {
		t.Fatal("Step trained nothing")
	}
	if diff := cmp.Diff(in, frozenIn); diff != "" {
		t.Errorf("frozen input rows changed (-before +after):\n%s", diff)
	}

	NewTrainer(dim, labels).Step(in, rows, out, targets, 0.5, 0.25)
	approx := cmpopts.EquateApprox(0, 1e-6)
	if diff := cmp.Diff(wantOut, out, approx); diff != "" {
		t.Errorf("classifier rows (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantIn, in, approx); diff != "" {
		t.Errorf("input rows (-want +got):\n%s", diff)
	}

	if loss, ok := tr.Step(in, nil, out, targets, 1, 1); ok || loss != 0 {
		t.Errorf("Step without rows: loss %v ok %v, want 0 false", loss, ok)
	}
}

// TestTrainerLearnsSeparable trains two words per class, each class marked by its own word:
// a few epochs of SGD must get every example right.
func TestTrainerLearnsSeparable(t *testing.T) {
	const dim, labels = 8, 3
	in := make([]float32, 6*dim)
	for r := range 6 {
		InitRow(1, uint32(r), in[r*dim:(r+1)*dim])
	}
	out := make([]float32, labels*dim)
	// Example k holds rows 2k and 2k+1.
	tr := NewTrainer(dim, labels)
	for range 50 {
		for k := range int32(labels) {
			tr.Step(in, []int32{2 * k, 2*k + 1}, out, []int32{k}, 0.5, 0.5)
		}
	}
	for k := range int32(labels) {
		tr.gradient(in, []int32{2 * k, 2*k + 1}, out, []int32{k})
		best := 0
		for i, p := range tr.probs {
			if p > tr.probs[best] {
				best = i
			}
		}
		if best != int(k) || tr.probs[k] < 0.9 {
			t.Errorf("example %d: probabilities %v, want label %d above 0.9", k, tr.probs, k)
		}
	}
}
