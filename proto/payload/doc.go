// Package payload defines the byte layout of the row payloads that skipgrid nodes exchange
// inside the Keys and Rows messages of proto/skipgrid.proto.
//
// A payload is one block of rows of a single table: an optional list of row ids and, for each
// row, dim values. Ids are delta-coded, values may be quantized to IEEE half precision, and the
// body may be compressed, so that a pull or push costs little more than its values.
//
// # Layout, version 1
//
// All integers marked uvarint use encoding/binary's unsigned varint (7 bits a byte, low group
// first, high bit set on every byte but the last).
//
//	byte 0      version: 1
//	byte 1      flags:
//	              bit 0     has ids (1: the block lists its row ids)
//	              bits 1-2  value codec: 0 float32, 1 float16 (2 and 3 are unassigned)
//	              bits 3-4  compression: 0 none, 1 S2, 2 zstd (3 is unassigned)
//	              bits 5-7  unassigned, must be 0
//	uvarint     n, the number of rows
//	uvarint     dim, the number of values per row
//	if compression != 0:
//	  uvarint   length of the body once decompressed
//	  rest      the body compressed as a whole: an S2 block (s2.Encode) or one or more zstd
//	            frames
//	else:
//	  rest      the body
//
// The body holds, in order:
//
//	ids         only when "has ids": n uvarints; the first is ids[0], each next one is
//	            ids[i] - ids[i-1] - 1, so ids are strictly ascending and fit in uint32
//	values      n*dim values, row-major: little-endian IEEE 754 binary32 (4 bytes each) or
//	            binary16 (2 bytes each)
//
// Nothing follows the body: a payload with trailing bytes is corrupt. When the block has no
// ids, n rows of dim values are carried by position (a pull answer lists values in the order of
// the request's ids). A block without ids and with dim 0 always has n = 0.
//
// # Versions
//
// The version byte only ever grows: a layout change takes the next number and a decoder keeps
// reading the older ones it knows. Decode refuses a version it does not know (ErrVersion) and a
// flag bit or code it does not know (ErrFlags), so an old node never misreads a newer payload.
//
// # Float16
//
// ValuesFloat16 rounds each float32 to the nearest binary16 value, ties to even (the rounding
// of IEEE 754's default mode). Encode refuses NaN, infinities and any value whose magnitude
// rounds above 65504, the largest finite half, with ErrRange: quantizing must never turn a
// finite delta into a non-finite one. Decode turns every half back into the float32 of exactly
// the same value; it does not judge finiteness (a binary16 infinity decodes as one), which is
// the consumer's check, as it is for float32 payloads.
//
// # Safety
//
// Decode reads bytes from the network. It never panics, and it checks the sizes the header
// announces against Limits before allocating anything: n against MaxRows, dim against MaxDim,
// and the body's length (decompressed when compressed) against MaxBytes. The zstd decoder is
// additionally capped so that no frame can inflate beyond the announced length.
//
// Compression lets a payload of a few hundred bytes inflate, legitimately, to MaxBytes (a
// block of zeros compresses that well), so MaxBytes times the number of payloads decoded at
// once is the memory a node must be able to spare; size MaxBytes with that in mind.
//
// # Concurrency
//
// Encode and Decode are safe for concurrent use. Compressors and decompressors are created once
// and shared; callers need not manage them.
package payload
