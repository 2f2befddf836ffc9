// Package shard holds the pure functions that every role of a skipgrid job
// shares: which parameter-server shard owns a row of the model, and how the
// corpus files are cut into chunks that workers lease.
//
// # Rows and shards
//
// A job's tables (input vectors, output vectors, and so on) all have the same
// rows, one per vocabulary word. A [Map] sends row r to shard
// JumpHash(mix64(r), n), where mix64 is the splitmix64 finaliser: it spreads
// the sequential row ids over 64 bits so that the jump hash sees keys that
// look random. Every process builds its own Map from the same (rows, shards)
// pair and gets the same answer, so the map itself never travels.
//
// Jump hashing moves as few rows as possible when a shard is added: growing
// from n to n+1 shards moves about 1/(n+1) of the rows, and every row that
// moves goes to the new shard n. A shard keeps its rows in contiguous storage;
// [Map.Local] gives a row's index in that storage and [Map.ShardRows] lists a
// shard's rows in the same order.
//
// # Chunks
//
// [PlanChunks] cuts each corpus file into byte ranges of about the requested
// size. A [Chunk] owns every line that starts inside its range, wherever the
// line ends (the rule Hadoop uses for text splits), so chunk boundaries need
// not fall on line boundaries and still no line is lost or read twice. The
// readers in package corpus implement the rule; callers must read a chunk
// only through them. Gzip files are recognised by their magic bytes and
// measured by their decompressed length, since chunk offsets always refer to
// the decompressed text.
package shard
