// Package ps is a parameter-server shard: it holds the rows that the shard map gives it, for
// every table of one job, and serves the ParameterServer gRPC service (pull rows, push sparse
// deltas) to workers.
//
// # Life of a shard
//
//  1. New builds a Server from a Config; it holds nothing yet.
//  2. The coordinator calls Configure with the job's id, the shard count, the number of rows,
//     the dimension, the seed and the tables. The server builds the shard map
//     (shard.NewMap), allocates one contiguous []float32 per table for the rows it owns (rows
//     of dim values, in ascending global id order, so row r lives at Local(r)*dim) and
//     initialises them. A table whose TableSpec.rows is set (a fine-tuning job's classifier,
//     one row per label) has that many rows, placed by a shard map of its own; the others
//     have ConfigureRequest.rows, and ConfigureResponse.local_rows counts this shard's share
//     of those. Repeating the same Configure is a no-op; a different one (including another
//     job id) is refused with FailedPrecondition: a shard serves one job for life.
//  3. Workers Pull and Push. Both name the job; a wrong job id is FailedPrecondition, a call
//     before Configure Unavailable (callers retry it: the coordinator configures a shard
//     before training, and again when it restarted without a checkpoint).
//
// # Initial values
//
// INIT_ZERO tables start at zero. INIT_UNIFORM rows are drawn by InitRow from the job seed, the
// table and the global row id alone, so a row starts with the same values whichever shard holds
// it and however many shards there are.
//
// # Validation
//
// Every request is checked in full before anything changes. A Pull decodes each Keys payload
// (proto/payload, ids only, strictly ascending) and checks that every id is below the
// table's rows and owned by this shard; a bad id is InvalidArgument naming the id, the shard that owns
// it and the sender. A Push decodes every Rows block and checks ids the same way, that the
// block's dim is the job's, and that every value is finite; only when the whole push is valid
// is any of it applied, so a rejected push leaves every table untouched. Rejected pushes are
// logged with their sender and counted (StatsResponse.pushes_rejected). Payload sizes are
// bounded by Config.Limits; a pull whose answer would exceed Limits.MaxBytes is
// ResourceExhausted and must be split by the caller.
//
// # Locking
//
// Pushes are applied without a global lock. Each table has 1024 striped read-write locks; the
// row with local index l is guarded by stripe l mod 1024. A push takes the write lock of one
// row's stripe at a time while it adds that row's delta; a pull takes the read lock while it
// copies one row. No goroutine holds two stripe locks, so there is no lock order to keep.
// Each row is therefore read and updated atomically, and concurrent pushes to the same row
// sum; a pull of many rows is not a snapshot across rows (a push may land between two of
// them), which asynchronous SGD tolerates by design.
//
// The job itself (map, tables) is published once by Configure through an atomic pointer and
// never changes afterwards, so handlers read it without locking.
//
// # Checkpoints
//
// With Config.CheckpointDir set, Checkpoint (called by the coordinator with increasing ids)
// writes every table and the job's ConfigureRequest to shard-<n>-<id>.ckpt there: a
// versioned 40-byte header, then a zstd-compressed payload, both covered by CRC-32C
// checksums (the layout is documented in checkpoint_file.go). The file is written to a
// temporary name in the same directory, synced, renamed and the directory synced, so a crash
// leaves the previous file whole; only the newest two are kept. Pushes go on during the copy
// and take the same stripe locks: every row in the file is consistent, the file as a whole
// is not a snapshot, which asynchronous SGD does not need.
//
// New loads the newest checkpoint whose checksums and sizes verify (a damaged or truncated
// one is logged, renamed *.bad and skipped for the one before it) and starts configured with
// that job: workers can pull and push at once, and a Configure identical to the restored
// one answers restored=true with the checkpoint's id. Stats reports the last checkpoint id,
// the pushes and rows pushed since it began (what a crash now would lose), whether the rows
// were restored, and an incarnation number drawn at random at every start, so that a
// restarted shard is told from a live one.
//
// # Metrics
//
// With Config.Registerer set, the server registers counters and gauges named skipgrid_ps_*
// (pulls, pushes, rows pulled and pushed, pushes rejected, table bytes, local rows) with a
// constant label shard, read from the same counters Stats reports.
package ps
