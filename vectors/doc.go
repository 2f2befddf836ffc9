// Package vectors reads and writes word vectors in the formats other tools
// exchange them in.
//
// # Model
//
// A Vectors value is a list of distinct words and one row of Dim float32
// values per word, stored row-major in a single slice. Row i belongs to
// Words[i]; files keep the order they were written in, which for trained
// vectors is by frequency, most frequent first.
//
// # Formats
//
//   - FormatBinary, word2vec's binary format: a text header "<count> <dim>\n",
//     then per entry the word's bytes, one space, dim little-endian float32
//     values and usually a newline. Files with and without that newline load
//     identically; within one file every entry must follow the same rule.
//   - FormatText, word2vec's text format and fastText's .vec files: the same
//     header, then one line per word, "word v1 ... vdim". Values are separated
//     by spaces or tabs; trailing white space (fastText writes a space, Windows
//     tools a carriage return) is ignored, and so are blank lines.
//   - FormatGloVe: the text format without the header. The dimension is
//     taken from the first line.
//
// FormatAuto looks at the first line. Exactly two integers make a word2vec
// header; the file is then text when the bytes after the header (up to
// 1 MiB of them) are valid UTF-8 without NUL bytes and one of their first
// lines holds dim+1 fields, and binary otherwise. A first line made of a word and numbers is
// GloVe. Detection can only go wrong for a file of very few vectors of
// dimension one or two whose raw float bytes happen to read as text; pass the
// format explicitly for those.
//
// Input may be gzip-compressed (recognised by its magic bytes, not its name).
// A UTF-8 byte-order mark at byte 0 is skipped.
//
// # Strictness
//
// Reading refuses anything that would silently give wrong vectors and says
// where: text errors name the file and line, binary errors the file, the
// 1-based entry and its byte offset (of the decompressed content for gzip
// input), and every error says what to do. Refused are: a header count the
// file does not meet or exceeds, a dimension of 0 or beyond MaxDim, a line
// with the wrong number of fields, a value that is not a number or is NaN or
// infinite, an empty word, a word holding ASCII white space, a word that is
// not valid UTF-8 (unless ReadOptions.ReplaceInvalidUTF8 is set), and a word
// seen twice. Every error about the content is a *ParseError wrapping one of
// the package's sentinel errors, so callers can test it with errors.Is;
// errors of the underlying reader are wrapped with the offset reached.
//
// Memory is never allocated from a header's count alone: the count is first
// bounded by the bytes left in the file when the size is known, and storage
// otherwise grows as entries actually arrive.
//
// # Writing
//
// Writers refuse vectors that reading would refuse (Vectors.Check says
// why, CheckWord explains the word rules) before writing a byte, so
// whatever this package writes it reads back: binary bit for
// bit, and text exactly too, since values are written in the shortest form
// that parses back to the same float32. WriteFile writes to a temporary file
// in the target's directory, syncs it and renames it into place, so a reader
// never sees half a file.
package vectors
