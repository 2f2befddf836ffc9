package query

import (
	"bytes"
	"encoding/json"
	"math"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/skipgrid/skipgrid/internal/gensimtest"
	"github.com/skipgrid/skipgrid/vectors"
)

// gensimQueries loads the word2vec binary file argv[1] with gensim, reads
// a JSON object {"words": [...], "analogies": [[a, b, c], ...]} from stdin
// and prints {"neighbors": [[[word, score], ...], ...], "analogies": ...}:
// most_similar(w, topn=10) for each word and
// most_similar(positive=[b, c], negative=[a], topn=10) for each analogy.
const gensimQueries = `
import json, sys
from gensim.models import KeyedVectors
kv = KeyedVectors.load_word2vec_format(sys.argv[1], binary=True)
req = json.load(sys.stdin)
out = {
    "neighbors": [kv.most_similar(w, topn=10) for w in req["words"]],
    "analogies": [kv.most_similar(positive=[b, c], negative=[a], topn=10)
                  for a, b, c in req["analogies"]],
}
json.dump(out, sys.stdout)
`

// gensimPair decodes gensim's (word, score) tuples, which JSON writes as
// two-element arrays.
type gensimPair struct {
	Word  string
	Score float64
}

func (p *gensimPair) UnmarshalJSON(b []byte) error {
	var raw [2]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if err := json.Unmarshal(raw[0], &p.Word); err != nil {
		return err
	}
	return json.Unmarshal(raw[1], &p.Score)
}

// TestGensimAgrees asks gensim for the top 10 neighbours of 50 words and
// for 5 analogies over 3000 seeded random vectors of dimension 50, and
// checks that the index answers the same words in the same order with the
// same scores to within 1e-5.
//
// gensim scores an analogy by the cosine of x with b - a + c of unit
// vectors, which is the 3CosAdd sum of cosines divided by |b - a + c|; the
// test divides our scores by that norm, taken in float64 from the unit rows.
func TestGensimAgrees(t *testing.T) {
	gensimtest.Require(t, "to compare answers with gensim's")
	v := randomVectors(2014, 3000, 50)
	path := filepath.Join(t.TempDir(), "vectors.bin")
	if err := vectors.WriteFile(path, v, vectors.FormatBinary); err != nil {
		t.Fatal(err)
	}
	var words []string
	for i := range 50 {
		words = append(words, v.Words[i*60])
	}
	analogies := [][3]string{{"w1", "w2", "w3"}, {"w10", "w200", "w300"},
		{"w7", "w77", "w777"}, {"w2999", "w0", "w1500"}, {"w42", "w4", "w2"}}
	got := runGensim(t, path, words, analogies)

	x := mustIndex(t, v, DefaultConfig())
	opt := cmpopts.EquateApprox(0, 1e-5)
	for i, w := range words {
		ours, err := x.Neighbors(w, 10, MetricCosine)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(toPairs(ours, 1), got.Neighbors[i], opt); diff != "" {
			t.Errorf("neighbours of %s (-ours +gensim):\n%s", w, diff)
		}
	}
	for i, q := range analogies {
		ours, err := x.Analogy(q[0], q[1], q[2], 10, Method3CosAdd)
		if err != nil {
			t.Fatal(err)
		}
		norm := sumNorm(t, x, q)
		if diff := cmp.Diff(toPairs(ours, norm), got.Analogies[i], opt); diff != "" {
			t.Errorf("analogy %v (-ours +gensim):\n%s", q, diff)
		}
	}
}

type gensimAnswers struct {
	Neighbors [][]gensimPair `json:"neighbors"`
	Analogies [][]gensimPair `json:"analogies"`
}

// runGensim runs gensimQueries on the file at path.
func runGensim(t *testing.T, path string, words []string,
	analogies [][3]string) gensimAnswers {
	t.Helper()
	req, err := json.Marshal(map[string]any{"words": words, "analogies": analogies})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gensimtest.Python, "-c", gensimQueries, path)
	cmd.Stdin = bytes.NewReader(req)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gensim: %v\n%s", err, stderr.String())
	}
	var got gensimAnswers
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("gensim output: %v\n%s", err, out)
	}
	if len(got.Neighbors) != len(words) || len(got.Analogies) != len(analogies) {
		t.Fatalf("gensim answered %d and %d queries, want %d and %d", len(got.Neighbors),
			len(got.Analogies), len(words), len(analogies))
	}
	return got
}

// toPairs converts neighbours to gensim's form, dividing scores by div.
func toPairs(ns []Neighbor, div float64) []gensimPair {
	out := make([]gensimPair, len(ns))
	for i, n := range ns {
		out[i] = gensimPair{n.Word, n.Score / div}
	}
	return out
}

// sumNorm returns |b - a + c| of the unit rows of the analogy q.
func sumNorm(t *testing.T, x *Index, q [3]string) float64 {
	t.Helper()
	var r [3]int
	for i, w := range q {
		row, err := x.Lookup(w)
		if err != nil {
			t.Fatal(err)
		}
		r[i] = row
	}
	var ss float64
	ua, ub, uc := x.unit(r[0]), x.unit(r[1]), x.unit(r[2])
	for j := range ua {
		d := float64(ub[j]) - float64(ua[j]) + float64(uc[j])
		ss += d * d
	}
	return math.Sqrt(ss)
}
