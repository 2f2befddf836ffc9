package ps

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skipgrid/skipgrid/proto/payload"
	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// scratch is the reusable memory of one request.
type scratch struct {
	blocks []payload.Block
	values []float32
}

// Pull answers the current values of the requested rows: one Rows per Keys, in the same order,
// carrying values only (no ids) in the request's value codec and compression.
func (s *Server) Pull(_ context.Context, req *skipgridpb.PullRequest) (*skipgridpb.PullResponse,
	error) {
	sender := req.GetSender()
	if sender == "" {
		return nil, status.Error(codes.InvalidArgument, "pull without sender: set "+
			"PullRequest.sender to the node's name")
	}
	j, err := s.jobFor("pull", sender, req.GetJobId())
	if err != nil {
		return nil, err
	}
	opt := payload.Options{Values: payload.ValueCodec(req.GetValueCodec()),
		Compress: payload.Compression(req.GetCompression())}
	if err := opt.Validate(); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "pull from %s: %v", sender, err)
	}

	sc := s.pool.Get().(*scratch)
	defer s.pool.Put(sc)
	resp := &skipgridpb.PullResponse{Rows: make([]*skipgridpb.Rows, len(req.GetKeys()))}
	rows := 0
	for i, k := range req.GetKeys() {
		enc, vers, err := s.pullKeys(j, sender, i, k, rows, opt, sc)
		if err != nil {
			return nil, err
		}
		resp.Rows[i] = &skipgridpb.Rows{Table: k.GetTable(), Payload: enc, Versions: vers}
		rows += len(vers)
	}

	s.stats.pulls.Add(1)
	s.stats.rowsPulled.Add(uint64(rows))
	return resp, nil
}

// pullKeys answers keys number i of a pull, after before rows of earlier keys: the encoded
// values and the rows' versions.
func (s *Server) pullKeys(j *job, sender string, i int, k *skipgridpb.Keys, before int,
	opt payload.Options, sc *scratch) ([]byte, []uint32, error) {
	t, err := j.table("pull", sender, k.GetTable())
	if err != nil {
		return nil, nil, err
	}
	if len(sc.blocks) == 0 {
		sc.blocks = make([]payload.Block, 1)
	}
	blk := &sc.blocks[0]
	if err := payload.Decode(k.GetPayload(), s.cfg.Limits, blk); err != nil {
		return nil, nil, status.Errorf(codes.InvalidArgument, "pull from %s: keys[%d]: %v",
			sender, i, err)
	}
	if (blk.IDs == nil && blk.N > 0) || blk.Dim != 0 {
		return nil, nil, status.Errorf(codes.InvalidArgument, "pull from %s: keys[%d] must "+
			"carry ids and no values (has ids %t, dim %d)", sender, i, blk.IDs != nil, blk.Dim)
	}
	if err := j.checkIDs("pull", sender, t, blk.IDs); err != nil {
		return nil, nil, err
	}

	// Bound the answer, all keys together, before reading anything.
	if total := int64(before+blk.N) * int64(j.dim) * 4; total > int64(s.cfg.Limits.MaxBytes) {
		return nil, nil, status.Errorf(codes.ResourceExhausted, "pull from %s: %d rows of dim "+
			"%d take %d bytes, above the limit of %d; pull fewer rows at a time", sender,
			before+blk.N, j.dim, total, s.cfg.Limits.MaxBytes)
	}

	sc.values = growFloats(sc.values, blk.N*j.dim)
	vers := make([]uint32, blk.N)
	for r, id := range blk.IDs {
		vers[r] = t.read(t.m.Local(id), sc.values[r*j.dim:(r+1)*j.dim])
	}
	enc, err := payload.Encode(nil, nil, j.dim, sc.values, opt)
	if errors.Is(err, payload.ErrRange) {
		return nil, nil, status.Errorf(codes.FailedPrecondition, "pull from %s: keys[%d]: %v; "+
			"pull with float32 values", sender, i, err)
	}
	if err != nil {
		return nil, nil, status.Errorf(codes.Internal, "pull from %s: keys[%d]: %v", sender, i,
			err)
	}
	return enc, vers, nil
}

// growFloats returns buf resized to n, reallocated only when too small.
func growFloats(buf []float32, n int) []float32 {
	if cap(buf) < n {
		return make([]float32, n)
	}
	return buf[:n]
}
