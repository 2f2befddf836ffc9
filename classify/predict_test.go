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

	cases := []struct{ line, reason string }{
		{"", "empty line"},
		{"  \t ", "empty line"},
		{"__label__pos", "empty line"},
		{"... !!!", "empty line"}, // the words tokenizer finds no token
		{"unknown words only", "no known word"},
	}
	for _, tc := range cases {
		pred, _, err := p.PredictLine(tc.line, 1)
		if err != nil {
			t.Fatal(err)
		}
		if pred.Reason != tc.reason || len(pred.Labels) != 0 || pred.Top() != "" {
			t.Errorf("%q: %+v, want no labels and reason %q", tc.line, pred, tc.reason)
		}
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
