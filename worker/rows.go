package worker

import (
	"context"
	"fmt"
	"math"
	"slices"

	"golang.org/x/sync/errgroup"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/skipgrid/skipgrid/proto/payload"
	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// blas holds gonum's float32 kernels.
var blas gonum.Implementation

// tables are the two tables a word2vec batch touches, in the order of every per-table array.
var tables = [2]skipgridpb.Table{skipgridpb.Table_TABLE_INPUT, skipgridpb.Table_TABLE_OUTPUT}

// finetuneTables are the two tables a fine-tuning batch touches.
var finetuneTables = [2]skipgridpb.Table{skipgridpb.Table_TABLE_INPUT,
	skipgridpb.Table_TABLE_CLASSIFIER}

// tableList returns the tables of the job's batches, in the order of every per-table array.
func (j *trainJob) tableList() [2]skipgridpb.Table {
	if j.spec.GetKind() == skipgridpb.JobKind_JOB_KIND_FINETUNE {
		return finetuneTables
	}
	return tables
}

// route is the rows of one batch grouped by shard: for each shard and table, the row ids in
// ascending order and the local slot each one fills.
type route struct {
	ids   [][2][]uint32 // [shard][table]
	slots [][2][]int32
	// vers holds the versions the pull answered, in the order of ids (nil where the shard
	// gave none); pushes send them back so that the shard can tell stale deltas.
	vers [][2][]uint32
	keys []uint64 // scratch: id<<32 | slot, sorted
}

// build groups the rows of both tables (global ids by slot) by shard.
func (r *route) build(shardOf []uint8, shards int, bySlot [2][]uint32) {
	if len(r.ids) != shards {
		r.ids = make([][2][]uint32, shards)
		r.slots = make([][2][]int32, shards)
	}
	for t := range tables {
		for s := range shards {
			r.ids[s][t] = r.ids[s][t][:0]
			r.slots[s][t] = r.slots[s][t][:0]
		}
		r.keys = r.keys[:0]
		for slot, id := range bySlot[t] {
			r.keys = append(r.keys, uint64(id)<<32|uint64(slot))
		}
		slices.Sort(r.keys)
		for _, k := range r.keys {
			id := uint32(k >> 32)
			s := shardOf[id]
			r.ids[s][t] = append(r.ids[s][t], id)
			r.slots[s][t] = append(r.slots[s][t], int32(uint32(k)))
		}
	}
}

// traffic counts payload bytes each way.
type traffic struct {
	pulled, pushed uint64
}

// pull fills bufs (slot-ordered rows of each table) from every shard the route names, one
// request per shard, shards in parallel.
func (j *trainJob) pull(ctx context.Context, w *Worker, r *route, bufs [2][]float32,
	tr *traffic) error {
	dim := int(j.spec.GetDim())
	if len(r.vers) != len(r.ids) {
		r.vers = make([][2][]uint32, len(r.ids))
	}
	clear(r.vers)
	var g errgroup.Group
	sizes := make([]uint64, len(r.ids))
	for s := range r.ids {
		if len(r.ids[s][0]) == 0 && len(r.ids[s][1]) == 0 {
			continue
		}
		g.Go(func() error {
			req := &skipgridpb.PullRequest{
				Sender: w.cfg.Name, JobId: j.spec.GetJobId(),
				ValueCodec: j.spec.GetValueCodec(), Compression: j.spec.GetCompression(),
			}
			for t, table := range j.tableList() {
				keys, err := payload.Encode(nil, r.ids[s][t], 0, nil, j.keyOpts)
				if err != nil {
					return fmt.Errorf("encode keys for shard %d: %w", s, err)
				}
				req.Keys = append(req.Keys, &skipgridpb.Keys{Table: table, Payload: keys})
				sizes[s] += uint64(len(keys))
			}

			var resp *skipgridpb.PullResponse
			err := w.retry(ctx, j.shardCall("pull from", s), func(ctx context.Context) error {
				cl := w.client(ctx, j.links, s)
				var err error
				if resp, err = cl.Pull(ctx, req); err != nil {
					j.links.failed()
				}
				return err
			})
			if err != nil {
				return err
			}
			if len(resp.GetRows()) != len(tables) {
				return fmt.Errorf("shard %d answered %d tables, want %d", s,
					len(resp.GetRows()), len(tables))
			}

			var blk payload.Block
			for t, rows := range resp.GetRows() {
				sizes[s] += uint64(len(rows.GetPayload()))
				if err := payload.Decode(rows.GetPayload(), j.limits, &blk); err != nil {
					return fmt.Errorf("decode rows from shard %d: %w", s, err)
				}
				if blk.N != len(r.ids[s][t]) || blk.Dim != dim {
					return fmt.Errorf("shard %d answered %d rows of dim %d, want %d of dim %d",
						s, blk.N, blk.Dim, len(r.ids[s][t]), dim)
				}
				if v := rows.GetVersions(); len(v) == blk.N {
					r.vers[s][t] = v
				}
				for k, slot := range r.slots[s][t] {
					copy(bufs[t][int(slot)*dim:int(slot+1)*dim], blk.Values[k*dim:(k+1)*dim])
				}
			}
			return nil
		})
	}
	err := g.Wait()
	for _, n := range sizes {
		tr.pulled += n
	}
	return err
}

// push sends trained minus pulled rows to their shards, skipping rows that did not change.
// Every value must be finite; the first that is not ends the push before anything is sent.
func (j *trainJob) push(ctx context.Context, w *Worker, r *route, bufs, orig [2][]float32,
	tr *traffic) error {
	dim := int(j.spec.GetDim())
	reqs := make([]*skipgridpb.PushRequest, len(r.ids))
	rowCounts := make([]int, len(r.ids))
	var ids, vers []uint32
	var delta []float32
	for s := range r.ids {
		req := &skipgridpb.PushRequest{Sender: w.cfg.Name, JobId: j.spec.GetJobId(),
			Seq: w.pushSeq.Add(1)}
		for t, table := range j.tableList() {
			ids, vers, delta = ids[:0], nil, delta[:0]
			pulled := r.vers[s][t]
			for k, slot := range r.slots[s][t] {
				start := len(delta)
				delta = append(delta, bufs[t][int(slot)*dim:int(slot+1)*dim]...)
				d := delta[start:]
				blas.Saxpy(dim, -1, orig[t][int(slot)*dim:int(slot+1)*dim], 1, d, 1)

				// One pass tells both: |d|² is 0 for an unchanged row and NaN or +Inf when
				// any element is not finite (or so large that training has diverged).
				sq := blas.Sdot(dim, d, 1, d, 1)
				if sq != sq || sq > math.MaxFloat32 {
					return &nonFiniteError{table: table, row: r.ids[s][t][k]}
				}
				if sq == 0 {
					delta = delta[:start]
					continue
				}
				ids = append(ids, r.ids[s][t][k])
				if pulled != nil {
					vers = append(vers, pulled[k])
				}
			}
			if len(ids) == 0 {
				continue
			}
			body, err := payload.Encode(nil, ids, dim, delta, j.valueOpts)
			if err != nil {
				return fmt.Errorf("encode deltas for shard %d: %w", s, err)
			}
			req.Rows = append(req.Rows, &skipgridpb.Rows{Table: table, Payload: body,
				Versions: vers})
			tr.pushed += uint64(len(body))
			rowCounts[s] += len(ids)
		}
		if len(req.Rows) > 0 {
			reqs[s] = req
		}
	}

	var g errgroup.Group
	for s, req := range reqs {
		if req == nil {
			continue
		}
		g.Go(func() error {
			// A retry repeats req.Seq, so a shard that applied the first attempt (whose
			// answer was lost) does not apply it twice.
			err := w.retry(ctx, j.shardCall("push to", s), func(ctx context.Context) error {
				cl := w.client(ctx, j.links, s)
				_, err := cl.Push(ctx, req)
				if err != nil {
					j.links.failed()
				}
				return err
			})
			if err == nil {
				j.links.acked[s].pushes.Add(1)
				j.links.acked[s].rows.Add(uint64(rowCounts[s]))
			}
			return err
		})
	}
	return g.Wait()
}

// shardCall names a call to shard s for errors: its address and the rows it owns.
func (j *trainJob) shardCall(verb string, s int) string {
	j.links.mu.Lock()
	addr := j.links.addrs[s]
	j.links.mu.Unlock()
	return fmt.Sprintf("%s shard %d at %s (owns %d of %d rows)", verb, s, addr,
		j.shardRows[s], len(j.shardOf))
}

// nonFiniteError is a NaN or infinite value about to be pushed.
type nonFiniteError struct {
	table skipgridpb.Table
	row   uint32
}

func (e *nonFiniteError) Error() string {
	return fmt.Sprintf("non-finite update of %v row %d", e.table, e.row)
}
