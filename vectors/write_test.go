package vectors

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// sample returns n vectors of dimension dim with awkward words and values:
// non-ASCII words, a no-break space and a control byte inside words, and
// the float32 extremes among seeded random values.
func sample(seed uint64, n, dim int) *Vectors {
	words := []string{"the", "naïve", "東京", "a\u00a0b", "x\x01y", "</s>", "\u0085x"}
	for i := len(words); i < n; i++ {
		words = append(words, fmt.Sprintf("w%d", i))
	}
	words = words[:n]

	special := []float32{0, float32(math.Copysign(0, -1)), math.SmallestNonzeroFloat32,
		math.MaxFloat32, -math.MaxFloat32, 1.1754942e-38, 0.1, 1.0 / 3, -2.5e-7, 65504}
	r := rand.New(rand.NewPCG(seed, 1))
	data := make([]float32, n*dim)
	for i := range data {
		if i < len(special) {
			data[i] = special[i]
		} else {
			data[i] = float32(r.NormFloat64())
		}
	}
	return &Vectors{Words: words, Dim: dim, Data: data}
}

// TestRoundTrip writes vectors in both formats and reads them back: the
// same words in the same order and the same values bit for bit, the text
// format included, whether the format is given or detected.
func TestRoundTrip(t *testing.T) {
	v := sample(1, 40, 7)
	want := contentOf(v)
	writers := map[Format]func(*bytes.Buffer, *Vectors) error{
		FormatBinary: func(b *bytes.Buffer, v *Vectors) error { return WriteBinary(b, v) },
		FormatText:   func(b *bytes.Buffer, v *Vectors) error { return WriteText(b, v) },
	}
	for format, write := range writers {
		var buf bytes.Buffer
		if err := write(&buf, v); err != nil {
			t.Fatal(err)
		}
		for _, read := range []Format{format, FormatAuto} {
			got, err := Read(bytes.NewReader(buf.Bytes()), "rt", ReadOptions{Format: read})
			if err != nil {
				t.Fatalf("write %v, read %v: %v", format, read, err)
			}
			if diff := cmp.Diff(want, contentOf(got)); diff != "" {
				t.Errorf("write %v, read %v (-want +got):\n%s", format, read, diff)
			}
		}
	}
}

// TestWriteExact pins the bytes written: the binary matches the case file
// 08-binary-with-newlines.bin (as word2vec writes it, a newline after each
// vector), the text is the values' shortest forms.
func TestWriteExact(t *testing.T) {
	v := &Vectors{Words: []string{"cat", "dog", "bird"}, Dim: 2,
		Data: []float32{0.25, 0.5, 0.5, -0.25, -1, 2}}
	want, err := os.ReadFile("testdata/08-binary-with-newlines.bin")
	if err != nil {
		t.Fatal(err)
	}
	var bin bytes.Buffer
	if err := WriteBinary(&bin, v); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, bin.Bytes()); diff != "" {
		t.Errorf("binary (-want +got):\n%s", diff)
	}

	var text bytes.Buffer
	if err := WriteText(&text, v); err != nil {
		t.Fatal(err)
	}
	wantText := "3 2\ncat 0.25 0.5\ndog 0.5 -0.25\nbird -1 2\n"
	if diff := cmp.Diff(wantText, text.String()); diff != "" {
		t.Errorf("text (-want +got):\n%s", diff)
	}
}

func TestCheckWord(t *testing.T) {
	bad := []string{"", " ", "new york", "a\tb", "a\nb", "a\rb", "a\vb", "a\fb", "caf\xc3", "\xff"}
	for _, w := range bad {
		if err := CheckWord(w); !errors.Is(err, ErrInvalidWord) {
			t.Errorf("CheckWord(%q) = %v, want ErrInvalidWord", w, err)
		}
	}
	good := []string{"a", "naïve", "東京", "a\u00a0b", "x\x01y", "</s>", "\u0085"}
	for _, w := range good {
		if err := CheckWord(w); err != nil {
			t.Errorf("CheckWord(%q) = %v, want nil", w, err)
		}
	}
}

