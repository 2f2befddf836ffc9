package corpus

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestWordsTokenizer(t *testing.T) {
	// Expected tokens worked out by hand from the rule [a-z]+('[a-z]+)?
	// applied leftmost-first after lower-casing.
	tests := []struct {
		in   string
		want []string
	}{
		{"The cat sat.", []string{"the", "cat", "sat"}},
		{"Don't stop", []string{"don't", "stop"}},
		{"rock'n'roll", []string{"rock'n", "roll"}},
		{"'tis the dogs' bone", []string{"tis", "the", "dogs", "bone"}},
		{"a''b", []string{"a", "b"}},
		{"o'clock's", []string{"o'clock", "s"}}, // the second ' has no letter before it
		{"x'y'z'w", []string{"x'y", "z'w"}},
		{"it’s", []string{"it", "s"}}, // U+2019 is not an apostrophe
		{"e-mail 42nd R2D2", []string{"e", "mail", "nd", "r", "d"}},
		{"\u212Aelvin", []string{"kelvin"}},         // Kelvin sign lower-cases to k
		{"\u0130stanbul", []string{"istanbul"}},     // İ lower-cases to i
		{"café naïve", []string{"caf", "na", "ve"}}, // é, ï are not a-z
		{"ΑΒΓ abc", []string{"abc"}},
		{"ab\xffcd\xe2\x84", []string{"ab", "cd"}}, // invalid bytes separate
		{"CAPS\r\nnext", []string{"caps", "next"}},
		{"", nil},
		{"  \t ", nil},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := flatten(mustRead(t, tt.in, TokenizerWords))
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("tokens (-want +got):\n%s", diff)
			}
			oracleSaid := flatten(splitOracle(tt.in, oracleWords))
			if diff := cmp.Diff(tt.want, oracleSaid, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("oracle disagrees with the table (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWhitespaceTokenizer(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"The  Cat's\tsat.", []string{"The", "Cat's", "sat."}},
		{"a\u00a0b\u2003c\u3000d\u0085e", []string{"a", "b", "c", "d", "e"}}, // Unicode spaces
		{"a\vb\fc\rd", []string{"a", "b", "c", "d"}},
		{"caf\xe9 ok", []string{"caf\uFFFD", "ok"}},     // Latin-1 byte
		{"x\xe2\x84", []string{"x\uFFFD\uFFFD"}},        // cut rune: one U+FFFD per byte
		{"\u212A \uFFFD", []string{"\u212A", "\uFFFD"}}, // kept as they are
		{"", nil},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := flatten(mustRead(t, tt.in, TokenizerWhitespace))
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("tokens (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLongTokensAreCut(t *testing.T) {
	// 10000 letters with a 4096-byte cap: pieces of 4096, 4096 and 1808.
	in := strings.Repeat("A", 10000) + " b"
	for _, tok := range []Tokenizer{TokenizerWords, TokenizerWhitespace} {
		sents, st, err := readBytes([]byte(in), ReaderOptions{Tokenizer: tok}, defaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		var lens []int
		for _, s := range flatten(sents) {
			lens = append(lens, len(s))
		}
		if diff := cmp.Diff([]int{4096, 4096, 1808, 1}, lens); diff != "" {
			t.Errorf("%v: token lengths (-want +got):\n%s", tok, diff)
		}
		if st.Tokens != 4 || st.SplitLines != 0 {
			t.Errorf("%v: stats %+v, want 4 tokens and no split line", tok, st)
		}
	}

	// A multi-byte rune is never cut: with 4095 ASCII bytes before it, the
	// 3-byte U+2603 cannot fit in 4096 and starts the next piece.
	in = strings.Repeat("x", 4095) + "\u2603"
	got := flatten(mustRead(t, in, TokenizerWhitespace))
	want := []string{strings.Repeat("x", 4095), "\u2603"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rune at the cap (-want +got):\n%s", diff)
	}
}

func TestParseTokenizer(t *testing.T) {
	for _, tok := range []Tokenizer{TokenizerWords, TokenizerWhitespace} {
		got, err := ParseTokenizer(tok.String())
		if err != nil || got != tok {
			t.Errorf("ParseTokenizer(%q) = %v, %v; want %v", tok.String(), got, err, tok)
		}
	}
	if s := TokenizerWords.String(); s != "words" {
		t.Errorf("TokenizerWords.String() = %q, want words", s)
	}
	if s := Tokenizer(7).String(); s != "Tokenizer(7)" {
		t.Errorf("Tokenizer(7).String() = %q", s)
	}
	for _, s := range []string{"", "Words", "regex"} {
		if _, err := ParseTokenizer(s); !errors.Is(err, ErrUnknownTokenizer) {
			t.Errorf("ParseTokenizer(%q) error = %v, want ErrUnknownTokenizer", s, err)
		}
	}
}

func FuzzWordsTokenizer(f *testing.F) {
	for _, s := range []string{"Don't rock'n'roll 'tis dogs'", "\u212A\u0130 ÀB ﬀ",
		"a''b x'y'z", "\xef\xbb\xbfhi\nthere\r\n", "ab\xffcd\xe2\x84\n\n'\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		// Tiny buffer, caps out of reach: the stream is cut everywhere, and
		// the result must match the regexp on the whole text.
		lim := limits{buffer: 16, maxToken: 1 << 30, maxBytes: 1 << 30}
		for _, tok := range []Tokenizer{TokenizerWords, TokenizerWhitespace} {
			for _, max := range []int{1, 3, maxMaxSentence} {
				opt := ReaderOptions{Tokenizer: tok, MaxSentence: max}
				got, st, err := readBytes([]byte(in), opt, lim)
				if err != nil {
					t.Fatal(err)
				}
				want, wantSt := oracle([]byte(in), tok, max)
				if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
					t.Fatalf("%v, max %d: sentences (-oracle +reader):\n%s", tok, max, diff)
				}
				if diff := cmp.Diff(wantSt, st); diff != "" {
					t.Fatalf("%v, max %d: stats (-oracle +reader):\n%s", tok, max, diff)
				}
			}
		}
	})
}

// mustRead reads in as a whole stream with the default options.
func mustRead(t *testing.T, in string, tok Tokenizer) [][]string {
	t.Helper()
	sents, _, err := readBytes([]byte(in), ReaderOptions{Tokenizer: tok}, defaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	return sents
}

// splitOracle applies a line oracle to each line of in.
func splitOracle(in string, f func(string) []string) [][]string {
	var out [][]string
	for _, line := range strings.Split(in, "\n") {
		out = append(out, f(line))
	}
	return out
}

// flatten joins sentences into one token list.
func flatten(sents [][]string) []string {
	var out []string
	for _, s := range sents {
		out = append(out, s...)
	}
	return out
}
