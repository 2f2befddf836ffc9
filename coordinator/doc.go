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
// A fine-tuning job (Config.Kind JOB_KIND_FINETUNE, see FinetuneConfig) has no counting
// pass. The coordinator reads the labelled file once (it is held in memory) and the
// pretrained vectors, builds the task vocabulary (training words, then pretrained words the
// file lacks) and the label list, configures every shard with an input table of vocabulary
// plus bigram-bucket rows and a classifier table of one row per label (its own TableSpec.rows),
// both zero, and pushes every input row's start value: its pretrained vector, bit for bit,
// or classify.InitRow's. Training then leases (epoch, chunk) pairs as above, a chunk being a
// range of positions in the epoch's seeded order of the examples, and the exact accounting
// counts examples instead of words. Gathering reads both tables back and writes the model
// (package classify's files) and run.json, whose Finetune part records the missing words.
//
// A lease lives Config.LeaseTimeout after its grant or last heartbeat; an expired lease, or
// one whose worker NodeFailed reports dead, returns its task to the pool ahead of every task
// after it. A late Complete for such a lease is answered accepted=false and ignored, and a
// Heartbeat for it valid=false. Global progress (words_done) is the accepted words plus the
// latest heartbeat words of the live train leases; workers derive the learning rate from it.
//
// # Checkpoints, saved state and recovery
//
// These apply to pretraining jobs. During training Run asks every shard for a checkpoint
// (ParameterServer.Checkpoint, ids increasing across restarts) when an epoch completes and
// every Config.CheckpointEvery. Just before asking, it records which (epoch, chunk) tasks
// were done: each had pushed all its updates, so a shard restored from that checkpoint lacks
// only the updates of tasks done later (and part of those in flight).
//
// Run also asks every shard for its Stats twice a second. An answer with a new incarnation
// (or a shard that registers again, which triggers a look at once) is a restart: Run sends
// the same Configure (a shard restored from a checkpoint answers restored with its id and
// keeps its rows; an empty one is initialised afresh), then rolls training back to the
// newest record at or before the restored checkpoint (to the start of training for an
// empty shard). Every task done since goes back to the pool, every live train lease is
// dropped, and the epochs' sums are recomputed from the tasks still done, so each chunk is
// still accepted exactly once per epoch, and the learning rate follows the rolled-back
// progress. The updates lost are logged and recorded in run.json's recovery part: the
// shard's rows_pushed_since_checkpoint in its last answer before it died, an estimate from
// that poll. A shard that does not answer for Config.ShardDownTimeout fails the job with
// ErrShardDown. There are no replicas: a restart always rolls back.
//
// The core's plain data is saved as JSON to Config.StateDir (OutDir/.state) after every
// batch of changes (at most every 200 ms) and before every checkpoint, through a temporary
// file, synced and renamed; the final vocabulary is saved once beside it. With
// Config.Resume, New loads a saved state of the same job (the corpus and the settings must
// match, or New fails with ErrStateMismatch): a job whose vocabulary was final skips
// counting and continues training where the state left it, with its live leases (given a
// fresh deadline) and lease ids far above any handed out before; shards and workers are
// known from the state and re-register as they call in. The state is removed when the job
// is done or failed, and kept when Run's context ends (the process was stopped to resume)
// or a shard was down (ErrShardDown).
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