// TestWriteRefuses checks that writers refuse what readers would, naming the
// word's index, and write nothing.
func TestWriteRefuses(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	tests := []struct {
		name     string
		v        *Vectors
		sentinel error
		fragment string
	}{
		{"space", &Vectors{Words: []string{"a", "new york"}, Dim: 1, Data: []float32{1, 2}},
			ErrInvalidWord, "word at index 1"},
		{"empty", &Vectors{Words: []string{""}, Dim: 1, Data: []float32{1}},
			ErrInvalidWord, "word at index 0"},
		{"utf8", &Vectors{Words: []string{"a", "b", "caf\xc3"}, Dim: 1, Data: []float32{1, 2, 3}},
			ErrInvalidWord, "word at index 2"},
		{"duplicate", &Vectors{Words: []string{"a", "b", "a"}, Dim: 1, Data: []float32{1, 2, 3}},
			ErrDuplicateWord, "word at index 2: duplicate word: \"a\" is also the word at index 0"},
		{"nan", &Vectors{Words: []string{"a", "b"}, Dim: 2, Data: []float32{1, 2, 3, nan}},
			ErrNonFinite, "word at index 1 (\"b\"): non-finite value: value 2 is NaN"},
		{"inf", &Vectors{Words: []string{"a"}, Dim: 1, Data: []float32{inf}},
			ErrNonFinite, "value 1 is +Inf"},
		{"dim 0", &Vectors{Words: []string{}, Dim: 0}, ErrFormat, "dimension 0"},
		{"short data", &Vectors{Words: []string{"a", "b"}, Dim: 2, Data: []float32{1, 2, 3}},
			ErrFormat, "3 values for 2 words of dimension 2, want 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for name, write := range map[string]func(*bytes.Buffer) error{
				"binary": func(b *bytes.Buffer) error { return WriteBinary(b, tt.v) },
				"text":   func(b *bytes.Buffer) error { return WriteText(b, tt.v) },
			} {
				var buf bytes.Buffer
				err := write(&buf)
				if !errors.Is(err, tt.sentinel) || !strings.Contains(fmt.Sprint(err), tt.fragment) {
					t.Errorf("%s: error %v, want %v holding %q",
						name, err, tt.sentinel, tt.fragment)
				}
				if buf.Len() != 0 {
					t.Errorf("%s: wrote %d bytes, want none", name, buf.Len())
				}
			}
		})
	}
}

// TestWriteFile checks the formats WriteFile picks, and that what it writes
// reads back.
func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	v := sample(2, 5, 3)
	for _, tt := range []struct {
		name   string
		format Format
		head   string // start of the file
	}{
		{"vectors.bin", FormatBinary, "5 3\nthe \x00\x00\x00\x00"},
		{"vectors.txt", FormatAuto, "5 3\nthe 0 -0 1e-45\n"},
		{"out.vec", FormatAuto, "5 3\nthe 0 -0 1e-45\n"},
		{"other", FormatAuto, "5 3\nthe \x00\x00\x00\x00"},
		{"glove.txt", FormatGloVe, "the 0 -0 1e-45\n"},
	} {
		path := filepath.Join(dir, tt.name)
		if err := WriteFile(path, v, tt.format); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte(tt.head)) {
			t.Errorf("%s starts %q, want %q", tt.name, b[:min(len(b), 40)], tt.head)
		}
		got, err := ReadFile(path, ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(contentOf(v), contentOf(got)); diff != "" {
			t.Errorf("%s read back (-want +got):\n%s", tt.name, diff)
		}
	}
}

// TestWriteFileReplaces checks that WriteFile replaces a file whole, leaves
// it alone when refusing, and leaves no temporary file behind.
func TestWriteFileReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vectors.bin")
	if err := WriteFile(path, sample(2, 5, 3), FormatBinary); err != nil {
		t.Fatal(err)
	}

	// A refused write leaves the existing file as it was.
	before, _ := os.ReadFile(path)
	bad := &Vectors{Words: []string{"a b"}, Dim: 1, Data: []float32{1}}
	if err := WriteFile(path, bad, FormatBinary); !errors.Is(err, ErrInvalidWord) {
		t.Errorf("WriteFile(bad) = %v, want ErrInvalidWord", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("a refused write changed the existing file")
	}

	// Overwriting replaces the content.
	small := &Vectors{Words: []string{"z"}, Dim: 1, Data: []float32{4}}
	if err := WriteFile(path, small, FormatBinary); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "1 1\nz \x00\x00\x80\x40\n" {
		t.Errorf("after overwrite: %q", got)
	}

	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{"vectors.bin"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("files left (-want +got):\n%s", diff)
	}

	missing := filepath.Join(dir, "no", "such", "dir.bin")
	if err := WriteFile(missing, small, FormatBinary); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
}
