package ps

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// keepCheckpoints is the number of checkpoint files a shard keeps: the newest, and the one
// before it in case the newest proves unreadable.
const keepCheckpoints = 2

// maxCheckpointRaw bounds the decompressed payload a shard reads back; the job's own
// configuration, checked against Config.Limits, bounds what it allocates.
const maxCheckpointRaw = math.MaxInt64

// checkpointState is a server's checkpoint bookkeeping.
type checkpointState struct {
	// incarnation is drawn at random when the server is built; never 0.
	incarnation uint64
	// restored, restoredID and restoredPath are set by New and never change afterwards.
	restored     bool
	restoredID   uint64
	restoredPath string

	// mu serialises Checkpoint calls and guards lastPath and lastSize.
	mu       sync.Mutex
	lastPath string
	lastSize int64
	// lastID is the last checkpoint written or restored (0: none).
	lastID atomic.Uint64
	// basePushes and baseRows are the push counters when the last checkpoint's copy began:
	// the pushes since then may be missing from it.
	basePushes, baseRows atomic.Uint64
}

// newIncarnation returns a random non-zero number.
func newIncarnation() uint64 {
	var b [8]byte
	for {
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
		if v := binary.LittleEndian.Uint64(b[:]); v != 0 {
			return v
		}
	}
}

// Incarnation returns the random number that identifies this server's life; a restarted
// shard has another one. Stats reports it too.
func (s *Server) Incarnation() uint64 { return s.ck.incarnation }

// Checkpoint writes every table of the shard, and the configuration of its job, to
// Config.CheckpointDir/shard-<n>-<id>.ckpt, and answers once the file and its directory
// entry are synced. Ids must increase; repeating the last id answers the file already
// written. Only the newest two files are kept.
//
// Pushes go on while the rows are copied: each row is copied under its stripe lock, so
// every row in the file is one that existed (no push is half applied to it), but the file
// is not a snapshot across rows: a push that lands during the copy is in the file for the
// rows copied after it and missing for those copied before. Asynchronous SGD tolerates that
// as it tolerates pulls that are not snapshots. Pushes applied once the copy has begun count
// as "since the checkpoint" in Stats, so the loss a crash would cause is never understated.
func (s *Server) Checkpoint(_ context.Context, req *skipgridpb.CheckpointRequest) (
	*skipgridpb.CheckpointResponse, error) {
	j, err := s.jobFor("checkpoint", "coordinator", req.GetJobId())
	if err != nil {
		return nil, err
	}
	if s.cfg.CheckpointDir == "" {
		return nil, status.Errorf(codes.FailedPrecondition, "checkpoint %d: shard %d keeps no "+
			"checkpoints; start it with a checkpoint directory (--checkpoint-dir)",
			req.GetCheckpointId(), s.cfg.Shard)
	}
	id := req.GetCheckpointId()
	if id == 0 {
		return nil, status.Error(codes.InvalidArgument, "checkpoint: id 0 is reserved for "+
			"\"no checkpoint\"; number checkpoints from 1")
	}

	s.ck.mu.Lock()
	defer s.ck.mu.Unlock()
	last := s.ck.lastID.Load()
	if id == last && s.ck.lastPath != "" {
		return &skipgridpb.CheckpointResponse{CheckpointId: id, Bytes: uint64(s.ck.lastSize),
			Path: s.ck.lastPath}, nil
	}
	if id <= last {
		return nil, status.Errorf(codes.FailedPrecondition, "checkpoint %d: shard %d already "+
			"holds checkpoint %d; ids must increase", id, s.cfg.Shard, last)
	}
	return s.writeCheckpoint(j, id, req.GetEpoch())
}

