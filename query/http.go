package query

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// MaxQueryBytes bounds the query string of an HTTP request.
const MaxQueryBytes = 16 << 10

// Error codes of HTTP error bodies.
const (
	codeUnknownWord = "unknown_word"
	codeInvalid     = "invalid_argument"
	codeNotReady    = "not_ready"
	codeNotFound    = "not_found"
	codeMethod      = "method_not_allowed"
	codeTooLarge    = "too_large"
	codeInternal    = "internal"
)

// NeighborsReply is the JSON body of GET /v1/neighbors.
type NeighborsReply struct {
	Metric  string       `json:"metric"`
	K       int          `json:"k"`
	Results []WordResult `json:"results"`
}

// AnalogyReply is the JSON body of GET /v1/analogy.
type AnalogyReply struct {
	A         string     `json:"a"`
	B         string     `json:"b"`
	C         string     `json:"c"`
	Method    string     `json:"method"`
	K         int        `json:"k"`
	Neighbors []Neighbor `json:"neighbors"`
}

// SimilarityReply is the JSON body of GET /v1/similarity.
type SimilarityReply struct {
	W1     string  `json:"w1"`
	W2     string  `json:"w2"`
	Metric string  `json:"metric"`
	Score  float64 `json:"score"`
}

// ErrorReply is the JSON body of every error answer.
type ErrorReply struct {
	Error string `json:"error"`
	// Code is one of unknown_word, invalid_argument, not_ready, not_found,
	// method_not_allowed, too_large, internal.
	Code string `json:"code"`
}

// route answers one endpoint from the index and the parsed parameters.
type route struct {
	params []string // the parameters the endpoint takes
	answer func(x *Index, q url.Values) (any, error)
}

// handler serves the HTTP endpoints.
type handler struct {
	live   *Live
	log    *slog.Logger
	routes map[string]route
}

// NewHandler returns the HTTP JSON interface to live:
//
//	GET /v1/neighbors?word=W[&word=W...][&k=10][&metric=cosine|dot|euclidean]
//	GET /v1/analogy?a=A&b=B&c=C[&k=10][&method=3cosadd|3cosmul]
//	GET /v1/similarity?w1=W&w2=W[&metric=cosine|dot|euclidean]
//
// Answers are JSON (Content-Type application/json): NeighborsReply,
// AnalogyReply, SimilarityReply, or ErrorReply with status 400 for an
// unknown word or a bad, missing, repeated or unknown parameter, 404 for
// another path, 405 for a method other than GET, 413 for a request with a
// body, 414 for a query string over MaxQueryBytes, and 503 before the first
// index is loaded. The limits of Server apply (k in [1, MaxK], at most
// MaxWords words). A nil logger means slog.Default(); server errors are
// logged at error level, client errors at debug level.
func NewHandler(live *Live, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	return &handler{live: live, log: log, routes: map[string]route{
		"/v1/neighbors":  {[]string{"word", "k", "metric"}, answerNeighbors},
		"/v1/analogy":    {[]string{"a", "b", "c", "k", "method"}, answerAnalogy},
		"/v1/similarity": {[]string{"w1", "w2", "metric"}, answerSimilarity},
	}}
}

// ServeHTTP checks the request's shape, then answers its route.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, ok := h.routes[r.URL.Path]
	switch {
	case !ok:
		h.fail(w, r, http.StatusNotFound, codeNotFound, fmt.Sprintf("no endpoint %q; use "+
			"/v1/neighbors, /v1/analogy or /v1/similarity", r.URL.Path))
		return
	case r.Method != http.MethodGet:
		w.Header().Set("Allow", http.MethodGet)
		h.fail(w, r, http.StatusMethodNotAllowed, codeMethod, fmt.Sprintf("method %s: "+
			"%s answers GET only", r.Method, r.URL.Path))
		return
	case r.ContentLength != 0:
		h.fail(w, r, http.StatusRequestEntityTooLarge, codeTooLarge, "a GET request takes "+
			"no body; pass the parameters in the query string")
		return
	case len(r.URL.RawQuery) > MaxQueryBytes:
		h.fail(w, r, http.StatusRequestURITooLong, codeTooLarge, fmt.Sprintf("the query "+
			"string has %d bytes, more than the limit of %d", len(r.URL.RawQuery),
			MaxQueryBytes))
		return
	}

	q, err := parseQuery(r.URL.RawQuery, rt.params)
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	x, err := h.live.Index()
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	res, err := rt.answer(x, q)
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	h.write(w, r, http.StatusOK, res)
}

