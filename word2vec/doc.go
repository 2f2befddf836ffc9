// Package word2vec holds the training mathematics of Skip-Gram and CBOW with negative
// sampling (Mikolov et al. 2013), written for a parameter-server worker: it never touches
// global tables, only dense local copies of the rows a minibatch needs.
//
// # How a worker uses it
//
//  1. Build a Sampler (unigram^0.75 negative-sampling distribution) and a Subsampler
//     (frequent-word keep probabilities) once per job from the vocabulary counts.
//  2. For each minibatch, a Planner walks the sentences with the caller's random source,
//     draws everything random (the dynamic window of each position, the negatives of each
//     target) and maps every row it touches to a local slot. The result is a Batch and the
//     lists of global row ids, by slot, of the input and output tables.
//  3. The caller pulls those rows into two slot-ordered buffers, calls Train, and pushes the
//     difference between the trained and the pulled buffers.
//
// Train replays the plan, so a run is a pure function of the seed, the corpus and the rows
// pulled: one worker with one training goroutine gives bit-identical vectors run after run.
//
// The arithmetic follows word2vec's C tool: the sigmoid comes from a 1,000-entry table over
// [-6, 6] and saturates outside it, the Skip-Gram update of a pair changes the context word's
// input row and the target's output row, and CBOW averages its context rows and adds the whole
// error gradient to each of them. Dot products and axpys use gonum's float32 kernels.
package word2vec
