package corpus

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strings"
	"unicode"
)

// This file holds the independent model that the tests compare the Reader
// with: it splits the whole input into lines first, tokenizes each line
// with Go's regexp (words) or strings.FieldsFunc (whitespace), and groups
// the tokens into sentences. It shares no code with the Reader.

var wordsRE = regexp.MustCompile(`[a-z]+('[a-z]+)?`)

// oracleWords lower-cases line rune by rune with unicode.ToLower (an invalid
// byte decodes to U+FFFD, which is no letter) and returns the regexp's
// matches. Runes that lower-case to a-z become those letters; every other
// rune is kept and, not being a-z, separates matches.
func oracleWords(line string) []string {
	var b strings.Builder
	for _, rn := range line {
		b.WriteRune(unicode.ToLower(rn))
	}
	return wordsRE.FindAllString(b.String(), -1)
}

// oracleSpace splits line on unicode.IsSpace after replacing each invalid
// byte with U+FFFD (ranging over a string yields U+FFFD per invalid byte).
func oracleSpace(line string) []string {
	var b strings.Builder
	for _, rn := range line {
		b.WriteRune(rn)
	}
	return strings.FieldsFunc(b.String(), unicode.IsSpace)
}

// oracle returns the sentences and the statistics that reading all of data
// should give, with sentences of at most maxSentence tokens.
func oracle(data []byte, tok Tokenizer, maxSentence int) ([][]string, Stats) {
	st := Stats{Bytes: uint64(len(data))}
	text := strings.TrimPrefix(string(data), "\uFEFF")
	if text == "" {
		return nil, st
	}
	lines := strings.Split(text, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1] // the text ends with a newline
	}

	var sents [][]string
	for _, line := range lines {
		st.Lines++
		toks := oracleWords(line)
		if tok == TokenizerWhitespace {
			toks = oracleSpace(line)
		}
		st.Tokens += uint64(len(toks))
		switch {
		case len(toks) == 0:
			st.EmptyLines++
		case len(toks) > maxSentence:
			st.SplitLines++
		}
		for len(toks) > 0 {
			n := min(len(toks), maxSentence)
			sents = append(sents, toks[:n])
			toks = toks[n:]
		}
	}
	return sents, st
}

// readAll reads r to the end and returns its sentences as strings.
func readAll(r *Reader) ([][]string, error) {
	var sents [][]string
	for {
		toks, err := r.Next()
		if errors.Is(err, io.EOF) {
			return sents, nil
		}
		if err != nil {
			return sents, err
		}
		s := make([]string, len(toks))
		for i, t := range toks {
			s[i] = string(t)
		}
		sents = append(sents, s)
	}
}

// readBytes reads data with NewReader's logic under the given limits.
func readBytes(data []byte, opt ReaderOptions, lim limits) ([][]string, Stats, error) {
	r := newReader(bytes.NewReader(data), "test", opt, lim)
	sents, err := readAll(r)
	return sents, r.Stats(), err
}
