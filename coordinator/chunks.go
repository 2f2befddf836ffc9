package coordinator

import (
	"github.com/skipgrid/skipgrid/shard"
)

// Bounds of the automatic chunk size.
const (
	// autoChunks is how many chunks the automatic size aims at: enough that workers finish
	// an epoch within a small fraction of each other.
	autoChunks = 64
	// maxGzipChunks bounds the chunks of one gzip file: reaching chunk i decompresses and
	// discards the i chunks before it, so n chunks cost n/2 passes over the file.
	maxGzipChunks = 8
	minAutoChunk  = 256 << 10
	maxAutoChunk  = 16 << 20
	wholeFileSize = 1 << 62
)

// AutoChunkBytes is the chunk size used when Config.ChunkBytes is 0: the corpus over 64,
// within 256 KiB .. 16 MiB. The upper bound keeps the decompress-and-discard cost of
// reaching a chunk inside a gzip file small; the lower bound keeps per-lease overhead small.
// A gzip file is also never cut into more than 8 chunks (see planChunks).
func AutoChunkBytes(total int64) int64 {
	return min(max(total/autoChunks, minAutoChunk), maxAutoChunk)
}

// planChunks splits the corpus into chunks of chunkBytes, or of AutoChunkBytes when it is 0.
// The files are measured once (gzip ones by decompressing), then split without more I/O.
func planChunks(paths []string, chunkBytes int64) ([]shard.Chunk, error) {
	if chunkBytes > 0 {
		return shard.PlanChunks(paths, chunkBytes)
	}
	files, err := shard.PlanChunks(paths, wholeFileSize)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, f := range files {
		total += f.End - f.Start
	}
	size := AutoChunkBytes(total)

	var chunks []shard.Chunk
	for _, f := range files {
		size := size
		if f.Gzip {
			// TODO(skipgrid): a gzip seek index (or workers that keep a stream open across
			// consecutive chunks) would lift this cap, because it exists only to bound the
			// decompression that reaching a chunk costs.
			size = max(size, (f.End-f.Start+maxGzipChunks-1)/maxGzipChunks)
		}
		for start := f.Start; start < f.End; start += size {
			chunks = append(chunks, shard.Chunk{ID: len(chunks), Path: f.Path, Gzip: f.Gzip,
				Start: start, End: min(start+size, f.End)})
		}
	}
	return chunks, nil
}