// writeCheckpoint writes checkpoint id of j; s.ck.mu is held.
func (s *Server) writeCheckpoint(j *job, id uint64, epoch uint32) (
	*skipgridpb.CheckpointResponse, error) {
	start := time.Now()
	pushes, rows := s.stats.pushes.Load(), s.stats.rowsPushed.Load()
	meta := &ckptMeta{ID: id, Epoch: epoch, Written: start, Req: j.req}
	var tables []*table
	for _, spec := range j.req.GetTables() {
		t := j.tables[spec.GetTable()]
		tables = append(tables, t)
		meta.Tables = append(meta.Tables, ckptTable{Table: t.id,
			Rows: uint64(len(t.data) / t.dim), Dim: uint32(t.dim)})
	}

	path := filepath.Join(s.cfg.CheckpointDir, checkpointName(s.cfg.Shard, id))
	size, err := writeCheckpointFile(path, meta, func(i int, l uint32, dst []float32) {
		tables[i].read(l, dst)
	})
	if err != nil {
		s.log.Error("checkpoint failed", "checkpoint", id, "err", err)
		return nil, status.Errorf(codes.Internal, "checkpoint %d of shard %d: %v", id,
			s.cfg.Shard, err)
	}

	s.ck.lastID.Store(id)
	s.ck.basePushes.Store(pushes)
	s.ck.baseRows.Store(rows)
	s.ck.lastPath, s.ck.lastSize = path, size
	s.pruneCheckpoints()
	s.log.Info("checkpoint written", "checkpoint", id, "epoch", epoch, "path", path,
		"bytes", size, "took", time.Since(start))
	return &skipgridpb.CheckpointResponse{CheckpointId: id, Bytes: uint64(size), Path: path},
		nil
}

// checkpointName is the file name of checkpoint id of shard n.
func checkpointName(n int, id uint64) string {
	return fmt.Sprintf("shard-%d-%d.ckpt", n, id)
}

// ckptFile is one checkpoint file of this shard.
type ckptFile struct {
	id   uint64
	path string
}

// listCheckpoints returns this shard's checkpoint files, newest (highest id) first.
func (s *Server) listCheckpoints() ([]ckptFile, error) {
	entries, err := os.ReadDir(s.cfg.CheckpointDir)
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	prefix := fmt.Sprintf("shard-%d-", s.cfg.Shard)
	var files []ckptFile
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		num, ok := strings.CutSuffix(rest, ".ckpt")
		id, err := strconv.ParseUint(num, 10, 64)
		if !ok || err != nil || id == 0 {
			continue
		}
		files = append(files, ckptFile{id: id,
			path: filepath.Join(s.cfg.CheckpointDir, e.Name())})
	}
	slices.SortFunc(files, func(a, b ckptFile) int { return -cmpUint(a.id, b.id) })
	return files, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// pruneCheckpoints removes all but the newest keepCheckpoints files; failures are logged.
func (s *Server) pruneCheckpoints() {
	files, err := s.listCheckpoints()
	if err != nil {
		s.log.Warn("could not prune old checkpoints", "err", err)
		return
	}
	for _, f := range files[min(keepCheckpoints, len(files)):] {
		if err := os.Remove(f.path); err != nil {
			s.log.Warn("could not remove an old checkpoint", "path", f.path, "err", err)
		}
	}
}

// restore loads the newest usable checkpoint of Config.CheckpointDir, creating the directory
// when it does not exist. A file that cannot be used is renamed with the suffix ".bad" (so
// that pruning never counts it) and the one before it is tried. Only a directory that cannot
// be created or listed is an error; with no usable file the shard starts unconfigured.
func (s *Server) restore() error {
	dir := s.cfg.CheckpointDir
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("ps: checkpoint directory: %w", err)
	}
	s.removeTempFiles()
	files, err := s.listCheckpoints()
	if err != nil {
		return fmt.Errorf("ps: shard %d: %w", s.cfg.Shard, err)
	}

	for _, f := range files {
		start := time.Now()
		j, meta, err := s.loadCheckpoint(f)
		if err != nil {
			s.log.Warn("checkpoint unusable; trying the one before it", "path", f.path,
				"err", err, "renamed_to", f.path+".bad")
			if rerr := os.Rename(f.path, f.path+".bad"); rerr != nil {
				s.log.Warn("could not rename an unusable checkpoint", "path", f.path,
					"err", rerr)
			}
			continue
		}
		s.job.Store(j)
		s.ck.restored, s.ck.restoredID, s.ck.restoredPath = true, f.id, f.path
		s.ck.lastID.Store(f.id)
		s.log.Info("restored from checkpoint", "path", f.path, "checkpoint", f.id,
			"epoch", meta.Epoch, "written", meta.Written, "job", j.req.GetJobId(),
			"local_rows", j.localRows, "took", time.Since(start))
		return nil
	}
	if len(files) > 0 {
		s.log.Error("no usable checkpoint; the shard starts empty and waits for Configure",
			"dir", dir, "files_tried", len(files))
	}
	return nil
}

