package ps

import (
	"context"
	"math"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skipgrid/skipgrid/proto/payload"
	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// Push adds sparse deltas to rows. The whole push is checked first (tables, payloads, ids in
// range and owned, dims, finite values); a push with any fault is refused whole, logged with
// its sender and counted as rejected, and nothing of it is applied. A push whose (sender, seq)
// this shard applied already is not applied again. A primary with backups (SetBackups)
// acknowledges a push only once every backup has applied it too.
func (s *Server) Push(ctx context.Context, req *skipgridpb.PushRequest) (
	*skipgridpb.PushResponse, error) {
	sc := s.pool.Get().(*scratch)
	defer s.pool.Put(sc)

	_, tables, err := s.checkPush(req, sc)
	if err != nil {
		s.stats.pushesRejected.Add(1)
		s.log.Warn("push rejected", "sender", req.GetSender(), "job", req.GetJobId(),
			"code", status.Code(err).String(), "err", status.Convert(err).Message())
		return nil, err
	}

	rows := 0
	for b := range tables {
		rows += sc.blocks[b].N
	}
	if s.repl.claim(req.GetSender(), req.GetSeq()) {
		for b, t := range tables {
			blk, vers := &sc.blocks[b], req.GetRows()[b].GetVersions()
			for r, id := range blk.IDs {
				pulled := int64(noVersion)
				if vers != nil {
					pulled = int64(vers[r])
				}
				t.add(t.m.Local(id), blk.Row(r), pulled)
			}
		}
		// TODO(skipgrid): a finite delta can still overflow a row to Inf; rows that large
		// mean training diverged already, which the workers' loss check reports, so it is
		// not checked here.
		s.stats.pushes.Add(1)
		s.stats.rowsPushed.Add(uint64(rows))
		if req.GetForwarded() {
			s.repl.forwarded.Add(1)
		}
	} else {
		s.repl.duplicates.Add(1)
	}

	if err := s.forward(ctx, req); err != nil {
		return nil, err
	}
	return &skipgridpb.PushResponse{RowsApplied: uint64(rows)}, nil
}

// checkPush decodes every block of req into sc.blocks and checks it, returning the job and
// each block's table.
func (s *Server) checkPush(req *skipgridpb.PushRequest, sc *scratch) (*job, []*table, error) {
	sender := req.GetSender()
	if sender == "" {
		return nil, nil, status.Error(codes.InvalidArgument, "push without sender: set "+
			"PushRequest.sender to the node's name")
	}
	j, err := s.jobFor("push", sender, req.GetJobId())
	if err != nil {
		return nil, nil, err
	}

	n := len(req.GetRows())
	if cap(sc.blocks) < n {
		sc.blocks = append(sc.blocks[:cap(sc.blocks)], make([]payload.Block, n-cap(sc.blocks))...)
	}
	sc.blocks = sc.blocks[:n]
	tables := make([]*table, n)
	for i, rows := range req.GetRows() {
		if tables[i], err = s.checkRows(j, sender, i, rows, &sc.blocks[i]); err != nil {
			return nil, nil, err
		}
	}
	return j, tables, nil
}

// checkRows decodes and checks block i of a push.
func (s *Server) checkRows(j *job, sender string, i int, rows *skipgridpb.Rows,
	blk *payload.Block) (*table, error) {
	t, err := j.table("push", sender, rows.GetTable())
	if err != nil {
		return nil, err
	}
	if err := payload.Decode(rows.GetPayload(), s.cfg.Limits, blk); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "push from %s: rows[%d]: %v", sender,
			i, err)
	}
	if blk.IDs == nil && blk.N > 0 {
		return nil, status.Errorf(codes.InvalidArgument, "push from %s: rows[%d] carries "+
			"values without row ids", sender, i)
	}
	if blk.Dim != j.dim {
		return nil, status.Errorf(codes.InvalidArgument, "push from %s: rows[%d] has dim %d, "+
			"the job's dim is %d", sender, i, blk.Dim, j.dim)
	}
	if err := j.checkIDs("push", sender, t, blk.IDs); err != nil {
		return nil, err
	}
	if v := len(rows.GetVersions()); v != 0 && v != blk.N {
		return nil, status.Errorf(codes.InvalidArgument, "push from %s: rows[%d] gives %d "+
			"versions for %d rows", sender, i, v, blk.N)
	}
	for v, x := range blk.Values {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil, status.Errorf(codes.InvalidArgument, "push from %s: row %d holds a "+
				"non-finite value", sender, blk.IDs[v/j.dim])
		}
	}
	return t, nil
}
