package coordinator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skipgrid/skipgrid/classify"
	"github.com/skipgrid/skipgrid/proto/payload"
	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/shard"
	"github.com/skipgrid/skipgrid/vectors"
)

// ftShards is a fine-tuning job's shards: the input table's rows by shard (in shardSet) and
// the classifier's, which has a shard map of its own.
type ftShards struct {
	*shardSet
	clsRows [][]uint32
	// load marks the shards that need their initial input rows (see needsRows).
	load []bool
}

// tables are the tables of every shard of the job: the input table (words, bigram buckets
// and the EOS row) and the classifier (one row per label), both zero.
func (tk *ftTask) tables() []*skipgridpb.TableSpec {
	return []*skipgridpb.TableSpec{
		{Table: skipgridpb.Table_TABLE_INPUT, Init: skipgridpb.Init_INIT_ZERO},
		{Table: skipgridpb.Table_TABLE_CLASSIFIER, Init: skipgridpb.Init_INIT_ZERO,
			Rows: uint64(len(tk.labels))},
	}
}

// configureFinetune allocates the job's tables on every shard (see ftTask.tables) and marks
// the shards whose input rows loadRows must fill: those that held no job before.
func (c *Coordinator) configureFinetune(ctx context.Context, tk *ftTask) (*ftShards, error) {
	m, err := shard.NewMap(uint64(tk.rows), c.cfg.NumPS)
	if err != nil {
		return nil, fmt.Errorf("shard map: %w", err)
	}
	cm, err := shard.NewMap(uint64(len(tk.labels)), c.cfg.NumPS)
	if err != nil {
		return nil, fmt.Errorf("classifier shard map: %w", err)
	}
	c.mu.Lock()
	addrs, resumed := c.mu.core.psAddresses(), c.mu.core.resumedFinetune()
	c.mu.Unlock()
	set := &ftShards{
		shardSet: &shardSet{addrs: addrs,
			clients: make([]skipgridpb.ParameterServerClient, len(addrs)), rows: ownedRows(m)},
		clsRows: ownedRows(cm),
		load:    make([]bool, len(addrs)),
	}

	g, gctx := errgroup.WithContext(ctx)
	for s := range addrs {
		g.Go(func() error {
			if err := c.dialShard(gctx, set.shardSet, s); err != nil {
				return err
			}
			before, err := c.shardStats(gctx, set.shardSet, s)
			if err != nil {
				return err
			}
			cr, err := c.sendConfigure(gctx, set.shardSet, s, uint64(tk.rows), tk.tables())
			if err != nil {
				return err
			}
			set.load[s], err = needsRows(s, set.addrs[s], before, cr, resumed)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	c.log.Info("PS shards configured", "shards", len(addrs), "input_rows", tk.rows,
		"classifier_rows", len(tk.labels), "dim", c.cfg.Dim,
		"shards_to_load", countTrue(set.load))
	return set, nil
}

// shardStats returns shard s's Stats answer, retried while the shard is unavailable; nil
// when the shard keeps no stats.
func (c *Coordinator) shardStats(ctx context.Context, set *shardSet, s int) (
	*skipgridpb.StatsResponse, error) {
	var resp *skipgridpb.StatsResponse
	what := fmt.Sprintf("stats of PS shard %d at %s", s, set.addrs[s])
	err := c.retry(ctx, what, func(ctx context.Context) error {
		var err error
		resp, err = set.clients[s].Stats(ctx, &skipgridpb.StatsRequest{})
		return err
	})
	if status.Code(err) == codes.Unimplemented {
		return nil, nil
	}
	return resp, err
}

// configureShardTables dials shard s and configures it with tables of rows rows (unless a
// table says otherwise).
func (c *Coordinator) configureShardTables(ctx context.Context, set *shardSet, s int,
	rows uint64, tables []*skipgridpb.TableSpec) error {
	if err := c.dialShard(ctx, set, s); err != nil {
		return err
	}
	_, err := c.sendConfigure(ctx, set, s, rows, tables)
	return err
}

// dialShard dials shard s at its address in set.
func (c *Coordinator) dialShard(ctx context.Context, set *shardSet, s int) error {
	addr := set.addrs[s]
	cl, err := c.dial(ctx, addr)
	if err != nil {
		return fmt.Errorf("dial PS shard %d at %s: %w", s, addr, err)
	}
	set.clients[s] = cl
	return nil
}

// sendConfigure configures dialled shard s, and its backups, with tables of rows rows, and
// returns the shard's answer.
func (c *Coordinator) sendConfigure(ctx context.Context, set *shardSet, s int, rows uint64,
	tables []*skipgridpb.TableSpec) (*skipgridpb.ConfigureResponse, error) {
	req := c.configureRequest(s, rows)
	req.Tables = tables
	what := fmt.Sprintf("configure PS shard %d at %s", s, set.addrs[s])
	resp, err := c.configureCopy(ctx, set.clients[s], what, req, len(set.rows[s]))
	if err != nil {
		return nil, err
	}
	return resp, c.configureBackups(ctx, set, s, req)
}

// configureCopy sends req to one copy of a shard, retried while it is unavailable, and checks
// that the copy holds the rows the shard map gives the shard. what names the call in errors.
func (c *Coordinator) configureCopy(ctx context.Context, cl skipgridpb.ParameterServerClient,
	what string, req *skipgridpb.ConfigureRequest, rows int) (*skipgridpb.ConfigureResponse,
	error) {
	var resp *skipgridpb.ConfigureResponse
	err := c.retry(ctx, what, func(ctx context.Context) error {
		var err error
		resp, err = cl.Configure(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	if resp.GetLocalRows() != uint64(rows) {
		return nil, fmt.Errorf("%s: it holds %d rows, the shard map gives the shard %d; it "+
			"and the coordinator disagree on the shard map", what, resp.GetLocalRows(), rows)
	}
	return resp, nil
}

// loadRows pushes every input row's start value (pretrained vector or InitRow) onto the
// zero rows of its shard, for the shards set.load marks, so that a pretrained row arrives
// bit for bit. The payload bytes pushed are added to tk.loadBytes.
func (c *Coordinator) loadRows(ctx context.Context, set *ftShards, tk *ftTask) error {
	var sent atomic.Uint64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(gatherParallel)
	rows := 0
	for s := range set.clients {
		if !set.load[s] {
			continue
		}
		rows += len(set.rows[s])
		g.Go(func() error { return c.loadShard(gctx, set.shardSet, s, tk, &sent) })
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("load initial rows: %w", err)
	}
	c.log.Info("initial rows loaded", "rows", rows, "of", tk.rows, "bytes", sent.Load(),
		"pretrained", tk.pre != nil)
	return nil
}

// loadShard pushes the start values of shard s's input rows, adding the payload bytes to
// sent and to tk.loadBytes.
func (c *Coordinator) loadShard(ctx context.Context, set *shardSet, s int, tk *ftTask,
	sent *atomic.Uint64) error {
	dim := c.cfg.Dim
	ids := set.rows[s]
	vals := make([]float32, 0, min(len(ids), gatherPage)*dim)
	opt := payload.Options{Values: payload.ValuesFloat32, Compress: c.cfg.Compression}
	for start := 0; start < len(ids); start += gatherPage {
		page := ids[start:min(start+gatherPage, len(ids))]
		vals = vals[:len(page)*dim]
		for i, id := range page {
			tk.initRow(c.cfg.Seed, id, vals[i*dim:(i+1)*dim])
		}
		body, err := payload.Encode(nil, page, dim, vals, opt)
		if err != nil {
			return fmt.Errorf("encode rows for shard %d: %w", s, err)
		}
		req := &skipgridpb.PushRequest{Sender: senderName, JobId: c.cfg.JobID,
			Rows: []*skipgridpb.Rows{{Table: skipgridpb.Table_TABLE_INPUT, Payload: body}}}
		what := fmt.Sprintf("push initial input rows %d..%d (%d rows) to PS shard %d at %s",
			page[0], page[len(page)-1], len(page), s, set.addrs[s])
		// TODO(skipgrid): a push whose answer is lost is retried and may be applied twice,
		// because pushes carry no sequence number the shard could deduplicate on.
		err = c.retry(ctx, what, func(ctx context.Context) error {
			_, err := set.clients[s].Push(ctx, req)
			return err
		})
		if err != nil {
			return err
		}
		sent.Add(uint64(len(body)))
		tk.loadBytes.Add(uint64(len(body)))
	}
	return nil
}

// gatherTable reads rows of table (rows[s] from shard s) into dst, row id r at dst[r*dim:],
// checking each value is finite. It returns the payload bytes moved.
func (c *Coordinator) gatherTable(ctx context.Context, set *shardSet, table skipgridpb.Table,
	rows [][]uint32, dst []float32) (uint64, error) {
	var moved atomic.Uint64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(gatherParallel)
	for s := range set.clients {
		g.Go(func() error {
			return c.gatherTableShard(gctx, set, s, table, rows[s], dst, &moved)
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	return moved.Load(), nil
}

func (c *Coordinator) gatherTableShard(ctx context.Context, set *shardSet, s int,
	table skipgridpb.Table, ids []uint32, dst []float32, moved *atomic.Uint64) error {
	dim := c.cfg.Dim
	var blk payload.Block
	for start := 0; start < len(ids); start += gatherPage {
		page := ids[start:min(start+gatherPage, len(ids))]
		what := fmt.Sprintf("pull %v rows %d..%d (%d rows) from PS shard %d at %s", table,
			page[0], page[len(page)-1], len(page), s, set.addrs[s])
		b, err := c.pullTablePage(ctx, set.clients[s], table, page, what)
		if err != nil {
			return err
		}
		moved.Add(uint64(len(b)))
		if err := c.decodePage(b, page, &blk); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		for i, id := range page {
			row := blk.Row(i)
			if j := firstNonFinite(row); j >= 0 {
				return fmt.Errorf("%s: row %d value %d is %v; the table holds non-finite "+
					"values, so no model is written; lower the learning rate", what, id, j,
					row[j])
			}
			copy(dst[int(id)*dim:], row)
		}
	}
	return nil
}

// pullTablePage pulls the rows page of table and returns the answer's payload.
func (c *Coordinator) pullTablePage(ctx context.Context, cl skipgridpb.ParameterServerClient,
	table skipgridpb.Table, page []uint32, what string) ([]byte, error) {
	keys, err := payload.Encode(nil, page, 0, nil, payload.Options{Compress: c.cfg.Compression})
	if err != nil {
		return nil, fmt.Errorf("%s: encode keys: %w", what, err)
	}
	req := &skipgridpb.PullRequest{
		Sender: senderName, JobId: c.cfg.JobID,
		Keys:       []*skipgridpb.Keys{{Table: table, Payload: keys}},
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
	if r := resp.GetRows(); len(r) != 1 || r[0].GetTable() != table {
		return nil, fmt.Errorf("%s: the answer holds %d row blocks, want one of %v", what,
			len(r), table)
	}
	return resp.GetRows()[0].GetPayload(), nil
}

// writeModel gathers the input and classifier rows and writes the model and run.json.
// Nothing is written unless every value is finite.
func (c *Coordinator) writeModel(ctx context.Context, set *ftShards, tk *ftTask,
	chunks int) (*Result, error) {
	dim := c.cfg.Dim
	in := make([]float32, tk.rows*dim)
	moved, err := c.gatherTable(ctx, set.shardSet, skipgridpb.Table_TABLE_INPUT, set.rows, in)
	if err != nil {
		return nil, fmt.Errorf("gather input rows: %w", err)
	}
	cls := make([]float32, len(tk.labels)*dim)
	n, err := c.gatherTable(ctx, set.shardSet, skipgridpb.Table_TABLE_CLASSIFIER, set.clsRows,
		cls)
	if err != nil {
		return nil, fmt.Errorf("gather classifier rows: %w", err)
	}
	moved += n

	info := c.finetuneInfo(tk, chunks, tk.loadBytes.Load())
	training, err := json.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("finetune record: %w", err)
	}
	words, buckets := tk.vocab.Len(), c.cfg.Finetune.BigramBuckets
	m := &classify.Model{
		Meta: classify.Meta{
			Dim: dim, Labels: tk.labels, BigramBuckets: buckets,
			Tokenizer:   classify.TokenizerName(c.cfg.Tokenizer),
			MaxSentence: c.cfg.MaxSentenceLen, VocabSize: words, TrainedWords: tk.vocab.Trained,
			Training: training,
		},
		Vectors:    &vectors.Vectors{Words: tk.vocab.Words, Dim: dim, Data: in[:words*dim]},
		Counts:     tk.vocab.Counts,
		Classifier: cls,
		Bigrams:    in[words*dim : (words+buckets)*dim],
		EOS:        in[(words+buckets)*dim:],
	}
	if err := classify.Save(c.cfg.OutDir, m); err != nil {
		return nil, err
	}
	return c.writeFinetuneRun(tk, info, chunks, moved)
}

// finetuneInfo is the fine-tuning part of the job's record.
func (c *Coordinator) finetuneInfo(tk *ftTask, chunks int, loaded uint64) *FinetuneInfo {
	f := c.cfg.Finetune
	info := &FinetuneInfo{
		TrainFile: f.TrainFile, Read: tk.ds.Summary, Examples: len(tk.ds.Examples),
		Labels: tk.labels, Pretrained: f.Pretrained, RandomInit: tk.pre == nil,
		VocabSize: tk.vocab.Len(), TrainedWords: tk.vocab.Trained, MissingWords: tk.missing,
		InitInfo: initInfo, BigramBuckets: f.BigramBuckets, Tokens: tk.tokens,
		FastTextEpochs: f.FastTextEpochs, Passes: tk.passes, Frozen: f.Freeze,
		EmbeddingLRScale: f.EmbeddingLRScale, BatchExamples: f.BatchExamples,
		ChunkExamples: f.chunkExamples(len(tk.ds.Examples)), LoadBytes: loaded,
	}
	if tk.pre != nil {
		info.PretrainedFormat = f.PretrainedFormat.String()
		info.PretrainedWords = tk.pre.Len()
	}
	return info
}

// writeFinetuneRun writes run.json and ends the job.
func (c *Coordinator) writeFinetuneRun(tk *ftTask, info *FinetuneInfo, chunks int,
	moved uint64) (*Result, error) {
	var res *Result
	c.locked(func(co *core, now time.Time) {
		res = c.resultLocked(co, tk.trained, chunks)
		res.Corpus = []string{c.cfg.Finetune.TrainFile}
		res.VocabSize = tk.vocab.Len()
		res.TrainWords = uint64(len(tk.ds.Examples))
		res.Traffic.GatherBytes = moved
		res.Finetune = info
		res.setTimes(c.mu.times, now)
	})
	err := writeFileAtomic(filepath.Join(c.cfg.OutDir, RunFile), func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	})
	if err != nil {
		return nil, fmt.Errorf("write run record: %w", err)
	}

	c.locked(func(co *core, now time.Time) {
		c.mu.times.End = now
		co.finish()
	})
	c.log.Info("job done", "out_dir", c.cfg.OutDir, "examples", len(tk.ds.Examples),
		"seconds", res.PhaseSeconds.Total, "examples_per_sec", res.TrainWordsPerSec)
	return res, nil
}
