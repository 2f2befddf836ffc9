package coordinator

import (
	"github.com/skipgrid/skipgrid/shard"
)

// Bounds of the automatic chunk size.
const (
	// autoChunks is how many chunks the automatic size aims at: enough that workers finish
	// an epoch within a small fraction of each other.
	autoChunks    = 64
	minAutoChunk  = 256 << 10
	maxAutoChunk  = 16 << 20
	wholeFileSize = 1 << 62
)

// AutoChunkBytes is the chunk size used when Config.ChunkBytes is 0: the corpus over 64,
// within 256 KiB .. 16 MiB. The upper bound keeps the decompress-and-discard cost of
// reaching a chunk inside a gzip file small; the lower bound keeps per-lease overhead small.
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
		for start := f.Start; start < f.End; start += size {
			chunks = append(chunks, shard.Chunk{ID: len(chunks), Path: f.Path, Gzip: f.Gzip,
				Start: start, End: min(start+size, f.End)})
		}
	}
	return chunks, nil
}
