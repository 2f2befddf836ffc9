package coordinator

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skipgrid/skipgrid/proto/payload"
	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/shard"
	"github.com/skipgrid/skipgrid/vectors"
	"github.com/skipgrid/skipgrid/vocab"
)

// gatherPage is the number of rows one gathering pull asks for.
const gatherPage = 8192

// gatherParallel bounds the shards gathered at once.
const gatherParallel = 4

// senderName identifies the coordinator in its PS requests.
const senderName = "coordinator"

// shardSet is the job's PS shards once configured.
type shardSet struct {
	addrs   []string
	clients []skipgridpb.ParameterServerClient
	// rows[s] holds the global row ids shard s owns, ascending.
	rows [][]uint32
	// copies reach the shards' backups (replicas.go).
	copies copyLinks
}

// ownedRows lists the rows of every shard of m, ascending, in one pass over the rows.
func ownedRows(m *shard.Map) [][]uint32 {
	rows := make([][]uint32, m.NumShards())
	for r := range m.Rows() {
		s := m.Shard(uint32(r))
		rows[s] = append(rows[s], uint32(r))
	}
	return rows
}

// configureShards allocates the job's tables on every shard: input rows uniform, output rows
// zero, one row per vocabulary word.
func (c *Coordinator) configureShards(ctx context.Context, v *vocab.Vocab) (*shardSet, error) {
	m, err := shard.NewMap(uint64(v.Len()), c.cfg.NumPS)
	if err != nil {
		return nil, fmt.Errorf("shard map: %w", err)
	}
	c.mu.Lock()
	addrs := c.mu.core.psAddresses()
	c.mu.Unlock()
	set := &shardSet{addrs: addrs, clients: make([]skipgridpb.ParameterServerClient, len(addrs)),
		rows: ownedRows(m)}

	g, gctx := errgroup.WithContext(ctx)
	for s := range addrs {
		g.Go(func() error { return c.configureShard(gctx, set, s, uint64(v.Len())) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	c.log.Info("PS shards configured", "shards", len(addrs), "rows", v.Len(), "dim", c.cfg.Dim)
	return set, nil
}

// configureShard dials shard s and configures it for a pretraining job of rows rows.
func (c *Coordinator) configureShard(ctx context.Context, set *shardSet, s int,
	rows uint64) error {
	return c.configureShardTables(ctx, set, s, rows, c.configureRequest(s, rows).Tables)
}

// retry calls f until it succeeds, fails with an error other than Unavailable, or
// RPCTimeout has passed since the first call. Each failure is logged.
func (c *Coordinator) retry(ctx context.Context, what string,
	f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RPCTimeout)
	defer cancel()
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := f(ctx)
		if err == nil {
			return nil
		}
		if status.Code(err) != codes.Unavailable || ctx.Err() != nil {
			return fmt.Errorf("%s (attempt %d): %w", what, attempt, err)
		}
		c.log.Warn("PS call failed; retrying", "call", what, "attempt", attempt,
			"backoff", backoff, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: gave up after %d attempts in %v: %w", what, attempt,
				c.cfg.RPCTimeout, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// gather reads every input row back from the shards into one Vectors, checking each value
// is finite. It returns the payload bytes moved.
func (c *Coordinator) gather(ctx context.Context, set *shardSet, v *vocab.Vocab) (
	*vectors.Vectors, uint64, error) {
	dim := c.cfg.Dim
	vecs := &vectors.Vectors{Words: v.Words, Dim: dim, Data: make([]float32, v.Len()*dim)}
	var moved atomic.Uint64

	// Shards own disjoint rows, so they fill disjoint parts of vecs.Data.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(gatherParallel)
	for s := range set.clients {
		g.Go(func() error { return c.gatherShard(gctx, set, s, vecs, &moved) })
	}
	if err := g.Wait(); err != nil {
		return nil, 0, err
	}
	return vecs, moved.Load(), nil
}

func (c *Coordinator) gatherShard(ctx context.Context, set *shardSet, s int,
	vecs *vectors.Vectors, moved *atomic.Uint64) error {
	ids := set.rows[s]
	var blk payload.Block
	for start := 0; start < len(ids); start += gatherPage {
		page := ids[start:min(start+gatherPage, len(ids))]
		what := fmt.Sprintf("pull input rows %d..%d (%d rows) from PS shard %d at %s",
			page[0], page[len(page)-1], len(page), s, set.addrs[s])
		rows, err := c.pullPage(ctx, set.clients[s], page, what)
		if err != nil {
			return err
		}
		moved.Add(uint64(len(rows)))

		if err := c.decodePage(rows, page, &blk); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		for i, id := range page {
			row := blk.Row(i)
			if j := firstNonFinite(row); j >= 0 {
				return fmt.Errorf("%s: row %d (word %q) value %d is %v; the table holds "+
					"non-finite values, so no output is written; lower the learning rate",
					what, id, vecs.Words[id], j, row[j])
			}
			copy(vecs.Data[int(id)*vecs.Dim:], row)
		}
	}
	return nil
}

// pullPage pulls the input rows page and returns the answer's payload.
func (c *Coordinator) pullPage(ctx context.Context, cl skipgridpb.ParameterServerClient,
	page []uint32, what string) ([]byte, error) {
	keys, err := payload.Encode(nil, page, 0, nil, payload.Options{Compress: c.cfg.Compression})
	if err != nil {
		return nil, fmt.Errorf("%s: encode keys: %w", what, err)
	}
	req := &skipgridpb.PullRequest{
		Sender: senderName, JobId: c.cfg.JobID,
		Keys:       []*skipgridpb.Keys{{Table: skipgridpb.Table_TABLE_INPUT, Payload: keys}},
		ValueCodec: uint32(payload.ValuesFloat32), Compression: uint32(c.cfg.Compression),
	}
	var resp *skipgridpb.PullResponse
	err = c.retry(ctx, what, func(ctx context.Context) error {
		resp, err = cl.Pull(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	rows := resp.GetRows()
	if len(rows) != 1 || rows[0].GetTable() != skipgridpb.Table_TABLE_INPUT {
		return nil, fmt.Errorf("%s: the answer holds %d row blocks, want one of the input "+
			"table", what, len(rows))
	}
	return rows[0].GetPayload(), nil
}

// decodePage decodes the values of page from b into blk and checks their shape.
func (c *Coordinator) decodePage(b []byte, page []uint32, blk *payload.Block) error {
	dim := c.cfg.Dim
	lim := payload.Limits{MaxRows: len(page), MaxDim: dim,
		MaxBytes: len(page) * (4*dim + 5)}
	if err := payload.Decode(b, lim, blk); err != nil {
		return fmt.Errorf("decode values: %w", err)
	}
	if blk.N != len(page) || blk.Dim != dim {
		return fmt.Errorf("the answer holds %d rows of dim %d, want %d of dim %d", blk.N,
			blk.Dim, len(page), dim)
	}
	if blk.IDs != nil && !slices.Equal(blk.IDs, page) {
		return fmt.Errorf("the answer's row ids differ from the ids asked for")
	}
	return nil
}

// firstNonFinite returns the index of the first NaN or infinite value of row, or -1.
func firstNonFinite(row []float32) int {
	for j, x := range row {
		if f := float64(x); math.IsNaN(f) || math.IsInf(f, 0) {
			return j
		}
	}
	return -1
}
