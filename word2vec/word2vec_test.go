package word2vec

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestKeepProbability checks word2vec's subsampling formula on values worked out by hand:
// with t = 1e-3 and n = 1e6, t*n = 1000 and p(c) = (sqrt(c/1000) + 1) * 1000 / c.
func TestKeepProbability(t *testing.T) {
	cases := []struct {
		count uint64
		want  float64
	}{
		{1000, 1},          // (1 + 1) * 1 = 2, capped at 1
		{4000, 0.75},       // (2 + 1) * 0.25
		{100000, 0.11},     // (10 + 1) * 0.01
		{250000, 0.067246}, // (sqrt(250) + 1) * 0.004 = 16.8114 * 0.004
	}
	for _, c := range cases {
		got := KeepProbability(c.count, 1e6, 1e-3)
		if math.Abs(got-c.want) > 1e-4 {
			t.Errorf("KeepProbability(%d) = %v, want %v", c.count, got, c.want)
		}
	}
	if got := KeepProbability(5, 1e6, 0); got != 1 {
		t.Errorf("sample 0 must keep everything, got %v", got)
	}
}

// TestSamplerExact reads the exact distribution out of the alias tables: counts 1, 16, 81, 256
// raised to 0.75 are 1, 8, 27, 64 (sum 100), so the probabilities are .01 .08 .27 .64.
func TestSamplerExact(t *testing.T) {
	s, err := NewSampler([]uint64{1, 16, 81, 256}, UnigramPower)
	if err != nil {
		t.Fatal(err)
	}
	n := float64(len(s.prob))
	got := make([]float64, len(s.prob))
	for i := range s.prob {
		keep := float64(s.prob[i]) / (1 << 32)
		got[i] += keep / n
		got[s.alias[i]] += (1 - keep) / n
	}
	want := []float64{0.01, 0.08, 0.27, 0.64}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b float64) bool {
		return math.Abs(a-b) < 1e-6
	})); d != "" {
		t.Errorf("alias distribution (-want +got):\n%s", d)
	}
}

// TestSamplerDraws checks the drawing arithmetic end to end against the same distribution:
// with 10^6 draws the standard error of p=.27 is 4.4e-4, so 3e-3 is a wide, safe margin.
func TestSamplerDraws(t *testing.T) {
	s, err := NewSampler([]uint64{1, 16, 81, 256}, UnigramPower)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.NewPCG(1, 2)
	hist := make([]float64, 4)
	const draws = 1000000
	for range draws {
		hist[s.Draw(rng.Uint64())]++
	}
	for i, want := range []float64{0.01, 0.08, 0.27, 0.64} {
		if got := hist[i] / draws; math.Abs(got-want) > 3e-3 {
			t.Errorf("word %d drawn with frequency %v, want %v", i, got, want)
		}
	}
}

// sgnsLoss is the exact negative-sampling loss of hidden vector h against a positive output
// row and negative rows: -log σ(h·p) - Σ log σ(-h·n).
func sgnsLoss(h, pos []float64, negs [][]float64) float64 {
	dot := func(a, b []float64) float64 {
		var s float64
		for i := range a {
			s += a[i] * b[i]
		}
		return s
	}
	l := math.Log1p(math.Exp(-dot(h, pos)))
	for _, n := range negs {
		l += math.Log1p(math.Exp(dot(h, n)))
	}
	return l
}

