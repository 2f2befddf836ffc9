// Package classify holds what the supervised phase of skipgrid needs besides the cluster: the
// labelled data, the bag-of-embeddings model's math, its metrics, predictions and model files.
//
// # Data
//
// Labelled files use fastText's format: each line starts with one or more labels written
// __label__NAME, then the text, separated by white space. A label is recognised only in the
// run of fields at the start of the line; a __label__ field after the first word of text is
// read as text and warned about. A line with no label, an empty line and a line with a
// malformed label (an empty name, invalid UTF-8) are skipped with a warning that names the
// line; a line whose first field is a known label or is followed by a TAB gets a hint
// (`write it as __label__sports`). A labelled line whose text gives no token is kept and
// counted (Summary.NoText): it trains nothing but still counts as an example. A file without
// a single labelled line is ErrNoExamples, never an empty data set.
//
// The text is tokenised with the corpus package's tokenizers, the words tokenizer by default,
// so that task words meet their pretrained vectors. The whole file is held in memory (about
// three times its size, less for repeated words); ReadOptions.MaxBytes bounds it, 1 GiB by
// default. Gzip files are read through.
//
// # Several labels on one line
//
// For training, the target distribution of a line with m distinct labels puts 1/m on each, so
// the softmax cross-entropy pulls the probability mass towards all of them equally. For
// metrics the first label is the gold one: accuracy and the per-label report count a line as
// right when the top prediction equals its first label. A line whose first label the model
// lacks counts as wrong and is counted by label (Report.UnknownLabels); Evaluate refuses a
// file where that is every line (ErrUnknownLabels), as another task's test file.
//
// # Model
//
// fastText's supervised model, line by line as its source has it. A line's features are its
// known words' rows of the input table; then, for a line with at least one token, the row of
// EOS ("</s>", the word fastText reads at every end of line), which every line shares and
// which so learns much like a bias; then, when bigram buckets are set, one row per pair of
// adjacent tokens, EOS included as the last token: vocabulary size + (hash(a, b) mod
// buckets), where hash is fastText's word n-gram hash (FNV-1a of each token over its bytes
// sign-extended, the 32-bit hashes sign-extended to 64 bits and combined as h(a)*116049371 +
// h(b)). Bigrams are formed over every pair of adjacent tokens, known or not, as fastText
// does. The input table holds the words, then the buckets, then the EOS row (InputRows).
// The hidden vector h is the mean of the feature rows; the scores are z = W h with one row of
// W per label (no bias, as in fastText); the probabilities are softmax(z) and the loss is the
// cross-entropy -sum_k y_k log p_k. The gradient is dL/dz = p - y, dL/dW_k = (p_k - y_k) h,
// and every occurrence of a feature row gets (1/n) sum_k (p_k - y_k) W_k. Trainer.Step
// applies one example by SGD: the classifier rows with the learning rate lrOut, the input
// rows with lrIn (0 when they are frozen), W's gradient taken before W moves, as fastText
// does.
//
// Two choices differ from fastText on purpose: a line with several labels trains towards
// all of them with weight 1/m each, where fastText draws one of them at random each time
// (the same gradient in expectation), and the learning rate decays with the examples done,
// where fastText counts tokens (the same schedule up to the order's noise, since the
// examples come in a random order; see the coordinator for how epochs are counted).
//
// # Initial rows
//
// Rows that no pretrained vector fills (task words missing from the vectors, bigram buckets,
// the EOS row unless the vectors have "</s>", every row with random initialisation) start
// with InitRow: uniform in [-1/dim, 1/dim), fastText's range, drawn from the job seed and the
// row id alone. Classifier rows start at zero.
//
// # Model files
//
// A model directory holds vectors.bin (the fine-tuned word rows in word2vec binary format,
// readable like any pretrained vectors), classifier.bin (classifier, bigram and EOS rows, see
// WriteClassifier for the layout), model.json (labels, dimension, buckets, tokenizer and the
// training record) and vocab.txt. Every file is written to a temporary file, synced and
// renamed; model.json is written last, so a directory with a model.json is complete. A
// model written before the EOS row existed has none, and its lines get no EOS row.
//
// # What callers must do
//
//  1. Read the training file with ReadFile, and report Dataset.Warnings and Summary.
//  2. Build the task vocabulary with BuildVocab and the label list with Dataset.LabelList.
//  3. Encode the examples with Encode; train with one Trainer per goroutine.
//  4. Save the model with Save; load it with Load and score or predict with a Predictor.
package classify
