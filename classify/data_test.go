package classify

import (
	"bytes"
	"compress/gzip"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skipgrid/skipgrid/corpus"
)

// TestReadUnlabeledLines reads case 16: line 3 is "sports<TAB>the game went to overtime",
// line 4 has no label, line 5 is empty; lines 1, 2 and 6 are labelled.
func TestReadUnlabeledLines(t *testing.T) {
	ds, err := ReadFile("testdata/16-unlabeled-lines.txt", ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Example{
		{Line: 1, Labels: []string{"sports"}, Tokens: strings.Fields("the match was great")},
		{Line: 2, Labels: []string{"tech"}, Tokens: strings.Fields("new phone released")},
		{Line: 6, Labels: []string{"tech"}, Tokens: strings.Fields("laptop battery life")},
	}
	if diff := cmp.Diff(want, ds.Examples); diff != "" {
		t.Errorf("examples (-want +got):\n%s", diff)
	}
	wantSum := Summary{Lines: 6, Labelled: 3, Skipped: 3, Empty: 1, Unlabelled: 2, Tokens: 10,
		Warnings: 3}
	if diff := cmp.Diff(wantSum, ds.Summary); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	wantWarn := []Warning{
		{Line: 3, Msg: `no __label__NAME at the start of the line; skipped (if "sports" is ` +
			`its label, write it as __label__sports)`},
		{Line: 4, Msg: "no __label__NAME at the start of the line; skipped"},
		{Line: 5, Msg: "empty line; skipped"},
	}
	if diff := cmp.Diff(wantWarn, ds.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if got, want := ds.WarningText(ds.Warnings[2]),
		"testdata/16-unlabeled-lines.txt:5: empty line; skipped"; got != want {
		t.Errorf("WarningText = %q, want %q", got, want)
	}
	if s := ds.Summary.String(); !strings.HasPrefix(s, "3 labelled and 3 skipped lines") {
		t.Errorf("summary line %q does not start with the counts", s)
	}
}

func TestReadNoLabelledLine(t *testing.T) {
	for _, in := range []string{"", "\n\n", "the weather is nice\nno label here\n",
		"__label__ text after an empty label\n"} {
		ds, err := Read(strings.NewReader(in), "x.txt", ReadOptions{})
		if !errors.Is(err, ErrNoExamples) {
			t.Errorf("%q: err %v, want ErrNoExamples", in, err)
			continue
		}
		if !strings.Contains(err.Error(), "x.txt") || ds == nil {
			t.Errorf("%q: error %q does not name the file, or no summary came back", in, err)
		}
	}
}

func TestReadLineForms(t *testing.T) {
	// Byte-order mark, CRLF, several and repeated labels, a label after the text, a label
	// without text, no final newline.
	in := "\ufeff__label__a __label__b __label__a Hello, World!\r\n" +
		"__label__c\tthe __label__d end\n" +
		"__label__a\n" +
		"__label__\xff bad\n" +
		"__label__b last"
	ds, err := Read(strings.NewReader(in), "f", ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Example{
		{Line: 1, Labels: []string{"a", "b"}, Tokens: []string{"hello", "world"}},
		// The words tokenizer reads "__label__d" as the word "label" and "d".
		{Line: 2, Labels: []string{"c"}, Tokens: []string{"the", "label", "d", "end"}},
		{Line: 3, Labels: []string{"a"}},
		{Line: 5, Labels: []string{"b"}, Tokens: []string{"last"}},
	}
	if diff := cmp.Diff(want, ds.Examples); diff != "" {
		t.Errorf("examples (-want +got):\n%s", diff)
	}
	wantSum := Summary{Lines: 5, Labelled: 4, Skipped: 1, BadLabel: 1, MultiLabel: 1,
		NoText: 1, Tokens: 7, Warnings: 3}
	if diff := cmp.Diff(wantSum, ds.Summary); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	var lines []int
	for _, w := range ds.Warnings {
		lines = append(lines, w.Line)
	}
	if diff := cmp.Diff([]int{2, 3, 4}, lines); diff != "" {
		t.Errorf("warning lines (-want +got):\n%s", diff)
	}
}

func TestReadWhitespaceTokenizerAndGzip(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte("__label__x Hello, World!\n"))
	zw.Close()
	ds, err := Read(&buf, "f.gz", ReadOptions{Tokenizer: corpus.TokenizerWhitespace})
	if err != nil {
		t.Fatal(err)
	}
	want := []Example{{Line: 1, Labels: []string{"x"}, Tokens: []string{"Hello,", "World!"}}}
	if diff := cmp.Diff(want, ds.Examples); diff != "" {
		t.Errorf("examples (-want +got):\n%s", diff)
	}
}

func TestReadLimits(t *testing.T) {
	in := strings.Repeat("__label__a word\n", 10) // 16 bytes a line
	_, err := Read(strings.NewReader(in), "f", ReadOptions{MaxBytes: 100})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "line 7") {
		t.Errorf("err %v, want ErrTooLarge at line 7 (byte 112 > 100)", err)
	}

	in = strings.Repeat("no label\n", 5) + "__label__a x\n"
	ds, err := Read(strings.NewReader(in), "f", ReadOptions{MaxWarnings: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Warnings) != 2 || ds.Summary.Warnings != 5 {
		t.Errorf("kept %d warnings of %d; want 2 of 5", len(ds.Warnings), ds.Summary.Warnings)
	}
}

func TestLabelList(t *testing.T) {
	// First labels: b x2, a x1, c x1; c is also a second label once, so c before a.
	in := "__label__b x\n__label__a x\n__label__b __label__c x\n__label__c x\n"
	ds, err := Read(strings.NewReader(in), "f", ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"b", "c", "a"}, ds.LabelList()); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
}

func FuzzRead(f *testing.F) {
	f.Add([]byte("__label__a hello world\n\n__label__b x\n"))
	f.Add([]byte("sports\tthe game\n__label__ y\n__label__\xff z"))
	f.Add([]byte("\ufeff__label__a __label__a\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ds, err := Read(bytes.NewReader(b), "fuzz", ReadOptions{MaxBytes: 1 << 16})
		if err != nil {
			return
		}
		s := ds.Summary
		if s.Labelled != len(ds.Examples) || s.Labelled+s.Skipped != s.Lines || s.Labelled == 0 {
			t.Fatalf("summary %+v disagrees with %d examples", s, len(ds.Examples))
		}
		for _, ex := range ds.Examples {
			if len(ex.Labels) == 0 {
				t.Fatalf("line %d kept without a label", ex.Line)
			}
		}
	})
}
