// Package worker trains word2vec for a skipgrid job: it leases corpus chunks from the
// coordinator, counts them while the vocabulary is built, then trains them against the rows
// held by the parameter-server shards.
//
// # The training loop
//
// For each leased chunk a worker streams the text, maps tokens to row ids, subsamples frequent
// words and groups sentences into minibatches of about JobSpec.batch_words kept words. For
// each minibatch it
//
//  1. plans the batch (window draws, negatives) and collects the unique rows it touches;
//  2. pulls those rows from their shards, one request per shard, both tables at once;
//  3. trains local copies of the rows;
//  4. checks every changed value is finite, and pushes trained minus pulled rows.
//
// The grouping of rows by shard is computed once per batch and serves both the pull and the
// push. The learning rate decays with the coordinator's global progress, taken at lease time,
// plus the words this lease has read, so one worker with one thread is deterministic.
//
// # Fine-tuning
//
// When the job's kind is JOB_KIND_FINETUNE, a TASK_TRAIN lease names a range [start, end) of
// positions in the epoch's order of the examples (classify.Permutation of the job seed and
// the epoch). The worker reads the labelled file once (JobSpec.train_file, held in memory),
// encodes it with the coordinator's vocabulary and labels, and for each batch of
// batch_examples examples pulls the unique input rows and every classifier row, grouped by
// shard, trains the examples one after the other on the local copies (classify.Trainer), and
// pushes trained minus pulled rows: no input row when the embeddings are frozen, since they
// do not change. It reports the examples of the lease as its words.
//
// # Failures
//
// A shard that does not answer is retried with exponential backoff up to Config.RetryFor,
// then the worker fails with an error naming the shard, its address and the rows it owns. A
// lease the coordinator no longer recognises (its heartbeat answers valid=false) is abandoned
// mid-chunk. A non-finite loss or update is reported to the coordinator, which fails the job.
package worker
