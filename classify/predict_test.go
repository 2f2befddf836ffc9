package classify

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/skipgrid/skipgrid/vectors"
)

// tinyModel has words good (1, 0) and bad (-1, 0) of dim 2, labels pos and neg with rows
// (1, 0) and (-1, 0), and 2 bigram buckets of zeros.
func tinyModel() *Model {
	return &Model{
		Meta: Meta{Dim: 2, Labels: []string{"pos", "neg"}, BigramBuckets: 2,
			Tokenizer: "words", VocabSize: 2, TrainedWords: 2},
		Vectors: &vectors.Vectors{Words: []string{"good", "bad"}, Dim: 2,
			Data: []float32{1, 0, -1, 0}},
		Counts:     []uint64{3, 1},
		Classifier: []float32{1, 0, -1, 0},
		Bigrams:    make([]float32, 4),
	}
}

func TestPredict(t *testing.T) {
	p, err := NewPredictor(tinyModel())
	if err != nil {
		t.Fatal(err)
	}
	// "Good movie": good is known, movie is not; one bigram row of zeros. h = (1+0)/2 =
	// (0.5, 0): logits 0.5 and -0.5, p(pos) = 1/(1+e^-1).
	pos := 1 / (1 + math.Exp(-1))
	pred, gold, err := p.PredictLine("__label__pos __label__x Good movie", 2)
	if err != nil {
		t.Fatal(err)
	}
	want := Prediction{Labels: []Scored{{"pos", pos}, {"neg", 1 - pos}}, Tokens: 2, Known: 1}
	if diff := cmp.Diff(want, pred, cmpopts.EquateApprox(0, 1e-6)); diff != "" {
		t.Errorf("prediction (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"pos", "x"}, gold); diff != "" {
		t.Errorf("gold (-want +got):\n%s", diff)
	}

	// A line without a prediction has Labels [], not nil, so that its JSON has "labels":[].
	cases := []struct {
		line, reason string
		tokens       int
	}{
		{"", "empty line", 0},
		{"  \t \r", "empty line", 0},
		{"__label__pos", "empty line", 0},
		{"__label__pos \t ", "empty line", 0},
		{"... !!!", "no token kept by the tokenizer", 0},
		{"__label__pos ...", "no token kept by the tokenizer", 0},
		{"unknown words only", "no known word", 3},
	}
	for _, tc := range cases {
		pred, _, err := p.PredictLine(tc.line, 1)
		if err != nil {
			t.Fatal(err)
		}
		want := Prediction{Labels: []Scored{}, Tokens: tc.tokens, Reason: tc.reason}
		if diff := cmp.Diff(want, pred); diff != "" || pred.Top() != "" {
			t.Errorf("%q (-want +got):\n%s", tc.line, diff)
		}
		b, err := json.Marshal(pred)
		if err != nil {
			t.Fatal(err)
		}
		if wantJSON := `{"labels":[],"tokens":` + strconv.Itoa(tc.tokens) +
			`,"known":0,"reason":"` + tc.reason + `"}`; string(b) != wantJSON {
			t.Errorf("%q: JSON %s, want %s", tc.line, b, wantJSON)
		}
	}
	if got := p.PredictTokens(nil, 1); got.Reason != ReasonNoToken || got.Labels == nil {
		t.Errorf("PredictTokens(nil): %+v, want reason %q and empty labels", got, ReasonNoToken)
	}
}

// TestPredictEOS gives the tiny model an EOS row (0, 2): "good movie" then has rows good,
// EOS and two bigrams of zeros ((good, movie) and (movie, </s>)), h = ((1, 0) + (0, 2)) / 4
// = (1/4, 1/2), logits 1/4 and -1/4, p(pos) = 1/(1+e^(-1/2)); a line without a known word
// still gets no prediction.
func TestPredictEOS(t *testing.T) {
	m := tinyModel()
	m.EOS = []float32{0, 2}
	p, err := NewPredictor(m)
	if err != nil {
		t.Fatal(err)
	}
	pred, _, err := p.PredictLine("good movie", 1)
	if err != nil {
		t.Fatal(err)
	}
	pos := 1 / (1 + math.Exp(-0.5))
	want := Prediction{Labels: []Scored{{"pos", pos}}, Tokens: 2, Known: 1}
	if diff := cmp.Diff(want, pred, cmpopts.EquateApprox(0, 1e-6)); diff != "" {
		t.Errorf("prediction (-want +got):\n%s", diff)
	}
	pred, _, err = p.PredictLine("zzz", 1)
	if err != nil {
		t.Fatal(err)
	}
	if pred.Reason != "no known word" || len(pred.Labels) != 0 {
		t.Errorf("line without a known word: %+v, want no labels", pred)
	}
}

func TestEvaluate(t *testing.T) {
	ds := readString(t, "__label__pos good\n__label__neg bad\n__label__neg good\n"+
		"__label__neg zzz\n")
	r, err := Evaluate(tinyModel(), ds)
	if err != nil {
		t.Fatal(err)
	}
	// Right: 1 and 2; example 3 predicted pos, example 4 has no known word.
	if r.Correct != 2 || r.Examples != 4 || r.Unpredicted != 1 || r.Accuracy != 0.5 {
		t.Errorf("report %+v, want 2 of 4 right and 1 unpredicted", r)
	}
}

// TestEvaluateUnknownLabels scores the tiny model on 5 examples, 3 of them with labels it
// does not know. Good alone gives h = (1, 0), so pos; bad gives neg; zzz gives nothing.
// Right: 1 and 2. pos and neg each have support 1, predicted 2, correct 1: P 1/2, R 1, F1 2/3;
// sports (support 2) and tech (1) are never predicted. Macro over 4 labels: P 1/4, R 1/2,
// F1 1/3; weighted by support over 5: P 1/5, R 2/5, F1 (2/3 + 2/3)/5 = 4/15.
func TestEvaluateUnknownLabels(t *testing.T) {
	ds := readString(t, "__label__pos good\n__label__neg bad\n__label__sports good\n"+
		"__label__sports zzz\n__label__tech bad\n")
	r, err := Evaluate(tinyModel(), ds)
	if err != nil {
		t.Fatal(err)
	}
	if r.Correct != 2 || r.Examples != 5 || r.Unpredicted != 1 || r.UnknownExamples != 3 {
		t.Errorf("report %+v, want 2 of 5 right, 1 unpredicted, 3 unknown", r)
	}
	if diff := cmp.Diff(map[string]int{"sports": 2, "tech": 1}, r.UnknownLabels); diff != "" {
		t.Errorf("unknown labels (-want +got):\n%s", diff)
	}

	var text strings.Builder
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	want := `              precision     recall   f1-score    support

         pos     0.5000     1.0000     0.6667          1
         neg     0.5000     1.0000     0.6667          1
      sports     0.0000     0.0000     0.0000          2
        tech     0.0000     0.0000     0.0000          1

    accuracy                           0.4000          5
   macro avg     0.2500     0.5000     0.3333          5
weighted avg     0.2000     0.4000     0.2667          5

1 of 5 examples got no prediction (no known word); they count as wrong

3 of 5 examples have a label the model does not know (sports: 2, tech: 1); they count as wrong
`
	if diff := cmp.Diff(want, text.String()); diff != "" {
		t.Errorf("text report (-want +got):\n%s", diff)
	}

	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"unknown_examples":3,"unknown_labels":{"sports":2,"tech":1}}`; !strings.HasSuffix(
		string(b), want) {
		t.Errorf("JSON report %s, want it to end with %s", b, want)
	}

	// Every label known: no unknown fields, in Go or in JSON.
	r, err = Evaluate(tinyModel(), readString(t, "__label__pos good\n__label__neg bad\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err = json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if r.UnknownExamples != 0 || r.UnknownLabels != nil || strings.Contains(string(b), "unknown") {
		t.Errorf("report with known labels only: %s", b)
	}
}

// TestEvaluateForeignLabels scores the tiny model (pos, neg) on a file none of whose labels it
// knows: an error, not an accuracy of 0.
func TestEvaluateForeignLabels(t *testing.T) {
	ds := readString(t, "__label__tech good\n__label__sports bad\n__label__sports zzz\n")
	_, err := Evaluate(tinyModel(), ds)
	want := "evaluate on test: no example has a label the model knows: the file's labels are " +
		"sports, tech; the model's are pos, neg; is test another task's test file?"
	if !errors.Is(err, ErrUnknownLabels) || err.Error() != want {
		t.Errorf("Evaluate: %v\nwant ErrUnknownLabels: %s", err, want)
	}

	// A second label that the model knows does not make the example known: the first is gold.
	ds = readString(t, "__label__tech __label__pos good\n")
	if _, err := Evaluate(tinyModel(), ds); !errors.Is(err, ErrUnknownLabels) {
		t.Errorf("Evaluate with a known second label: %v, want ErrUnknownLabels", err)
	}

	labels := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}
	if got, want := someLabels(labels), "a, b, c, d, e, f, g, h and 2 more"; got != want {
		t.Errorf("someLabels(10 labels) = %q, want %q", got, want)
	}
}

// TestLoadForeignVectors puts the vectors.bin of a model with 3 words into a model whose
// model.json gives 2: Load names the file and both shapes.
func TestLoadForeignVectors(t *testing.T) {
	dir, dir2 := t.TempDir(), t.TempDir()
	if err := Save(dir, tinyModel()); err != nil {
		t.Fatal(err)
	}
	other := tinyModel()
	other.Meta.VocabSize, other.Meta.TrainedWords = 3, 3
	other.Vectors = &vectors.Vectors{Words: []string{"good", "bad", "ugly"}, Dim: 2,
		Data: []float32{1, 0, -1, 0, 0, 1}}
	other.Counts = []uint64{3, 1, 1}
	if err := Save(dir2, other); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir2, VectorsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, VectorsFile), b, 0o644); err != nil {
		t.Fatal(err)
	}

	_, err = Load(dir)
	want := "load model: malformed model file: " + filepath.Join(dir, VectorsFile) +
		" holds 3 vectors of dim 2, but model.json gives 2 words of dim 2"
	if !errors.Is(err, ErrFormat) || err.Error() != want {
		t.Errorf("Load: %v\nwant ErrFormat: %s", err, want)
	}

	// Save checks the same before it writes anything.
	other.Meta.VocabSize = 2
	err = Save(t.TempDir(), other)
	if !errors.Is(err, ErrFormat) || !strings.HasSuffix(err.Error(), "malformed model file: "+
		"the word vectors hold 3 rows of dim 2, want 2 words of dim 2") {
		t.Errorf("Save with 3 rows for 2 words: %v", err)
	}
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	m := tinyModel()
	m.EOS = []float32{0.5, -0.25}
	m.Meta.Training = []byte(`{"epochs":5}`)
	if err := Save(dir, m); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	got.Counts = m.Counts // Load does not read vocab.txt
	var compact bytes.Buffer
	if err := json.Compact(&compact, got.Meta.Training); err != nil {
		t.Fatal(err)
	}
	got.Meta.Training = compact.Bytes() // model.json is indented
	if diff := cmp.Diff(m, got, cmpopts.IgnoreUnexported(vectors.Vectors{})); diff != "" {
		t.Errorf("loaded model (-saved +loaded):\n%s", diff)
	}
	vocab, err := os.ReadFile(filepath.Join(dir, VocabFile))
	if err != nil || string(vocab) != "good 3\nbad 1\n" {
		t.Errorf("vocab.txt %q, %v", vocab, err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	// A classifier.bin of another model (3 labels) is refused.
	other := tinyModel()
	other.Meta.Labels = []string{"a", "b", "c"}
	other.Classifier = make([]float32, 6)
	dir2 := t.TempDir()
	if err := Save(dir2, other); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir2, ClassifierFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ClassifierFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(dir)
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "holds 3 labels") {
		t.Errorf("Load with a foreign classifier.bin: %v, want ErrFormat naming 3 labels", err)
	}
}

// classifierBytes encodes a classifier.bin by hand: 1 label, dim 2, 1 bucket.
func classifierBytes(vals [4]float32) []byte {
	return classifierFlags(0, vals[:])
}

// classifierFlags encodes a classifier.bin by hand: 1 label, dim 2, 1 bucket, the flags and
// the values.
func classifierFlags(flags uint32, vals []float32) []byte {
	b := []byte("SKGCLS1\n")
	for _, v := range []uint32{1, 2, 1, flags} {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	for _, v := range vals {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b,
		crc32.MakeTable(crc32.Castagnoli)))
}

func TestDecodeClassifier(t *testing.T) {
	good := classifierBytes([4]float32{1, 2, 3, 4})
	c, err := DecodeClassifier(good, "c.bin")
	if err != nil {
		t.Fatal(err)
	}
	want := &ClassifierRows{Labels: 1, Dim: 2, Buckets: 1, Classifier: []float32{1, 2},
		Bigrams: []float32{3, 4}}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("decoded (-want +got):\n%s", diff)
	}
	var w strings.Builder
	if err := WriteClassifier(&w, 1, 2, 1, []float32{1, 2}, []float32{3, 4}, nil); err != nil ||
		w.String() != string(good) {
		t.Errorf("WriteClassifier differs from the hand encoding (%v)", err)
	}

	// Flag 1: an EOS row follows the bigram rows.
	withEOS := classifierFlags(1, []float32{1, 2, 3, 4, 5, 6})
	c, err = DecodeClassifier(withEOS, "c.bin")
	if err != nil {
		t.Fatal(err)
	}
	want.EOS = []float32{5, 6}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("decoded with EOS (-want +got):\n%s", diff)
	}
	w.Reset()
	if err := WriteClassifier(&w, 1, 2, 1, []float32{1, 2}, []float32{3, 4},
		[]float32{5, 6}); err != nil || w.String() != string(withEOS) {
		t.Errorf("WriteClassifier with EOS differs from the hand encoding (%v)", err)
	}

	corrupt := append([]byte(nil), good...)
	corrupt[30] ^= 1
	nan := classifierBytes([4]float32{1, float32(math.NaN()), 3, 4})
	huge := append([]byte(nil), good...)
	binary.LittleEndian.PutUint32(huge[16:], 1<<30)
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"magic", []byte("not a classifier file at all"), "byte offset 0"},
		{"truncated", good[:len(good)-5], "byte offset 39: "},
		{"checksum", corrupt, "byte offset 40: "},
		{"nan", nan, "byte offset 28: "},
		{"huge header", huge, "needs"},
		{"unknown flag", classifierFlags(2, []float32{1, 2, 3, 4}), "byte offset 20: "},
		{"flag without EOS row", classifierFlags(1, []float32{1, 2, 3, 4}), "needs 52"},
	}
	for _, tc := range cases {
		_, err := DecodeClassifier(tc.b, "c.bin")
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrFormat with %q", tc.name, err, tc.want)
		}
	}
}

func FuzzDecodeClassifier(f *testing.F) {
	f.Add(classifierBytes([4]float32{1, 2, 3, 4}))
	f.Add([]byte("SKGCLS1\n\x01\x00\x00\x00\x02\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeClassifier(b, "fuzz")
		if err != nil {
			return
		}
		if len(c.Classifier) != c.Labels*c.Dim || len(c.Bigrams) != c.Buckets*c.Dim ||
			(c.EOS != nil && len(c.EOS) != c.Dim) {
			t.Fatalf("decoded sizes disagree: %+v", c)
		}
	})
}
