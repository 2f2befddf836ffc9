package classify

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// LabelScore is the score of one label.
type LabelScore struct {
	Label string `json:"label"`
	// Precision is Correct / Predicted, Recall Correct / Support, F1 their harmonic mean;
	// each is 0 where its denominator is.
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	// Support counts the examples whose gold label this is, Predicted those predicted as it,
	// Correct both.
	Support   int `json:"support"`
	Predicted int `json:"predicted"`
	Correct   int `json:"correct"`
}

// Report scores predictions against gold labels.
type Report struct {
	Examples int `json:"examples"`
	Correct  int `json:"correct"`
	// Accuracy is Correct / Examples; an example without a prediction counts as wrong.
	Accuracy float64 `json:"accuracy"`
	// Unpredicted counts the examples that got no prediction (no known word).
	Unpredicted int `json:"unpredicted"`
	// Macro averages are the unweighted means over Labels; Weighted ones weigh by support.
	MacroPrecision    float64 `json:"macro_precision"`
	MacroRecall       float64 `json:"macro_recall"`
	MacroF1           float64 `json:"macro_f1"`
	WeightedPrecision float64 `json:"weighted_precision"`
	WeightedRecall    float64 `json:"weighted_recall"`
	WeightedF1        float64 `json:"weighted_f1"`
	// Labels lists every label that is some example's gold label or some prediction.
	Labels []LabelScore `json:"labels"`
	// UnknownExamples counts the examples whose gold label is not one of the model's (they
	// count as wrong); UnknownLabels counts them by that label. Evaluate fills both; they
	// are empty when every gold label is known.
	UnknownExamples int            `json:"unknown_examples,omitempty"`
	UnknownLabels   map[string]int `json:"unknown_labels,omitempty"`
}

// UnknownLabelList formats UnknownLabels as "neg: 2, pos: 1", the most counted label first,
// then by bytes; "" when there are none.
func (r Report) UnknownLabelList() string {
	var b strings.Builder
	for i, l := range byCount(r.UnknownLabels) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %d", l, r.UnknownLabels[l])
	}
	return b.String()
}

// Scorer counts predictions. The zero value is ready to use; not safe for concurrent use.
type Scorer struct {
	examples, correct, unpredicted int
	counts                         map[string]*LabelScore
}

// Add counts one example with gold label gold and prediction predicted ("" when none).
func (s *Scorer) Add(gold, predicted string) {
	if s.counts == nil {
		s.counts = map[string]*LabelScore{}
	}
	at := func(l string) *LabelScore {
		ls, ok := s.counts[l]
		if !ok {
			ls = &LabelScore{Label: l}
			s.counts[l] = ls
		}
		return ls
	}

	s.examples++
	at(gold).Support++
	if predicted == "" {
		s.unpredicted++
		return
	}
	at(predicted).Predicted++
	if predicted == gold {
		s.correct++
		at(gold).Correct++
	}
}

// Report returns the scores. Labels come in order's order, then the labels order lacks, by
// bytes; labels of order that no example has or got are left out.
func (s *Scorer) Report(order []string) Report {
	r := Report{Examples: s.examples, Correct: s.correct, Unpredicted: s.unpredicted}
	r.Accuracy = ratio(s.correct, s.examples)

	var rest []string
	for l := range s.counts {
		if !slices.Contains(order, l) {
			rest = append(rest, l)
		}
	}
	slices.Sort(rest)
	for _, l := range append(slices.Clip(order), rest...) {
		ls, ok := s.counts[l]
		if !ok {
			continue
		}
		sc := *ls
		sc.Precision = ratio(sc.Correct, sc.Predicted)
		sc.Recall = ratio(sc.Correct, sc.Support)
		if sum := sc.Precision + sc.Recall; sum > 0 {
			sc.F1 = 2 * sc.Precision * sc.Recall / sum
		}
		r.Labels = append(r.Labels, sc)
	}
	r.averages()
	return r
}

// averages fills the macro and weighted means from Labels.
func (r *Report) averages() {
	if len(r.Labels) == 0 {
		return
	}
	n := float64(len(r.Labels))
	for _, ls := range r.Labels {
		r.MacroPrecision += ls.Precision / n
		r.MacroRecall += ls.Recall / n
		r.MacroF1 += ls.F1 / n
		if r.Examples > 0 {
			w := float64(ls.Support) / float64(r.Examples)
			r.WeightedPrecision += w * ls.Precision
			r.WeightedRecall += w * ls.Recall
			r.WeightedF1 += w * ls.F1
		}
	}
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// WriteText writes r in the classic classification-report layout: one line per label with
// precision, recall, F1 and support, then accuracy, the macro and the weighted averages, then
// a line each for the examples without a prediction and those with a label the model does
// not know, when there are any.
func (r Report) WriteText(w io.Writer) error {
	width := len("weighted avg")
	for _, ls := range r.Labels {
		width = max(width, len(ls.Label))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%*s %10s %10s %10s %10s\n\n", width, "", "precision", "recall",
		"f1-score", "support")
	for _, ls := range r.Labels {
		fmt.Fprintf(&b, "%*s %10.4f %10.4f %10.4f %10d\n", width, ls.Label, ls.Precision,
			ls.Recall, ls.F1, ls.Support)
	}
	b.WriteByte('\n')
	fmt.Fprintf(&b, "%*s %10s %10s %10.4f %10d\n", width, "accuracy", "", "", r.Accuracy,
		r.Examples)
	fmt.Fprintf(&b, "%*s %10.4f %10.4f %10.4f %10d\n", width, "macro avg", r.MacroPrecision,
		r.MacroRecall, r.MacroF1, r.Examples)
	fmt.Fprintf(&b, "%*s %10.4f %10.4f %10.4f %10d\n", width, "weighted avg",
		r.WeightedPrecision, r.WeightedRecall, r.WeightedF1, r.Examples)
	if r.Unpredicted > 0 {
		fmt.Fprintf(&b, "\n%d of %d examples got no prediction (no known word); they count "+
			"as wrong\n", r.Unpredicted, r.Examples)
	}
	if r.UnknownExamples > 0 {
		fmt.Fprintf(&b, "\n%d of %d examples have a label the model does not know (%s); "+
			"they count as wrong\n", r.UnknownExamples, r.Examples, r.UnknownLabelList())
	}
	_, err := io.WriteString(w, b.String())
	return err
}