// parseQuery parses a query string, refusing parameters outside allowed.
func parseQuery(raw string, allowed []string) (url.Values, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: query string: %v", ErrInvalidArgument, err)
	}
	for name := range q {
		if !slices.Contains(allowed, name) {
			return nil, fmt.Errorf("%w: unknown parameter %q; this endpoint takes %s",
				ErrInvalidArgument, name, strings.Join(allowed, ", "))
		}
	}
	return q, nil
}

// one returns the single value of parameter name, or def when it is absent;
// required parameters pass def "" and required true.
func one(q url.Values, name, def string, required bool) (string, error) {
	vs, ok := q[name]
	switch {
	case !ok && required:
		return "", fmt.Errorf("%w: parameter %q is missing", ErrInvalidArgument, name)
	case !ok:
		return def, nil
	case len(vs) > 1:
		return "", fmt.Errorf("%w: parameter %q is given %d times; give it once",
			ErrInvalidArgument, name, len(vs))
	case vs[0] == "" && required:
		return "", fmt.Errorf("%w: parameter %q is empty", ErrInvalidArgument, name)
	}
	return vs[0], nil
}

// paramK parses k (DefaultK when absent) and checks it.
func paramK(q url.Values) (int, error) {
	s, err := one(q, "k", strconv.Itoa(DefaultK), false)
	if err != nil {
		return 0, err
	}
	k, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%w: k %q is not an integer", ErrInvalidArgument, s)
	}
	return k, checkRequestK(k)
}

// paramMetric parses metric (cosine when absent).
func paramMetric(q url.Values) (Metric, error) {
	s, err := one(q, "metric", MetricCosine.String(), false)
	if err != nil {
		return 0, err
	}
	return ParseMetric(s)
}

func answerNeighbors(x *Index, q url.Values) (any, error) {
	k, err := paramK(q)
	if err != nil {
		return nil, err
	}
	m, err := paramMetric(q)
	if err != nil {
		return nil, err
	}
	res, err := neighbors(x, q["word"], k, m)
	if err != nil {
		return nil, err
	}
	return NeighborsReply{Metric: m.String(), K: k, Results: res}, nil
}

func answerAnalogy(x *Index, q url.Values) (any, error) {
	var abc [3]string
	for i, name := range []string{"a", "b", "c"} {
		s, err := one(q, name, "", true)
		if err != nil {
			return nil, err
		}
		abc[i] = s
	}
	k, err := paramK(q)
	if err != nil {
		return nil, err
	}
	ms, err := one(q, "method", Method3CosAdd.String(), false)
	if err != nil {
		return nil, err
	}
	method, err := ParseAnalogyMethod(ms)
	if err != nil {
		return nil, err
	}
	res, err := x.Analogy(abc[0], abc[1], abc[2], k, method)
	if err != nil {
		return nil, err
	}
	return AnalogyReply{A: abc[0], B: abc[1], C: abc[2], Method: method.String(), K: k,
		Neighbors: res}, nil
}

func answerSimilarity(x *Index, q url.Values) (any, error) {
	w1, err := one(q, "w1", "", true)
	if err != nil {
		return nil, err
	}
	w2, err := one(q, "w2", "", true)
	if err != nil {
		return nil, err
	}
	m, err := paramMetric(q)
	if err != nil {
		return nil, err
	}
	score, err := x.Similarity(w1, w2, m)
	if err != nil {
		return nil, err
	}
	return SimilarityReply{W1: w1, W2: w2, Metric: m.String(), Score: score}, nil
}

// failErr answers err with the status its kind calls for.
func (h *handler) failErr(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrUnknownWord):
		h.fail(w, r, http.StatusBadRequest, codeUnknownWord, err.Error())
	case errors.Is(err, ErrInvalidArgument):
		h.fail(w, r, http.StatusBadRequest, codeInvalid, err.Error())
	case errors.Is(err, ErrNotReady):
		h.fail(w, r, http.StatusServiceUnavailable, codeNotReady, err.Error())
	default:
		h.fail(w, r, http.StatusInternalServerError, codeInternal, err.Error())
	}
}

// fail writes an ErrorReply.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	level := slog.LevelDebug
	if status >= 500 {
		level = slog.LevelError
	}
	h.log.Log(r.Context(), level, "query request failed", "path", r.URL.Path,
		"status", status, "err", msg)
	h.write(w, r, status, ErrorReply{Error: msg, Code: code})
}

// write encodes v as the JSON answer with status.
func (h *handler) write(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only a non-finite score can get here.
		h.log.Error("encode query answer", "path", r.URL.Path, "err", err)
		status = http.StatusInternalServerError
		b, _ = json.Marshal(ErrorReply{Error: "encode the answer: " + err.Error(),
			Code: codeInternal})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
