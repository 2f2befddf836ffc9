package corpus

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Tokenizer selects how a line becomes tokens.
type Tokenizer int

const (
	// TokenizerWords lower-cases each rune (unicode.ToLower) and keeps the
	// matches of [a-z]+('[a-z]+)?, leftmost first, as a regular expression's
	// find-all would: "Don't" gives don't, "rock'n'roll" gives rock'n and
	// roll, "'tis" gives tis. A rune that lower-cases to an ASCII letter
	// (such as the Kelvin sign) counts as that letter; every other rune,
	// invalid UTF-8 bytes included, separates tokens. Only the ASCII
	// apostrophe U+0027 joins letters.
	TokenizerWords Tokenizer = iota + 1
	// TokenizerWhitespace splits on white space (unicode.IsSpace) and keeps
	// the tokens as they are, except that each invalid UTF-8 byte becomes
	// U+FFFD.
	TokenizerWhitespace
)

// ErrUnknownTokenizer is wrapped by the errors for a tokenizer name or value
// that does not exist.
var ErrUnknownTokenizer = errors.New("unknown tokenizer")

// ParseTokenizer returns the tokenizer named s: "words" or "whitespace".
func ParseTokenizer(s string) (Tokenizer, error) {
	switch s {
	case "words":
		return TokenizerWords, nil
	case "whitespace":
		return TokenizerWhitespace, nil
	}
	return 0, fmt.Errorf("%w %q: use words or whitespace", ErrUnknownTokenizer, s)
}

// String returns the tokenizer's name as ParseTokenizer reads it.
func (t Tokenizer) String() string {
	switch t {
	case TokenizerWords:
		return "words"
	case TokenizerWhitespace:
		return "whitespace"
	}
	return fmt.Sprintf("Tokenizer(%d)", int(t))
}

// Token states. The words tokenizer uses all four; the whitespace tokenizer
// only stOut and stWord.
const (
	stOut  = iota // between tokens
	stWord        // in the letters before any apostrophe
	stApos        // after an apostrophe that follows stWord; it is not yet in the token
	stTail        // in the letters after the apostrophe
)

// event says why a scan stopped.
type event uint8

const (
	evMore  event = iota // every byte given was consumed
	evShort              // the bytes end inside a rune; more are needed
	evLine               // a '\n' was consumed
	evFull               // the sentence is full
)

// Byte classes for the words tokenizer.
const (
	clSep    = iota // ASCII that separates tokens
	clLetter        // A-Z, a-z
	clApos          // '
	clNL            // \n
	clHigh          // first byte of a multi-byte rune, or an invalid byte
)

var (
	wordClass  [256]uint8
	asciiSpace [128]bool // unicode.IsSpace for ASCII, '\n' included
)

func init() {
	for c := range 256 {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			wordClass[c] = clLetter
		case c == '\'':
			wordClass[c] = clApos
		case c == '\n':
			wordClass[c] = clNL
		case c >= utf8.RuneSelf:
			wordClass[c] = clHigh
		}
		if c < utf8.RuneSelf {
			asciiSpace[c] = unicode.IsSpace(rune(c))
		}
	}
}

// scanWords runs the words tokenizer over p, the next bytes of the stream,
// and returns how many it consumed and why it stopped. atEOF says no bytes
// follow p.
func (r *Reader) scanWords(p []byte, atEOF bool) (int, event) {
	i := 0
	for i < len(p) {
		c := p[i]
		switch wordClass[c] {
		case clLetter:
			// A run of ASCII letters, lower-cased straight into the arena
			// (grow has made room for it).
			room, full := r.lim.maxToken, false
			if r.state == stOut && len(r.arena)-r.used > room {
				r.tokStart, r.state = r.used, stWord // the common case of grow
			} else if room, full = r.grow(1); full {
				return i, evFull
			}
			run := p[i:min(len(p), i+room)]
			dst := r.arena[r.used:][:len(run)]
			k := 0
			for k < len(run) && wordClass[run[k]] == clLetter {
				dst[k] = run[k] | 0x20
				k++
			}
			r.used += k
			i += k
			continue

		case clApos:
			switch r.state {
			case stWord:
				r.state = stApos
			case stApos, stTail:
				// The token ends before this apostrophe, which then
				// separates: no match can start with it.
				if r.endToken() {
					return i + 1, evFull
				}
			}

		case clNL:
			if r.state != stOut {
				r.endToken()
			}
			return i + 1, evLine

		case clSep:
			if r.state != stOut && r.endToken() {
				return i + 1, evFull
			}

		case clHigh:
			n, ev := r.wordRune(p[i:], atEOF)
			if ev != evMore {
				return i + n, ev
			}
			i += n
			continue
		}
		i++
	}
	return i, evMore
}