// TestSkipGramGradient checks one Skip-Gram pair's update of the context row against a
// central finite difference of the exact loss: the update must be -alpha * dL/dh. The kernel
// reads σ from word2vec's table, whose index (f+6)*83 (integer 1000/6/2, as in the C tool)
// lands up to 0.024+0.012 = 0.036 away from f; σ' <= 1/4, so σ is off by at most 0.009 per
// target and -log σ by at most 0.036 per term. Those bounds are the tolerances.
func TestSkipGramGradient(t *testing.T) {
	const dim, alpha = 8, 0.01
	p := Params{Model: SkipGram, Dim: dim, Window: 1, Negative: 2}
	rng := rand.New(rand.NewPCG(7, 7))
	in := make([]float32, 2*dim)  // slots: 0 = word a, 1 = word b
	out := make([]float32, 4*dim) // slots: 0 = a, 1 = b, 2 and 3 = negatives
	for i := range in {
		in[i] = float32(rng.Float64() - 0.5)
	}
	for i := range out {
		out[i] = float32(rng.Float64() - 0.5)
	}

	// One sentence "a b", window 1: position 0 trains context b (in slot 1) against centre a
	// (out slot 0) and negatives in out slots 2 and 3. Only position 0 is trained.
	b := &Batch{In: []int32{0, 1}, Out: []int32{0, 1}, Ends: []int32{2}, Shrink: []uint8{0, 0},
		Neg: []int32{2, 3, 2, 3}}

	h := toF64(in[dim : 2*dim]) // position 0's context is word b (in slot 1)
	pos := toF64(out[0:dim])    // its centre is word a (out slot 0)
	negs := [][]float64{toF64(out[2*dim : 3*dim]), toF64(out[3*dim : 4*dim])}
	grad := make([]float64, dim)
	const eps = 1e-5
	for k := range dim {
		hp := append([]float64(nil), h...)
		hm := append([]float64(nil), h...)
		hp[k] += eps
		hm[k] -= eps
		grad[k] = (sgnsLoss(hp, pos, negs) - sgnsLoss(hm, pos, negs)) / (2 * eps)
	}

	tr, err := NewTrainer(p)
	if err != nil {
		t.Fatal(err)
	}
	before := append([]float32(nil), in[dim:2*dim]...)
	var loss Loss
	tr.skipGram(b, 0, 0, 2, in, out, alpha, b.Neg, &loss)
	for k := range dim {
		update := float64(in[dim+k]-before[k]) / alpha
		// |Δσ| <= 0.009 per target, times |row| <= 0.5 per component, over 3 targets.
		if math.Abs(update+grad[k]) > 3*0.009*0.5+1e-4 {
			t.Errorf("component %d: update/alpha = %v, want -dL/dh = %v", k, update, -grad[k])
		}
	}
	if want := sgnsLoss(toF64(before), pos, negs); math.Abs(loss.Sum-want) > 3*0.036 {
		t.Errorf("loss = %v, want %v (exact)", loss.Sum, want)
	}
	if loss.Terms != 3 {
		t.Errorf("loss terms = %d, want 3 (one positive, two negatives)", loss.Terms)
	}
}

func toF64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// TestPlanCounts checks the planned shapes on a case counted by hand: window 2, negative 3,
// sentences [5 6 7] and [5], no window shrink forced (Shrink is random, so the expected
// negatives are recomputed from the drawn Shrink by the rule: position i sees
// min(i+w, end-1) - max(i-w, start) context words, w = 2 - Shrink[i]).
func TestPlanCounts(t *testing.T) {
	s, err := NewSampler([]uint64{9, 8, 7, 6, 5, 4, 3, 2}, UnigramPower)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := NewPlanner(Params{Model: SkipGram, Dim: 4, Window: 2, Negative: 3}, s)
	if err != nil {
		t.Fatal(err)
	}
	b := pl.Plan([]int32{5, 6, 7, 5}, []int32{3, 4}, rand.NewPCG(1, 1))

	if d := cmp.Diff([]int32{0, 1, 2, 0}, b.In); d != "" {
		t.Errorf("input slots (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]uint32{5, 6, 7}, pl.InIDs); d != "" {
		t.Errorf("input ids by slot (-want +got):\n%s", d)
	}
	pairs := 0
	for i, sh := range b.Shrink[:3] {
		w := 2 - int(sh)
		pairs += min(i+w, 2) - max(i-w, 0)
	}
	// The one-word sentence has no context.
	if got, want := len(b.Neg), pairs*3; got != want {
		t.Errorf("negatives = %d, want %d (%d pairs x 3)", got, want, pairs)
	}
	for _, sh := range b.Shrink {
		if sh >= 2 {
			t.Errorf("shrink %d outside [0, window)", sh)
		}
	}
}

// TestDeterministic trains the same plan twice from the same seed: bit-identical rows.
func TestDeterministic(t *testing.T) {
	run := func() []float32 {
		in, out, _ := trainRandom(t, SkipGram, 1)
		return append(in, out...)
	}
	a, b := run(), run()
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			t.Fatalf("element %d differs between identical runs: %v vs %v", i, a[i], b[i])
		}
	}
}

// TestLossFalls trains repeated batches of a small corpus with structure (word i is always
// followed by word i+1): the mean loss of the last pass must be well below the first.
func TestLossFalls(t *testing.T) {
	for _, m := range []Model{SkipGram, CBOW} {
		_, _, losses := trainRandom(t, m, 30)
		first, last := losses[0], losses[len(losses)-1]
		if !(last < 0.7*first) {
			t.Errorf("%v: loss went from %v to %v, want a fall of 30%% or more", m, first, last)
		}
	}
}

