package query

import (
	"context"
	"errors"
	"fmt"
	"math"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// WordResult is the answer for one query word of a neighbours request.
type WordResult struct {
	// Query is the word as asked; Word the vocabulary word it matched (they
	// differ when the match ignored case).
	Query     string     `json:"query"`
	Word      string     `json:"word"`
	Neighbors []Neighbor `json:"neighbors"`
}

// neighbors answers a neighbours request after checking it against the
// request limits (1 to MaxWords words, k in [1, MaxK]).
func neighbors(x *Index, words []string, k int, m Metric) ([]WordResult, error) {
	if len(words) == 0 || len(words) > MaxWords {
		return nil, fmt.Errorf("%w: %d query words; ask for 1 to %d a request",
			ErrInvalidArgument, len(words), MaxWords)
	}
	if err := checkRequestK(k); err != nil {
		return nil, err
	}
	lists, err := x.NeighborsBatch(words, k, m)
	if err != nil {
		return nil, err
	}
	out := make([]WordResult, len(words))
	for i, w := range words {
		r, _ := x.Lookup(w) // found, or NeighborsBatch had failed
		out[i] = WordResult{Query: w, Word: x.Word(r), Neighbors: lists[i]}
	}
	return out, nil
}

// checkRequestK checks k against the request limit.
func checkRequestK(k int) error {
	if k < 1 || k > MaxK {
		return fmt.Errorf("%w: k is %d, must be in [1, %d]", ErrInvalidArgument, k, MaxK)
	}
	return nil
}

// Server implements the Query gRPC service over a Live. Handlers check the
// request, ask the current index and map errors to status codes: NotFound
// for an unknown word, InvalidArgument for a bad parameter, Unavailable
// before the first index is loaded. A request's k of 0 (unset) means
// DefaultK; unset metric and method mean cosine and 3CosAdd.
type Server struct {
	skipgridpb.UnimplementedQueryServer
	live *Live
}

// NewServer returns a server answering from live.
func NewServer(live *Live) *Server { return &Server{live: live} }

// Neighbors returns the k nearest words of each query word.
func (s *Server) Neighbors(_ context.Context, req *skipgridpb.NeighborsRequest) (
	*skipgridpb.NeighborsResponse, error) {
	x, err := s.live.Index()
	if err != nil {
		return nil, toStatus("neighbors", err)
	}
	m, err := MetricFromProto(req.GetMetric())
	if err != nil {
		return nil, toStatus("neighbors", err)
	}
	res, err := neighbors(x, req.GetWords(), protoK(req.GetK()), m)
	if err != nil {
		return nil, toStatus("neighbors", err)
	}

	resp := &skipgridpb.NeighborsResponse{Results: make([]*skipgridpb.NeighborList, len(res))}
	for i, r := range res {
		resp.Results[i] = &skipgridpb.NeighborList{Query: r.Query,
			Neighbors: toProto(r.Neighbors)}
	}
	return resp, nil
}

// Analogy answers "a is to b as c is to ?".
func (s *Server) Analogy(_ context.Context, req *skipgridpb.AnalogyRequest) (
	*skipgridpb.NeighborsResponse, error) {
	x, err := s.live.Index()
	if err != nil {
		return nil, toStatus("analogy", err)
	}
	method, err := AnalogyMethodFromProto(req.GetMethod())
	if err != nil {
		return nil, toStatus("analogy", err)
	}
	k := protoK(req.GetK())
	if err := checkRequestK(k); err != nil {
		return nil, toStatus("analogy", err)
	}
	res, err := x.Analogy(req.GetA(), req.GetB(), req.GetC(), k, method)
	if err != nil {
		return nil, toStatus("analogy", err)
	}
	query := req.GetA() + " : " + req.GetB() + " :: " + req.GetC() + " : ?"
	return &skipgridpb.NeighborsResponse{Results: []*skipgridpb.NeighborList{
		{Query: query, Neighbors: toProto(res)}}}, nil
}

// Similarity scores two words.
func (s *Server) Similarity(_ context.Context, req *skipgridpb.SimilarityRequest) (
	*skipgridpb.SimilarityResponse, error) {
	x, err := s.live.Index()
	if err != nil {
		return nil, toStatus("similarity", err)
	}
	m, err := MetricFromProto(req.GetMetric())
	if err != nil {
		return nil, toStatus("similarity", err)
	}
	score, err := x.Similarity(req.GetWord1(), req.GetWord2(), m)
	if err != nil {
		return nil, toStatus("similarity", err)
	}
	return &skipgridpb.SimilarityResponse{Score: score}, nil
}

// protoK maps a request's k, where 0 means unset, to the k to use.
func protoK(k uint32) int {
	if k == 0 {
		return DefaultK
	}
	return int(min(k, math.MaxInt32)) // fits int everywhere; checkRequestK refuses it
}

// toProto converts neighbours to their wire form.
func toProto(ns []Neighbor) []*skipgridpb.Neighbor {
	out := make([]*skipgridpb.Neighbor, len(ns))
	for i, n := range ns {
		out[i] = &skipgridpb.Neighbor{Word: n.Word, Score: n.Score}
	}
	return out
}

// toStatus maps an error of this package to a gRPC status error.
func toStatus(op string, err error) error {
	code := codes.Internal
	switch {
	case errors.Is(err, ErrUnknownWord):
		code = codes.NotFound
	case errors.Is(err, ErrInvalidArgument):
		code = codes.InvalidArgument
	case errors.Is(err, ErrNotReady):
		code = codes.Unavailable
	}
	return status.Errorf(code, "%s: %v", op, err)
}
