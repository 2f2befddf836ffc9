package eval

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skipgrid/skipgrid/internal/gensimtest"
	"github.com/skipgrid/skipgrid/vectors"
)

// gensimAnalogies scores a questions file with gensim's
// evaluate_word_analogies (3CosAdd, case-insensitive, first rows only) and
// prints [section, correct, incorrect] per section, its total last.
const gensimAnalogies = `
import sys, json
from gensim.models import KeyedVectors
kv = KeyedVectors.load_word2vec_format(sys.argv[1], binary=True)
_, sections = kv.evaluate_word_analogies(sys.argv[2], restrict_vocab=int(sys.argv[3]),
                                         case_insensitive=True)
print(json.dumps([[s["section"], len(s["correct"]), len(s["incorrect"])] for s in sections]))
`

// TestAnalogyMatchesGensim compares Analogy with gensim, question by
// question (one section each), on vectors where analogies often hold. The
// vectors have no two words equal but for case: there gensim keeps both
// spellings as candidates while Analogy keeps the first only.
func TestAnalogyMatchesGensim(t *testing.T) {
	gensimtest.Require(t, "to compare analogy scores with gensim's")
	const n, dim, count = 300, 8, 300
	v := structured(11, n, dim)
	for i, w := range v.Words {
		if strings.HasPrefix(w, "W") {
			v.Words[i] = "x" + strconv.Itoa(i) // no case doubles
		}
	}
	questions := questionsFor(12, n, count)
	dir := t.TempDir()
	vpath, qpath := filepath.Join(dir, "v.bin"), filepath.Join(dir, "q.txt")
	if err := vectors.WriteFile(vpath, v, vectors.FormatBinary); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(qpath, []byte(questions), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, restrict := range []int{n, 200} {
		cmd := exec.Command(gensimtest.Python, "-c", gensimAnalogies, vpath, qpath, strconv.Itoa(restrict))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("gensim: %v\n%s", err, stderr.String())
		}
		var rows [][]any
		if err := json.Unmarshal(out, &rows); err != nil {
			t.Fatalf("gensim output %q: %v", out, err)
		}
		var want []Score
		for _, r := range rows {
			c, i := int(r[1].(float64)), int(r[2].(float64))
			want = append(want, Score{Correct: c, Total: c + i})
		}

		res, err := Analogy(v, strings.NewReader(questions), "q.txt",
			AnalogyOptions{Restrict: restrict})
		if err != nil {
			t.Fatal(err)
		}
		var got []Score
		for _, s := range res.Sections {
			got = append(got, Score{Correct: s.Correct, Total: s.Total})
		}
		got = append(got, Score{Correct: res.Total.Correct, Total: res.Total.Total})
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("restrict %d: per question, then total (-gensim +ours):\n%s", restrict, diff)
		}
		if res.Total.Correct == 0 || res.Total.Correct == res.Total.Total {
			t.Errorf("%d of %d correct: the check needs both outcomes",
				res.Total.Correct, res.Total.Total)
		}
	}
}
