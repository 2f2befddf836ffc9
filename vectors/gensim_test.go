package vectors

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skipgrid/skipgrid/internal/gensimtest"
)

// gensimDump loads each vectors file named on its command line (path, then
// "bin" or "text") with gensim and prints, per file, a line "== path" and
// then each word and its values, tab-separated; each value is the repr of
// the float32 widened to a Python float (exact, and shortest for that double).
const gensimDump = `
import sys
from gensim.models import KeyedVectors
args = sys.argv[1:]
for path, mode in zip(args[0::2], args[1::2]):
    kv = KeyedVectors.load_word2vec_format(path, binary=(mode == "bin"))
    print("== " + path)
    for w in kv.index_to_key:
        print("\t".join([w] + [repr(float(x)) for x in kv[w]]))
`

// TestGensimReads writes vectors with ASCII and non-ASCII words (and a
// control byte, a no-break space, U+0085) in both formats, values including
// -0, subnormals and the float32 extremes, and checks that gensim reads the
// same words in the same order with the same float32 values.
func TestGensimReads(t *testing.T) {
	gensimtest.Require(t, "to check that gensim reads the files this package writes")
	v := sample(3, 12, 5)
	dir := t.TempDir()
	bin, text := filepath.Join(dir, "vectors.bin"), filepath.Join(dir, "vectors.txt")
	if err := WriteFile(bin, v, FormatBinary); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(text, v, FormatText); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(gensimtest.Python, "-c", gensimDump, bin, "bin", text, "text")
	cmd.Env = append(os.Environ(), "PYTHONIOENCODING=utf-8")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gensim: %v\n%s", err, stderr.String())
	}

	got := parseDump(t, out)
	want := map[string]loaded{bin: contentOf(v), text: contentOf(v)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("gensim read (-written +gensim):\n%s", diff)
	}
}

// parseDump parses gensimDump's output, by file.
func parseDump(t *testing.T, out []byte) map[string]loaded {
	t.Helper()
	got := map[string]loaded{}
	var path string
	for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		if p, ok := strings.CutPrefix(line, "== "); ok {
			path = p
			got[path] = loaded{Bits: []uint32{}}
			continue
		}
		f := strings.Split(line, "\t")
		l := got[path]
		l.Words = append(l.Words, f[0])
		l.Dim = len(f) - 1
		for _, s := range f[1:] {
			x, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("gensim value %q: %v", s, err)
			}
			if float64(float32(x)) != x {
				t.Fatalf("gensim value %s is not a float32", s)
			}
			l.Bits = append(l.Bits, math.Float32bits(float32(x)))
		}
		got[path] = l
	}
	return got
}
