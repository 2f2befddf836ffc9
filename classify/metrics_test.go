package classify

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// handReport scores gold a a b b c against predictions a b b (none) a, worked out by hand:
//
//	a: support 2, predicted 2 (examples 1 and 5), correct 1: P 1/2, R 1/2, F1 1/2
//	b: support 2, predicted 2 (examples 2 and 3), correct 1: P 1/2, R 1/2, F1 1/2
//	c: support 1, predicted 0, correct 0: P 0, R 0, F1 0
//
// accuracy 2/5; macro P = R = F1 = (1/2 + 1/2 + 0)/3 = 1/3; weighted = (2/5)(1/2)*2 = 2/5.
func handReport() Report {
	var s Scorer
	for _, p := range [][2]string{{"a", "a"}, {"a", "b"}, {"b", "b"}, {"b", ""}, {"c", "a"}} {
		s.Add(p[0], p[1])
	}
	return s.Report([]string{"b", "a", "z"})
}

func TestScorerHandValues(t *testing.T) {
	want := Report{
		Examples: 5, Correct: 2, Accuracy: 0.4, Unpredicted: 1,
		MacroPrecision: 1.0 / 3, MacroRecall: 1.0 / 3, MacroF1: 1.0 / 3,
		WeightedPrecision: 0.4, WeightedRecall: 0.4, WeightedF1: 0.4,
		// order b, a first; z has no example and is left out; c follows by bytes.
		Labels: []LabelScore{
			{Label: "b", Precision: 0.5, Recall: 0.5, F1: 0.5, Support: 2, Predicted: 2,
				Correct: 1},
			{Label: "a", Precision: 0.5, Recall: 0.5, F1: 0.5, Support: 2, Predicted: 2,
				Correct: 1},
			{Label: "c", Support: 1},
		},
	}
	if diff := cmp.Diff(want, handReport(), cmpopts.EquateApprox(0, 1e-12)); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
}

func TestReportText(t *testing.T) {
	var b strings.Builder
	if err := handReport().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := `              precision     recall   f1-score    support

           b     0.5000     0.5000     0.5000          2
           a     0.5000     0.5000     0.5000          2
           c     0.0000     0.0000     0.0000          1

    accuracy                           0.4000          5
   macro avg     0.3333     0.3333     0.3333          5
weighted avg     0.4000     0.4000     0.4000          5

1 of 5 examples got no prediction (no known word); they count as wrong
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("text (-want +got):\n%s", diff)
	}
}

func TestEmptyScorer(t *testing.T) {
	var s Scorer
	r := s.Report(nil)
	if r.Accuracy != 0 || r.MacroF1 != 0 || len(r.Labels) != 0 {
		t.Errorf("empty report %+v, want all zero", r)
	}
}
