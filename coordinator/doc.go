// Package coordinator runs one skipgrid job: it owns the job's settings, the chunk table, the
// vocabulary and the learning-rate schedule, and it tells workers what to do next.
//
// # Model
//
// A job moves through the phases of skipgridpb.Phase:
//
//  1. STARTING: the coordinator waits (at most Config.StartTimeout) until every PS shard has
//     registered its index and address.
//  2. COUNTING: the corpus is split into chunks (shard.PlanChunks) and every chunk is leased
//     once as a TASK_COUNT. Each chunk's counts are merged exactly once, however often it
//     was retried. The vocabulary is then built with min-count and max-vocab; an empty one
//     fails the job before any shard allocates memory.
//  3. The coordinator configures every shard (input table uniform, output table zero).
//  4. TRAINING: every (epoch, chunk) pair is leased as a TASK_TRAIN, epochs in order and
//     chunks in id order within an epoch. There is no barrier between epochs: epoch e+1's
//     chunks are leased once every chunk of epoch e is leased. Each pair is accepted once;
//     its words_trained (the chunk's in-vocabulary tokens before subsampling) count towards
//     the epoch, and when an epoch's last chunk lands the sum must equal the vocabulary's
//     train words exactly, or the job fails.
//  5. GATHERING: the coordinator pulls every input row back, checks that every value is
//     finite, and writes vectors.bin, vocab.txt and run.json to Config.OutDir.
//  6. DONE, or FAILED at any point (a node's Fail, inexact accounting, a timeout). Leases
//     answer TASK_STOP from GATHERING on and once the job failed.
//
// A lease lives Config.LeaseTimeout after its grant or last heartbeat; an expired lease, or
// one whose worker NodeFailed reports dead, returns its task to the pool ahead of every task
// after it. A late Complete for such a lease is answered accepted=false and ignored, and a
// Heartbeat for it valid=false. Global progress (words_done) is the accepted words plus the
// latest heartbeat words of the live train leases; workers derive the learning rate from it.
//
// # Structure
//
// The state machine (phases, chunk table, leases, accounting) is a deterministic core that
// does no I/O, starts no goroutine and takes the time as an argument; it is tested with a
// fake clock. The gRPC handlers lock one mutex and call the core. Run does the I/O: planning
// chunks, dialling and configuring shards, gathering rows and writing files, polling the
// core between steps.
//
// # What callers must do
//
//  1. Build a Config (DefaultConfig, then the job's corpus, output directory and shard
//     count), and New with a Dialer that reaches PS addresses.
//  2. Serve the Coordinator as a skipgridpb.CoordinatorServer (gRPC or in memory) before or
//     while calling Run; workers and shards may call in before Run starts.
//  3. Call Run once; it returns when the job is done or failed, or ctx ends.
//  4. Report node deaths seen by gossip with NodeFailed; lease deadlines catch the rest.
//  5. Optionally serve Handler for /status and /metrics.
package coordinator
