// Package corpus reads the sentences of a corpus chunk as a stream.
//
// # Model
//
// A corpus is a set of text files, plain or gzip-compressed, with one
// sentence (or paragraph) per line. Package shard cuts the files into chunks;
// a chunk owns every line that starts inside its byte range (offsets in the
// decompressed text). [OpenChunk] reads exactly those lines, and [NewReader]
// reads a whole stream as one chunk.
//
// A [Reader] turns each line into the tokens of its [Tokenizer] and returns
// them one sentence at a time from [Reader.Next]:
//
//   - a '\n' ends a line, and so does the end of the file; '\r' and every
//     other kind of white space are only separators;
//   - a UTF-8 byte-order mark (EF BB BF) at byte 0 of a file is skipped; the
//     same bytes anywhere else are text;
//   - a line without a token yields no sentence and counts in
//     Stats.EmptyLines;
//   - a line of more than MaxSentence tokens is split into several sentences,
//     never cut short, and counts once in Stats.SplitLines.
//
// # Bounded memory
//
// A Reader never holds a whole line: it tokenizes the bytes as they stream
// through a fixed read buffer, so a line of a gigabyte costs no more than a
// short one. Two caps keep a sentence's own buffer bounded as well. A token
// longer than 4096 bytes is cut into pieces of at most 4096 bytes (at rune
// boundaries; no real word comes near that length). A sentence also ends, as
// a split, when its tokens fill 64 bytes per token of MaxSentence (at least
// 8 KiB), which ordinary text never reaches before MaxSentence tokens.
//
// # What callers must do
//
//  1. Call Next until it returns io.EOF (or another error, which names the
//     file and the byte offset).
//  2. Use the returned tokens before the next call: they alias the Reader's
//     buffers. Copy what must outlive the call.
//  3. Close the Reader. A Reader is not safe for concurrent use.
package corpus