// wordRune handles the multi-byte rune (or invalid byte) at the start of p
// for the words tokenizer.
func (r *Reader) wordRune(p []byte, atEOF bool) (int, event) {
	if !atEOF && !utf8.FullRune(p) {
		return 0, evShort
	}
	rn, size := utf8.DecodeRune(p)
	if l := unicode.ToLower(rn); l >= 'a' && l <= 'z' {
		if _, full := r.grow(1); full {
			return 0, evFull
		}
		r.arena[r.used] = byte(l)
		r.used++
		return size, evMore
	}
	if r.state != stOut && r.endToken() {
		return size, evFull
	}
	return size, evMore
}

// scanSpace runs the whitespace tokenizer over p; see scanWords.
func (r *Reader) scanSpace(p []byte, atEOF bool) (int, event) {
	i := 0
	for i < len(p) {
		c := p[i]
		if c >= utf8.RuneSelf {
			n, ev := r.spaceRune(p[i:], atEOF)
			if ev != evMore {
				return i + n, ev
			}
			i += n
			continue
		}
		if c == '\n' {
			if r.state != stOut {
				r.endToken()
			}
			return i + 1, evLine
		}
		if asciiSpace[c] {
			if r.state != stOut && r.endToken() {
				return i + 1, evFull
			}
			i++
			continue
		}

		// A run of ASCII bytes that are not white space.
		room, full := r.grow(1)
		if full {
			return i, evFull
		}
		run := p[i:min(len(p), i+room)]
		k := 1
		for k < len(run) && run[k] < utf8.RuneSelf && !asciiSpace[run[k]] {
			k++
		}
		r.used += copy(r.arena[r.used:], run[:k])
		i += k
	}
	return i, evMore
}

// replacement is U+FFFD in UTF-8, which stands for each invalid byte.
const replacement = "\uFFFD"

// spaceRune handles the multi-byte rune (or invalid byte) at the start of p
// for the whitespace tokenizer.
func (r *Reader) spaceRune(p []byte, atEOF bool) (int, event) {
	if !atEOF && !utf8.FullRune(p) {
		return 0, evShort
	}
	rn, size := utf8.DecodeRune(p)
	if unicode.IsSpace(rn) {
		if r.state != stOut && r.endToken() {
			return size, evFull
		}
		return size, evMore
	}

	if rn == utf8.RuneError && size == 1 {
		if _, full := r.grow(len(replacement)); full {
			return 0, evFull
		}
		r.used += copy(r.arena[r.used:], replacement)
		return size, evMore
	}
	if _, full := r.grow(size); full {
		return 0, evFull
	}
	r.used += copy(r.arena[r.used:], p[:size])
	return size, evMore
}

// grow readies the current token to take need more bytes: it cuts a token
// that would pass maxToken, opens a token, or puts back a pending
// apostrophe that letters now follow. It returns how many bytes the token
// may take now, at least need, all of them free in the arena; and full when
// cutting the token filled the sentence (nothing was opened then).
func (r *Reader) grow(need int) (room int, full bool) {
	if r.state != stOut {
		n := r.used - r.tokStart + need
		if r.state == stApos {
			n++
		}
		if n > r.lim.maxToken && r.endToken() {
			return 0, true
		}
	}
	if len(r.arena)-r.used < need+1 {
		r.growArena(need + 1)
	}

	switch r.state {
	case stOut:
		r.tokStart = r.used
		r.state = stWord
	case stApos:
		r.arena[r.used] = '\''
		r.used++
		r.state = stTail
	}
	return min(r.lim.maxToken-(r.used-r.tokStart), len(r.arena)-r.used), false
}

// growArena makes room for at least n more bytes in the arena, doubling it.
// A sentence ends once it holds maxBytes and a token never passes maxToken,
// so the arena never needs more than maxBytes+maxToken bytes.
func (r *Reader) growArena(n int) {
	size := max(2*len(r.arena), 4096, r.used+n)
	size = min(size, r.lim.maxBytes+r.lim.maxToken+utf8.UTFMax)
	arena := make([]byte, size)
	copy(arena, r.arena[:r.used])
	r.arena = arena
}

// endToken closes the current token (a pending apostrophe stays out of it)
// and reports whether the sentence is now full.
func (r *Reader) endToken() (full bool) {
	r.state = stOut
	if r.nTok == 0 && r.lineTokens > 0 {
		r.markSplit()
	}
	if r.nTok == len(r.ends) {
		r.growEnds()
	}
	r.ends[r.nTok] = r.used
	r.nTok++
	r.lineTokens++
	return r.nTok >= r.maxSentence || r.used >= r.lim.maxBytes
}

// growEnds makes room for more token ends.
func (r *Reader) growEnds() {
	r.ends = append(r.ends, 0)
	r.ends = r.ends[:cap(r.ends)]
}

// markSplit counts the current line as split, once.
func (r *Reader) markSplit() {
	if !r.lineSplit {
		r.stats.SplitLines++
		r.lineSplit = true
	}
}
