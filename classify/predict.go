package classify

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/skipgrid/skipgrid/vectors"
)

// Scored is one label with its probability.
type Scored struct {
	Label string  `json:"label"`
	Prob  float64 `json:"prob"`
}

// Reasons why a line gets no prediction, as Prediction.Reason gives them.
const (
	// ReasonEmpty: the text is empty or only white space.
	ReasonEmpty = "empty line"
	// ReasonNoToken: the text is not blank, but the tokenizer keeps none of it (as the
	// words tokenizer does with a line of punctuation).
	ReasonNoToken = "no token kept by the tokenizer"
	// ReasonNoKnownWord: the text has tokens, but none is a word of the model.
	ReasonNoKnownWord = "no known word"
)

// Prediction is the answer for one line of text.
type Prediction struct {
	// Labels holds the k most probable labels, most probable first (ties by label row).
	// When the line got no prediction it is empty but not nil, so that JSON gives [].
	Labels []Scored `json:"labels"`
	// Tokens counts the line's tokens, Known those in the vocabulary.
	Tokens int `json:"tokens"`
	Known  int `json:"known"`
	// Reason says why Labels is empty: ReasonEmpty, ReasonNoToken or ReasonNoKnownWord.
	Reason string `json:"reason,omitempty"`
}

// Top returns the most probable label, or "" when there is no prediction.
func (p Prediction) Top() string {
	if len(p.Labels) == 0 {
		return ""
	}
	return p.Labels[0].Label
}

// Predictor predicts the labels of text with a model. Not safe for concurrent use: use one
// per goroutine.
type Predictor struct {
	m      *Model
	tok    *tokenizer
	feats  Features
	rows   []int32
	hidden []float32
	logits []float64
	probs  []float64
	order  []int
}

// wordIDs looks words up in a vectors table.
type wordIDs struct{ v *vectors.Vectors }

func (w wordIDs) ID(word string) (int32, bool) {
	i, ok := w.v.Lookup(word)
	return int32(i), ok
}

// NewPredictor returns a predictor for m, tokenizing as m was trained.
func NewPredictor(m *Model) (*Predictor, error) {
	t, err := m.TokenizerOf()
	if err != nil {
		return nil, err
	}
	tok, err := newTokenizer(t, m.Meta.MaxSentence)
	if err != nil {
		return nil, fmt.Errorf("model tokenizer: %w", err)
	}
	tok.intern = nil
	n := len(m.Meta.Labels)
	feats := Features{Words: wordIDs{m.Vectors}, Rows: m.Vectors.Len(),
		Buckets: m.Meta.BigramBuckets, EOS: m.EOS != nil}
	return &Predictor{
		m: m, tok: tok, feats: feats,
		hidden: make([]float32, m.Meta.Dim),
		logits: make([]float64, n), probs: make([]float64, n), order: make([]int, n),
	}, nil
}

// PredictLine predicts the k most probable labels of one line of text. Leading __label__
// fields, as in a labelled file, are not text: they are returned as gold.
func (p *Predictor) PredictLine(line string, k int) (pred Prediction, gold []string,
	err error) {
	rest := []byte(line)
	for {
		field, after := cutField(rest)
		if len(field) <= len(LabelPrefix) || string(field[:len(LabelPrefix)]) != LabelPrefix {
			break
		}
		gold = append(gold, string(field[len(LabelPrefix):]))
		rest = after
	}
	if len(bytes.TrimSpace(rest)) == 0 {
		return Prediction{Labels: []Scored{}, Reason: ReasonEmpty}, gold, nil
	}

	toks, err := p.tok.tokens(rest)
	if err != nil {
		return Prediction{}, gold, err
	}
	return p.PredictTokens(toks, k), gold, nil
}

// PredictTokens predicts the k most probable labels (all when k <= 0 or above the labels) of
// tokenized text. Without a token the reason is ReasonNoToken: only PredictLine, which sees
// the text, can tell an empty line.
func (p *Predictor) PredictTokens(tokens []string, k int) Prediction {
	var known int
	p.rows, known = p.feats.Append(p.rows[:0], tokens)
	pred := Prediction{Labels: []Scored{}, Tokens: len(tokens), Known: known}
	switch {
	case len(tokens) == 0:
		pred.Reason = ReasonNoToken
		return pred
	case known == 0:
		pred.Reason = ReasonNoKnownWord
		return pred
	}

	m, dim := p.m, p.m.Meta.Dim
	clear(p.hidden)
	for _, r := range p.rows {
		var row []float32
		switch b := int(r) - m.Vectors.Len(); {
		case b < 0:
			row = m.Vectors.Row(int(r))
		case b < m.Meta.BigramBuckets:
			row = m.Bigrams[b*dim : (b+1)*dim]
		default:
			row = m.EOS
		}
		axpy(1, row, p.hidden)
	}
	inv := 1 / float32(len(p.rows))
	for i := range p.hidden {
		p.hidden[i] *= inv
	}
	softmax(m.Classifier, p.hidden, p.logits, p.probs)

	for i := range p.order {
		p.order[i] = i
	}
	slices.SortStableFunc(p.order, func(a, b int) int {
		return cmp.Compare(p.probs[b], p.probs[a])
	})
	if k <= 0 || k > len(p.order) {
		k = len(p.order)
	}
	for _, i := range p.order[:k] {
		pred.Labels = append(pred.Labels, Scored{Label: m.Meta.Labels[i], Prob: p.probs[i]})
	}
	return pred
}

// Evaluate scores m on the examples of ds (read with m's tokenizer): each example's first
// label against the top prediction. An example whose first label is not one of the model's
// counts as wrong, and Report.UnknownLabels counts it; when that is every example, Evaluate
// fails with ErrUnknownLabels instead, since ds is likely another task's file.
func Evaluate(m *Model, ds *Dataset) (Report, error) {
	p, err := NewPredictor(m)
	if err != nil {
		return Report{}, err
	}

	known := make(map[string]bool, len(m.Meta.Labels))
	for _, l := range m.Meta.Labels {
		known[l] = true
	}
	unknown, n := map[string]int{}, 0
	for _, ex := range ds.Examples {
		if !known[ex.Labels[0]] {
			unknown[ex.Labels[0]]++
			n++
		}
	}
	if n > 0 && n == len(ds.Examples) {
		return Report{}, fmt.Errorf("evaluate on %s: %w: the file's labels are %s; the "+
			"model's are %s; is %s another task's test file?", ds.Name, ErrUnknownLabels,
			someLabels(byCount(unknown)), someLabels(m.Meta.Labels), ds.Name)
	}

	var s Scorer
	for _, ex := range ds.Examples {
		s.Add(ex.Labels[0], p.PredictTokens(ex.Tokens, 1).Top())
	}
	r := s.Report(m.Meta.Labels)
	if n > 0 {
		r.UnknownLabels, r.UnknownExamples = unknown, n
	}
	return r, nil
}

// maxListed is how many labels an error message lists.
const maxListed = 8

// someLabels lists the first maxListed labels, comma-separated, and how many more there are.
func someLabels(labels []string) string {
	if len(labels) <= maxListed {
		return strings.Join(labels, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(labels[:maxListed], ", "),
		len(labels)-maxListed)
}
