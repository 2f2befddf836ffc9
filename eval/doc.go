// Package eval scores word vectors on the standard intrinsic tests: word
// analogies and word similarity.
//
// # Analogy
//
// Analogy reads questions "a b c d" (a is to b as c is to d) in sections
// that start with a line ": name", and counts them the way word2vec's
// compute-accuracy does:
//
//  1. Only the first Restrict rows of the vectors are used (30000 by
//     default; 0 means all). Vectors files list the most frequent words
//     first, so this keeps the common words.
//  2. Lookups ignore case: vocabulary and questions are lower-cased. When
//     two rows lower-case to the same word, the earlier (more frequent) row
//     is kept and the later one dropped, from lookups and from the answers.
//  3. A question with any of its four words outside that vocabulary is
//     skipped: it counts in the questions of the file, not in those seen.
//  4. The answer is the word w, other than a, b and c, maximising
//     cos(w, b - a + c) over unit-length rows (3CosAdd); ties go to the more
//     frequent word. The question is correct when that word is d.
//  5. A section whose name starts with "gram" is syntactic, any other
//     semantic.
//
// The scores of a batch of questions come from one float32 matrix product
// (gonum's BLAS). When a batch repeats words, as analogy sets do, the
// product is taken with each distinct question word once and a question's
// scores are then s(b) - s(a) + s(c), the same value by linearity up to
// float32 rounding.
//
// # Similarity
//
// Similarity reads pairs "w1 w2 score" (tab or space separated; lines
// starting with '#' and blank lines are skipped), takes the cosine of the
// two words' vectors (case-insensitive lookup, earlier row first), and
// reports Spearman's rank correlation between cosines and scores over the
// pairs whose words are both known, with how many pairs that is.
//
// Accuracies are fractions in [0, 1]; an empty count gives 0, never NaN.
// Results carry JSON tags for machine-readable output.
package eval
