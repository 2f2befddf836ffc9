// Package query answers the questions people ask of word vectors: the
// nearest words of a word, analogies ("a is to b as c is to ?") and the
// similarity of two words, from a vectors file or from the live rows of a
// running job, in Go, over gRPC (the Query service) and over HTTP with JSON.
//
// # Model
//
// An Index holds every vector once, in one contiguous row-major float32
// matrix whose rows are scaled to unit length (a zero row stays zero), with
// each row's norm and squared norm beside it. Every search is exact: it
// takes the product of the query's unit vector with every row (gonum's
// float32 Sgemv, a block of rows at a time so that a batch of queries reads
// each block while it is in cache) and keeps the best k rows in a bounded
// heap. From the product s of unit vectors:
//
//   - MetricCosine ranks and scores by s;
//   - MetricDot by |x|·|q|·s, the dot product of the vectors as given;
//   - MetricEuclidean ranks by |q|² - |x-q|² = 2·|q|·|x|·s - |x|², then
//     computes the distances of the k kept rows in float64 from the rows,
//     sorts them nearest first and scores by distance.
//
// Dot and Euclidean scores come from the unit rows and the norms, which
// reproduce the vectors as given to within float32 rounding. Ties go to the
// earlier row, which in vectors files is the more frequent word.
//
// Neighbours of a word leave that word out. Analogy leaves out a, b and c
// and scores either by 3CosAdd, cos(x,b) - cos(x,a) + cos(x,c), computed as
// one product with the vector b - a + c of unit rows, or by 3CosMul (Levy
// and Goldberg 2014), cos'(x,b)·cos'(x,c) / (cos'(x,a) + 0.001) with each
// cosine shifted to [0, 1] as cos' = (1 + cos) / 2.
//
// # Words
//
// Lookup matches a word byte for byte first. Failing that it ignores case:
// the word and the vocabulary are lower-cased (strings.ToLower) and the
// earliest matching row wins, so "Paris" finds "paris" and "PARIS" finds
// whichever spelling is more frequent. A word matching neither is an error
// wrapping ErrUnknownWord and naming the word; bad parameters wrap
// ErrInvalidArgument.
//
// # Sources and refresh
//
// A Source builds indexes: FileSource reads a vectors file; ClusterSource
// asks a job's coordinator for the shard addresses and the vocabulary and
// pulls every input row from the parameter-server shards. A Live holds the
// current index of a Source; Live.Run reloads it every period into a new
// Index and swaps it in atomically, so that queries answered while a job
// trains show the neighbours changing. An answer uses one index throughout;
// a failed reload keeps the previous index. Fixed wraps an index that never
// changes.
//
// # Serving
//
// Server implements skipgridpb.QueryServer and NewHandler the HTTP JSON
// endpoints, both over a Live and both thin: they check a request against
// the limits (k in [1, MaxK], at most MaxWords words, known metric and
// method) and map errors to codes. An unknown word is gRPC NotFound and
// HTTP 400, a bad parameter InvalidArgument and 400, no index yet
// Unavailable and 503.
//
// # Concurrency
//
// An Index never changes once built and is safe for concurrent use; so are
// Live, Server and the handler. With Config.Parallel above 1 one search
// splits the rows across that many goroutines, each keeping its own heaps,
// and merges them; batches of queries and parallel rows combine.
package query
