package vectors

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzRead checks that no input makes Read panic, and that whatever loads
// writes in both formats and reads back the same, bit for bit.
func FuzzRead(f *testing.F) {
	files, _ := filepath.Glob("testdata/*")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b, uint8(FormatAuto), false)
			f.Add(b, uint8(FormatAuto), true)
		}
	}
	f.Add([]byte("2 2\na 1 2\nb 3 -4\n"), uint8(FormatText), false)
	f.Add([]byte("a 1 2\nb 3 -4"), uint8(FormatGloVe), false)
	f.Add([]byte("1 1\na \x00\x00\x80\x3f\n"), uint8(FormatBinary), false)

	f.Fuzz(func(t *testing.T, data []byte, format uint8, replace bool) {
		opt := ReadOptions{Format: Format(format % 4), ReplaceInvalidUTF8: replace, Logger: quiet}
		v, err := Read(bytes.NewReader(data), "fuzz", opt)
		if err != nil {
			return
		}
		if len(v.Data) != len(v.Words)*v.Dim {
			t.Fatalf("%d values for %d words of dimension %d", len(v.Data), len(v.Words), v.Dim)
		}
		want := contentOf(v)

		for _, f := range []Format{FormatBinary, FormatText} {
			var buf bytes.Buffer
			var err error
			if f == FormatBinary {
				err = WriteBinary(&buf, v)
			} else {
				err = WriteText(&buf, v)
			}
			if err != nil {
				t.Fatalf("loaded vectors do not write as %v: %v", f, err)
			}
			again, err := Read(&buf, "again", ReadOptions{Format: f, Logger: quiet})
			if err != nil {
				t.Fatalf("written %v does not read back: %v", f, err)
			}
			if diff := cmp.Diff(want, contentOf(again)); diff != "" {
				t.Fatalf("%v round trip (-loaded +reloaded):\n%s", f, diff)
			}
		}
	})
}
