package classify

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func readString(t *testing.T, in string) *Dataset {
	t.Helper()
	ds, err := Read(strings.NewReader(in), "test", ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func TestBuildVocab(t *testing.T) {
	// Counts: the 3, cat 2, a 1, sat 1; extra adds dog (new) and skips cat (known).
	ds := readString(t, "__label__x the cat sat\n__label__y the cat\n__label__x a the\n")
	v := BuildVocab(ds, []string{"dog", "cat"})
	want := []string{"the", "cat", "a", "sat", "dog"}
	if diff := cmp.Diff(want, v.Words); diff != "" {
		t.Errorf("words (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]uint64{3, 2, 1, 1, 0}, v.Counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if v.Trained != 4 {
		t.Errorf("trained %d, want 4", v.Trained)
	}
	if id, ok := v.ID("dog"); !ok || id != 4 {
		t.Errorf("ID(dog) = %d, %v; want 4, true", id, ok)
	}

	back, err := NewVocab(v.Words, v.Counts)
	if err != nil {
		t.Fatal(err)
	}
	if back.Trained != 4 || back.Len() != 5 {
		t.Errorf("NewVocab: %d trained of %d, want 4 of 5", back.Trained, back.Len())
	}
}

func TestNewVocabRefuses(t *testing.T) {
	cases := []struct {
		words  []string
		counts []uint64
		want   string
	}{
		{[]string{"a"}, nil, "1 words but 0 counts"},
		{[]string{"a", ""}, []uint64{1, 1}, "entry 1 is empty"},
		{[]string{"a", "a"}, []uint64{2, 1}, `entry 1 ("a") repeats entry 0`},
		{[]string{"a", "b", "c"}, []uint64{1, 0, 1}, `entry 2 ("c") has count 1 after`},
	}
	for _, tc := range cases {
		_, err := NewVocab(tc.words, tc.counts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewVocab(%q, %v) = %v, want an error with %q", tc.words, tc.counts, err,
				tc.want)
		}
	}
}

func TestBigramBucket(t *testing.T) {
	// FNV-1a 32 of "a" is 0xe40c292c, the published test vector; fastText sign-extends each
	// byte, so "\xc3\xa9" hashes to 1023043777, not to plain FNV-1a's 0x1e9de8c1 (worked out
	// with fastText's hash compiled from its source). For "new"/"york" the hashes are
	// 681154065 and 3790501702; fastText holds them as int32, so york's is sign-extended:
	// (681154065*116049371 + 3790501702 - 2^32) mod 2^64 mod 1000 = 521, and the reverse
	// pair 307 (a separate script and fastText's addWordNgrams compiled from its source).
	if got := fnv1a("a"); got != 0xe40c292c {
		t.Errorf("fnv1a(a) = %#x, want 0xe40c292c", got)
	}
	if got := fnv1a("\xc3\xa9"); got != 1023043777 {
		t.Errorf("fnv1a(\\xc3\\xa9) = %d, want 1023043777", got)
	}
	if got := BigramBucket("new", "york", 1000); got != 521 {
		t.Errorf("bucket(new, york) = %d, want 521", got)
	}
	if got := BigramBucket("york", "new", 1000); got != 307 {
		t.Errorf("bucket(york, new) = %d, want 307", got)
	}
}

func TestFeaturesAndEncode(t *testing.T) {
	ds := readString(t, "__label__b new york\n__label__a __label__b york\n")
	v := BuildVocab(ds, nil) // york 2, new 1
	f := Features{Words: v, Rows: v.Len(), Buckets: 1000}
	rows, known := f.Append(nil, []string{"new", "jersey", "york"})
	// new=1, york=0 known; bigrams (new, jersey) and (jersey, york) over every token, in
	// buckets 344 and 981 (fastText's addWordNgrams compiled from its source).
	want := []int32{1, 0, 2 + 344, 2 + 981}
	if diff := cmp.Diff(want, rows); diff != "" || known != 2 {
		t.Errorf("rows (-want +got):\n%s; known %d, want 2", diff, known)
	}
	// With EOS: its row 2 + 1000 after the words, and one more bigram (york, </s>) in
	// bucket 723; a line without tokens still gets no row.
	f.EOS = true
	rows, known = f.Append(nil, []string{"new", "jersey", "york"})
	want = []int32{1, 0, 1002, 2 + 344, 2 + 981, 2 + 723}
	if diff := cmp.Diff(want, rows); diff != "" || known != 2 {
		t.Errorf("rows with EOS (-want +got):\n%s; known %d, want 2", diff, known)
	}
	if rows, _ := f.Append(nil, nil); len(rows) != 0 {
		t.Errorf("rows of a line without tokens: %v, want none", rows)
	}

	e, err := Encode(ds, v, []string{"b", "a"}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	r0, l0 := e.Example(0)
	r1, l1 := e.Example(1)
	// new york: words, EOS, (new, york) in bucket 521, (york, </s>) in 723.
	if diff := cmp.Diff([]int32{1, 0, 1002, 2 + 521, 2 + 723}, r0); diff != "" {
		t.Errorf("example 0 rows (-want +got):\n%s", diff)
	}
	if !slices.Equal(r1, []int32{0, 1002, 2 + 723}) || !slices.Equal(l0, []int32{0}) ||
		!slices.Equal(l1, []int32{1, 0}) || e.Len() != 2 {
		t.Errorf("example 1 rows %v, labels %v and %v, len %d", r1, l0, l1, e.Len())
	}

	if _, err := Encode(ds, v, []string{"b"}, 0); !errors.Is(err, ErrUnknownLabel) {
		t.Errorf("Encode without label a: %v, want ErrUnknownLabel", err)
	}
}

func TestInitRowAndPermutationHandValues(t *testing.T) {
	// The top 24 bits of the first four draws of the stream of seed 42 and row 7 (key
	// 2^40 + 7), worked out with a separate script from the documented formula.
	u24 := []float64{8929411, 8608021, 4767606, 11142410}
	want := make([]float32, 4)
	for i, u := range u24 {
		want[i] = float32((u/(1<<23) - 1) / 4) // uniform in [-1/dim, 1/dim), dim 4
	}
	got := make([]float32, 4)
	InitRow(42, 7, got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("InitRow(42, 7) (-want +got):\n%s", diff)
	}

	// Permutations of 6 from the same script.
	cases := []struct {
		seed  uint64
		epoch int
		want  []int32
	}{
		{7, 2, []int32{4, 5, 1, 2, 3, 0}},
		{7, 3, []int32{1, 3, 5, 4, 0, 2}},
		{8, 2, []int32{0, 3, 1, 2, 4, 5}},
	}
	for _, tc := range cases {
		if diff := cmp.Diff(tc.want, Permutation(6, tc.seed, tc.epoch)); diff != "" {
			t.Errorf("Permutation(6, %d, %d) (-want +got):\n%s", tc.seed, tc.epoch, diff)
		}
	}
	p := Permutation(1000, 1, 0)
	s := slices.Clone(p)
	slices.Sort(s)
	for i, x := range s {
		if x != int32(i) {
			t.Fatalf("Permutation(1000) is not a permutation: sorted[%d] = %d", i, x)
		}
	}
}
