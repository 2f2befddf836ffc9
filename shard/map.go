package shard

import (
	"errors"
	"fmt"
)

// ErrInvalidArgument is wrapped by every error that NewMap and PlanChunks
// return for arguments they cannot work with (as opposed to file errors).
var ErrInvalidArgument = errors.New("invalid argument")

// maxRows is the largest number of rows a Map can hold: row ids are uint32.
const maxRows = 1 << 32

// maxShards bounds the shard count so that a typo cannot allocate gigabytes
// of per-shard counters; no cluster comes near it.
const maxShards = 1 << 16

// Map assigns the rows 0..rows-1 of every table to parameter-server shards:
// row r belongs to shard JumpHash(mix64(r), n), where mix64 is the splitmix64
// finaliser, so sequential ids spread evenly. Adding a shard moves only about
// 1/(n+1) of the rows, all of them to the new shard.
//
// A Map is immutable and safe for concurrent use. It costs 4 bytes per row
// (each row's index within its shard); Shard is computed, not stored, and
// takes O(log n) time.
type Map struct {
	rows   uint64
	shards int
	local  []uint32 // local[r] is row r's index within its shard
	counts []uint32 // counts[s] is the number of rows shard s owns
}

// NewMap builds the map of rows rows over shards shards. It fails, wrapping
// ErrInvalidArgument, when shards is not in [1, 65536] or rows exceeds 2^32
// (row ids are uint32). A map of zero rows is valid and owns nothing.
func NewMap(rows uint64, shards int) (*Map, error) {
	if err := checkMapArgs(rows, shards); err != nil {
		return nil, err
	}

	// Number each row within its shard in ascending row order, so that a
	// shard's storage holds its rows sorted by global id.
	m := &Map{
		rows:   rows,
		shards: shards,
		local:  make([]uint32, rows),
		counts: make([]uint32, shards),
	}
	for r := range rows {
		s := JumpHash(mix64(r), shards)
		m.local[r] = m.counts[s]
		m.counts[s]++
	}
	return m, nil
}

// checkMapArgs reports every problem with NewMap's arguments at once.
func checkMapArgs(rows uint64, shards int) error {
	var errs []error
	if shards < 1 || shards > maxShards {
		errs = append(errs, fmt.Errorf("%w: shard count %d is not in [1, %d]; "+
			"give at least one parameter-server shard", ErrInvalidArgument, shards, maxShards))
	}
	if rows > maxRows {
		errs = append(errs, fmt.Errorf("%w: %d rows exceed the limit of 2^32 (row ids "+
			"are uint32); lower the vocabulary size", ErrInvalidArgument, rows))
	}
	return errors.Join(errs...)
}

// NumShards returns the number of shards.
func (m *Map) NumShards() int { return m.shards }

// Rows returns the total number of rows, over all shards.
func (m *Map) Rows() uint64 { return m.rows }

// Shard returns the shard that owns row. It panics when row >= Rows(); callers
// check row ids from outside before they look them up.
func (m *Map) Shard(row uint32) int {
	m.check(row)
	return JumpHash(mix64(uint64(row)), m.shards)
}

// Local returns the index of row within its shard's contiguous storage. It
// panics when row >= Rows().
func (m *Map) Local(row uint32) uint32 {
	m.check(row)
	return m.local[row]
}

// ShardRows returns the global ids of the rows that shard owns, ascending, in
// a new slice: Local(ids[i]) == i. It takes O(Rows() log n) time, so callers
// keep the result rather than asking again. It panics when shard is not in
// [0, NumShards()).
func (m *Map) ShardRows(shard int) []uint32 {
	if shard < 0 || shard >= m.shards {
		panic(fmt.Sprintf("shard: shard %d is not in [0, %d)", shard, m.shards))
	}

	ids := make([]uint32, 0, m.counts[shard])
	for r := range m.rows {
		if JumpHash(mix64(r), m.shards) == shard {
			ids = append(ids, uint32(r))
		}
	}
	return ids
}

// check panics with a clear message when row is out of range.
func (m *Map) check(row uint32) {
	if uint64(row) >= m.rows {
		panic(fmt.Sprintf("shard: row %d is not in [0, %d)", row, m.rows))
	}
}