// removeTempFiles deletes what an interrupted Checkpoint of this shard left behind.
func (s *Server) removeTempFiles() {
	pattern := filepath.Join(s.cfg.CheckpointDir, fmt.Sprintf(".shard-%d-*.ckpt.tmp-*",
		s.cfg.Shard))
	left, _ := filepath.Glob(pattern)
	for _, p := range left {
		if err := os.Remove(p); err == nil {
			s.log.Info("removed an interrupted checkpoint", "path", p)
		}
	}
}

// loadCheckpoint reads file f into a new job.
func (s *Server) loadCheckpoint(f ckptFile) (*job, *ckptMeta, error) {
	fh, err := os.Open(f.path)
	if err != nil {
		return nil, nil, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, nil, err
	}

	var j *job
	meta, err := readCheckpoint(fh, fi.Size(), maxCheckpointRaw,
		func(m *ckptMeta) ([][]float32, error) {
			if m.ID != f.id {
				return nil, fmt.Errorf("the file is named for checkpoint %d but holds %d",
					f.id, m.ID)
			}
			var err error
			j, err = s.jobFromCheckpoint(m)
			if err != nil {
				return nil, err
			}
			return checkpointTables(j, m)
		})
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint %s: %w", f.path, err)
	}
	return j, meta, nil
}

// jobFromCheckpoint allocates the job a checkpoint's configuration describes, without
// initialising its rows (the file fills them).
func (s *Server) jobFromCheckpoint(m *ckptMeta) (*job, error) {
	if err := s.checkConfigure(m.Req); err != nil {
		return nil, fmt.Errorf("its job does not fit this shard: %w", err)
	}
	zero := proto.Clone(m.Req).(*skipgridpb.ConfigureRequest)
	for _, t := range zero.GetTables() {
		t.Init = skipgridpb.Init_INIT_ZERO
	}
	j, err := s.buildJob(context.Background(), zero)
	if err != nil {
		return nil, fmt.Errorf("its job: %w", err)
	}
	j.req = proto.Clone(m.Req).(*skipgridpb.ConfigureRequest)
	return j, nil
}

// checkpointTables checks that the file's table list matches j and returns j's storage in
// the file's order.
func checkpointTables(j *job, m *ckptMeta) ([][]float32, error) {
	specs := j.req.GetTables()
	if len(m.Tables) != len(specs) {
		return nil, fmt.Errorf("the file holds %d tables, its job has %d", len(m.Tables),
			len(specs))
	}
	out := make([][]float32, len(specs))
	for i, spec := range specs {
		t := j.tables[spec.GetTable()]
		got := m.Tables[i]
		want := ckptTable{Table: t.id, Rows: uint64(len(t.data) / t.dim), Dim: uint32(t.dim)}
		if got != want {
			return nil, fmt.Errorf("table %d is %v with %d rows of dim %d; its job wants %v "+
				"with %d rows of dim %d", i, got.Table, got.Rows, got.Dim, want.Table,
				want.Rows, want.Dim)
		}
		out[i] = t.data
	}
	return out, nil
}

// configuredResponse answers a Configure identical to j's request.
func (s *Server) configuredResponse(j *job) *skipgridpb.ConfigureResponse {
	return &skipgridpb.ConfigureResponse{LocalRows: uint64(j.localRows),
		Restored: s.ck.restored, CheckpointId: s.ck.restoredID}
}

// restoredHint explains, for a refused Configure, where a restored job came from.
func (s *Server) restoredHint() string {
	if !s.ck.restored {
		return ""
	}
	return fmt.Sprintf("; the job was restored from %s: remove that directory's shard-%d-* "+
		"files, or give the shard another checkpoint directory, to start a new job",
		s.ck.restoredPath, s.cfg.Shard)
}

// fillCheckpointStats adds the checkpoint fields to a Stats answer.
func (s *Server) fillCheckpointStats(resp *skipgridpb.StatsResponse) {
	// The bases first: a base stored later is at most the counters read after it.
	bp, br := s.ck.basePushes.Load(), s.ck.baseRows.Load()
	resp.CheckpointId = s.ck.lastID.Load()
	resp.PushesSinceCheckpoint = s.stats.pushes.Load() - bp
	resp.RowsPushedSinceCheckpoint = s.stats.rowsPushed.Load() - br
	resp.Restored = s.ck.restored
	resp.Incarnation = s.ck.incarnation
}
