package query

import (
	"errors"
	"fmt"
	"strings"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// Errors of this package; test for them with errors.Is.
var (
	// ErrUnknownWord: a query word is in the vocabulary neither exactly nor
	// ignoring case. The error names the word.
	ErrUnknownWord = errors.New("unknown word")
	// ErrInvalidArgument: a parameter is out of range or malformed (k, a
	// metric or method name, the number of words, a vector's length).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotReady: a Live has not loaded its first index yet.
	ErrNotReady = errors.New("no vectors loaded yet")
)

// Limits of one request to Server and Handler. Index methods take any k of
// at least 1 and any number of words.
const (
	// DefaultK is the number of neighbours asked for when a request leaves
	// k unset.
	DefaultK = 10
	// MaxK is the largest k a request may ask for.
	MaxK = 1000
	// MaxWords is the most query words one neighbours request may hold.
	MaxWords = 100
)

// maxParallel bounds Config.Parallel, so that a typo cannot start a
// million goroutines per query.
const maxParallel = 1024

// Config configures an Index.
type Config struct {
	// Parallel is the number of goroutines one search splits the rows
	// across; 1 searches on the calling goroutine. Loading also normalises
	// rows with this many goroutines.
	Parallel int
}

// DefaultConfig returns the configuration that searches on the calling
// goroutine (Parallel 1).
func DefaultConfig() Config {
	return Config{Parallel: 1}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Parallel < 1 || c.Parallel > maxParallel {
		errs = append(errs, fmt.Errorf("query config: Parallel is %d, must be in [1, %d]",
			c.Parallel, maxParallel))
	}
	return errors.Join(errs...)
}

// Metric says how two vectors are compared.
type Metric int

// The metrics; the numbers are those of skipgridpb.Metric.
const (
	// MetricCosine is the cosine of the angle between the vectors; the
	// nearest neighbours have the largest.
	MetricCosine Metric = 1
	// MetricDot is the dot product of the vectors as stored (not
	// normalised); the nearest neighbours have the largest.
	MetricDot Metric = 2
	// MetricEuclidean is the Euclidean distance of the vectors as stored;
	// the nearest neighbours have the smallest, and scores are distances.
	MetricEuclidean Metric = 3
)

// String returns the name ParseMetric accepts.
func (m Metric) String() string {
	switch m {
	case MetricCosine:
		return "cosine"
	case MetricDot:
		return "dot"
	case MetricEuclidean:
		return "euclidean"
	}
	return fmt.Sprintf("Metric(%d)", int(m))
}

// valid reports whether m is one of the metrics.
func (m Metric) valid() bool { return m >= MetricCosine && m <= MetricEuclidean }

// ParseMetric parses cosine, dot or euclidean, in any case.
func ParseMetric(s string) (Metric, error) {
	switch strings.ToLower(s) {
	case "cosine":
		return MetricCosine, nil
	case "dot":
		return MetricDot, nil
	case "euclidean":
		return MetricEuclidean, nil
	}
	return 0, fmt.Errorf("%w: metric %q: use cosine, dot or euclidean", ErrInvalidArgument, s)
}

// MetricFromProto converts a wire metric; METRIC_UNSPECIFIED means cosine.
func MetricFromProto(m skipgridpb.Metric) (Metric, error) {
	if m == skipgridpb.Metric_METRIC_UNSPECIFIED {
		return MetricCosine, nil
	}
	if q := Metric(m); q.valid() {
		return q, nil
	}
	return 0, fmt.Errorf("%w: metric %d is unknown: use METRIC_COSINE, METRIC_DOT or "+
		"METRIC_EUCLIDEAN", ErrInvalidArgument, int32(m))
}

// AnalogyMethod says how an analogy "a is to b as c is to ?" is scored.
type AnalogyMethod int

// The methods; the numbers are those of skipgridpb.AnalogyMethod.
const (
	// Method3CosAdd scores x by cos(x, b) - cos(x, a) + cos(x, c)
	// (Mikolov et al. 2013).
	Method3CosAdd AnalogyMethod = 1
	// Method3CosMul scores x by cos'(x, b) * cos'(x, c) / (cos'(x, a) + eps)
	// with cos' = (1 + cos) / 2 and eps = CosMulEpsilon (Levy and Goldberg
	// 2014).
	Method3CosMul AnalogyMethod = 2
)

// CosMulEpsilon keeps 3CosMul's denominator away from zero.
const CosMulEpsilon = 0.001

// String returns the name ParseAnalogyMethod accepts.
func (m AnalogyMethod) String() string {
	switch m {
	case Method3CosAdd:
		return "3cosadd"
	case Method3CosMul:
		return "3cosmul"
	}
	return fmt.Sprintf("AnalogyMethod(%d)", int(m))
}

// valid reports whether m is one of the methods.
func (m AnalogyMethod) valid() bool { return m == Method3CosAdd || m == Method3CosMul }

// ParseAnalogyMethod parses 3cosadd or 3cosmul, in any case.
func ParseAnalogyMethod(s string) (AnalogyMethod, error) {
	switch strings.ToLower(s) {
	case "3cosadd":
		return Method3CosAdd, nil
	case "3cosmul":
		return Method3CosMul, nil
	}
	return 0, fmt.Errorf("%w: analogy method %q: use 3cosadd or 3cosmul", ErrInvalidArgument, s)
}

// AnalogyMethodFromProto converts a wire method; ANALOGY_METHOD_UNSPECIFIED
// means 3CosAdd.
func AnalogyMethodFromProto(m skipgridpb.AnalogyMethod) (AnalogyMethod, error) {
	if m == skipgridpb.AnalogyMethod_ANALOGY_METHOD_UNSPECIFIED {
		return Method3CosAdd, nil
	}
	if q := AnalogyMethod(m); q.valid() {
		return q, nil
	}
	return 0, fmt.Errorf("%w: analogy method %d is unknown: use ANALOGY_METHOD_3COSADD or "+
		"ANALOGY_METHOD_3COSMUL", ErrInvalidArgument, int32(m))
}

// Neighbor is one word of an answer and its score under the metric asked
// for (a distance for MetricEuclidean).
type Neighbor struct {
	Word  string  `json:"word"`
	Score float64 `json:"score"`
}
