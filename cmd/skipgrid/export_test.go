package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skipgrid/skipgrid/vectors"
)

// catsDir holds vectors.bin with the vectors of the case files
// 08-binary-*.bin: cat (0.25, 0.5), dog (0.5, -0.25), bird (-1, 2).
func catsDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	v := &vectors.Vectors{Words: []string{"cat", "dog", "bird"}, Dim: 2,
		Data: []float32{0.25, 0.5, 0.5, -0.25, -1, 2}}
	path := filepath.Join(dir, "vectors.bin")
	if err := vectors.WriteFile(path, v, vectors.FormatBinary); err != nil {
		t.Fatal(err)
	}
	return dir
}

const catsText = "3 2\ncat 0.25 0.5\ndog 0.5 -0.25\nbird -1 2\n"

func TestExportText(t *testing.T) {
	dir := catsDir(t)
	out, err := runCLI(t, "export", "--from", dir, "--format", "text")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "vectors.txt")
	if want := "wrote 3 vectors of dimension 2 to " + path + "\n"; out != want {
		t.Errorf("output %q, want %q", out, want)
	}
	if got, _ := os.ReadFile(path); string(got) != catsText {
		t.Errorf("vectors.txt = %q, want %q", got, catsText)
	}
}

// TestExportBinary checks that a binary export equals the case file
// 08-binary-with-newlines.bin byte for byte, and needs --out.
func TestExportBinary(t *testing.T) {
	dir := catsDir(t)
	if _, err := runCLI(t, "export", "--from", dir, "--format", "bin"); err == nil ||
		!strings.Contains(err.Error(), "needs --out") {
		t.Errorf("export --format bin without --out: %v, want an error asking for --out", err)
	}

	out := filepath.Join(dir, "copy.bin")
	if _, err := runCLI(t, "export", "--from", dir, "--format", "bin", "--out", out); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	want, err := os.ReadFile("../../vectors/testdata/08-binary-with-newlines.bin")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("copy.bin = %q, want %q", got, want)
	}
}

func TestConvert(t *testing.T) {
	dir := t.TempDir()
	// 06-glove-no-header.txt: GloVe rows the 0.25 -0.5 0.125, ", 0.0625 0.5
	// -0.25" and ". 0.75 0.25 -0.125"; converted to text they gain the
	// header "3 3", and the values keep their shortest forms.
	glove := "../../vectors/testdata/06-glove-no-header.txt"
	out := filepath.Join(dir, "v.vec")
	if _, err := runCLI(t, "convert", "--in", glove, "--out", out); err != nil {
		t.Fatal(err)
	}
	want := "3 3\nthe 0.25 -0.5 0.125\n, 0.0625 0.5 -0.25\n. 0.75 0.25 -0.125\n"
	if got, _ := os.ReadFile(out); string(got) != want {
		t.Errorf("v.vec = %q, want %q", got, want)
	}

	// Text to binary and back gives the same text.
	bin := filepath.Join(dir, "v.data")
	if _, err := runCLI(t, "convert", "--in", out, "--out", bin, "--to-format", "bin"); err != nil {
		t.Fatal(err)
	}
	back := filepath.Join(dir, "back.txt")
	_, err := runCLI(t, "convert", "--in", bin, "--from-format", "bin", "--out", back)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(back); string(got) != want {
		t.Errorf("back.txt = %q, want %q", got, want)
	}
}

// TestConvertRefuses: 01-space-in-word.txt line 3 has an empty word, and
// 03-truncated-utf8.bin is read only with --replace-invalid-utf8.
func TestConvertRefuses(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "x.bin")
	_, err := runCLI(t, "convert", "--in", "../../vectors/testdata/01-space-in-word.txt",
		"--out", out)
	if !errors.Is(err, vectors.ErrInvalidWord) || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("error %v, want an invalid word on line 3", err)
	}
	if _, statErr := os.Stat(out); !os.IsNotExist(statErr) {
		t.Errorf("x.bin exists after a refused conversion: %v", statErr)
	}

	in := "../../vectors/testdata/03-truncated-utf8.bin"
	_, err = runCLI(t, "convert", "--in", in, "--out", out)
	if !errors.Is(err, vectors.ErrInvalidWord) {
		t.Errorf("error %v, want an invalid word", err)
	}
	_, err = runCLI(t, "convert", "--in", in, "--out", out, "--replace-invalid-utf8")
	if err != nil {
		t.Fatal(err)
	}
	v, err := vectors.ReadFile(out, vectors.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(v.Words, " "); got != "caf\uFFFD na\uFFFDve ok" {
		t.Errorf("words %q, want caf\uFFFD na\uFFFDve ok", got)
	}
}