func trainRandom(t *testing.T, m Model, passes int) (in, out []float32, losses []float64) {
	t.Helper()
	const vocab, dim = 50, 16
	counts := make([]uint64, vocab)
	for i := range counts {
		counts[i] = uint64(100 - i)
	}
	s, err := NewSampler(counts, UnigramPower)
	if err != nil {
		t.Fatal(err)
	}
	p := Params{Model: m, Dim: dim, Window: 3, Negative: 4}
	pl, _ := NewPlanner(p, s)
	tr, _ := NewTrainer(p)
	rng := rand.NewPCG(3, 4)

	var ids, ends []int32
	for sent := range 40 {
		for k := range 10 {
			ids = append(ids, int32((sent+k)%vocab))
		}
		ends = append(ends, int32(len(ids)))
	}
	in = make([]float32, vocab*dim)
	out = make([]float32, vocab*dim)
	init := rand.New(rand.NewPCG(5, 6))
	for i := range in {
		in[i] = float32(init.Float64()-0.5) / dim
	}
	for range passes {
		b := pl.Plan(ids, ends, rng)
		bin, bout := gather(in, pl.InIDs, dim), gather(out, pl.OutIDs, dim)
		l := tr.Train(b, bin, bout, 0.025)
		scatter(in, pl.InIDs, bin, dim)
		scatter(out, pl.OutIDs, bout, dim)
		losses = append(losses, l.Sum/float64(l.Terms))
	}
	return in, out, losses
}

func gather(table []float32, ids []uint32, dim int) []float32 {
	buf := make([]float32, len(ids)*dim)
	for s, id := range ids {
		copy(buf[s*dim:(s+1)*dim], table[int(id)*dim:])
	}
	return buf
}

func scatter(table []float32, ids []uint32, buf []float32, dim int) {
	for s, id := range ids {
		copy(table[int(id)*dim:(int(id)+1)*dim], buf[s*dim:(s+1)*dim])
	}
}

// TestNonFinitePropagates: a NaN in a row must reach the rows it trains, never be clipped
// away, so that the worker's finiteness check refuses the push.
func TestNonFinitePropagates(t *testing.T) {
	p := Params{Model: SkipGram, Dim: 4, Window: 1, Negative: 1}
	tr, _ := NewTrainer(p)
	in := []float32{float32(math.NaN()), 0, 0, 0, 1, 1, 1, 1}
	out := make([]float32, 12)
	b := &Batch{In: []int32{0, 1}, Out: []int32{0, 1}, Ends: []int32{2}, Shrink: []uint8{0, 0},
		Neg: []int32{2, 2}}
	tr.Train(b, in, out, 0.025)
	nan := false
	for _, v := range out {
		nan = nan || v != v
	}
	if !nan {
		t.Errorf("NaN input row trained into finite output rows %v", out)
	}
}

// BenchmarkTrainSkipGram measures the kernel alone on a Zipf-distributed batch at the
// reference settings (dim 100, window 5, negative 5); words/s is reported per core.
func BenchmarkTrainSkipGram(b *testing.B) { benchTrain(b, SkipGram) }

// BenchmarkTrainCBOW is the same for CBOW.
func BenchmarkTrainCBOW(b *testing.B) { benchTrain(b, CBOW) }

func benchTrain(b *testing.B, m Model) {
	const vocab, dim, words = 100000, 100, 10000
	counts := make([]uint64, vocab)
	for i := range counts {
		counts[i] = uint64(1e7 / (i + 1))
	}
	s, _ := NewSampler(counts, UnigramPower)
	p := Params{Model: m, Dim: dim, Window: 5, Negative: 5}
	pl, _ := NewPlanner(p, s)
	tr, _ := NewTrainer(p)
	rng := rand.NewPCG(1, 2)
	var ids, ends []int32
	for i := range words {
		ids = append(ids, s.Draw(rng.Uint64()))
		if i%20 == 19 {
			ends = append(ends, int32(len(ids)))
		}
	}
	batch := pl.Plan(ids, ends, rng)
	in := make([]float32, len(pl.InIDs)*dim)
	out := make([]float32, len(pl.OutIDs)*dim)
	for i := range in {
		in[i] = 0.001 * float32(i%7)
	}
	b.ResetTimer()
	for range b.N {
		tr.Train(batch, in, out, 0.025)
	}
	b.ReportMetric(float64(words*b.N)/b.Elapsed().Seconds(), "words/s")
}
