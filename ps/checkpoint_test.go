package ps

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// ckptServer returns shard shardIdx with its checkpoints in dir (nothing configured unless
// dir holds a checkpoint).
func ckptServer(t testing.TB, shardIdx int, dir string) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Shard, cfg.Name, cfg.CheckpointDir = shardIdx, "ps-test", dir
	cfg.Logger = slog.New(slog.DiscardHandler)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func checkpoint(t testing.TB, s *Server, id uint64) *skipgridpb.CheckpointResponse {
	t.Helper()
	resp, err := s.Checkpoint(context.Background(), &skipgridpb.CheckpointRequest{
		JobId: testJob, CheckpointId: id, Epoch: 1})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// tableRows pulls every row shard s owns (of 2 shards) from both tables.
func tableRows(t testing.TB, s *Server, shardIdx int) [2][]float32 {
	t.Helper()
	ids := owned(t, shardIdx, 2)
	return [2][]float32{pull(t, s, input, ids), pull(t, s, output, ids)}
}

// pushSome pushes seeded random deltas to a few of the shard's rows of both tables.
func pushSome(t testing.TB, s *Server, shardIdx int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	ids := owned(t, shardIdx, 2)[:10]
	deltas := make([]float32, len(ids)*testDim)
	for i := range deltas {
		deltas[i] = float32(rng.NormFloat64())
	}
	if _, err := push(t, s, rows(t, input, ids, testDim, deltas),
		rows(t, output, ids, testDim, deltas)); err != nil {
		t.Fatal(err)
	}
}

func stats(t testing.TB, s *Server) *skipgridpb.StatsResponse {
	t.Helper()
	st, err := s.Stats(context.Background(), &skipgridpb.StatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestCheckpointRoundTrip writes a checkpoint of trained rows and restores it in a new
// server: every value comes back bit for bit, the identical Configure answers restored with
// the id and keeps the rows, and Stats tells the new life from the old.
func TestCheckpointRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := ckptServer(t, 1, dir)
	if _, err := s.Configure(context.Background(), configureReq(1, 2)); err != nil {
		t.Fatal(err)
	}
	pushSome(t, s, 1, 1)
	resp := checkpoint(t, s, 3)
	want := tableRows(t, s, 1)

	// The answer names the file, and its size is the file's.
	fi, err := os.Stat(filepath.Join(dir, "shard-1-3.ckpt"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetPath() != filepath.Join(dir, "shard-1-3.ckpt") ||
		resp.GetBytes() != uint64(fi.Size()) {
		t.Errorf("checkpoint answer %v; file is %d bytes", resp, fi.Size())
	}
	// One push (10 rows of each table = 20 rows) after the checkpoint is what a crash loses.
	pushSome(t, s, 1, 2)
	st := stats(t, s)
	if st.GetCheckpointId() != 3 || st.GetPushesSinceCheckpoint() != 1 ||
		st.GetRowsPushedSinceCheckpoint() != 20 || st.GetRestored() {
		t.Errorf("stats after checkpoint and one push: %v", st)
	}

	r := ckptServer(t, 1, dir)
	if diff := cmp.Diff(want, tableRows(t, r, 1), bitwise); diff != "" {
		t.Errorf("restored rows (-want +got):\n%s", diff)
	}
	cresp, err := r.Configure(context.Background(), configureReq(1, 2))
	if err != nil {
		t.Fatal(err)
	}
	wantResp := &skipgridpb.ConfigureResponse{LocalRows: uint64(len(owned(t, 1, 2))),
		Restored: true, CheckpointId: 3}
	if diff := cmp.Diff(wantResp, cresp, protocmp.Transform()); diff != "" {
		t.Errorf("Configure after restore (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, tableRows(t, r, 1), bitwise); diff != "" {
		t.Errorf("rows after Configure (-want +got):\n%s", diff)
	}
	rst := stats(t, r)
	if !rst.GetRestored() || rst.GetCheckpointId() != 3 || rst.GetPushesSinceCheckpoint() != 0 ||
		rst.GetIncarnation() == 0 || rst.GetIncarnation() == st.GetIncarnation() {
		t.Errorf("stats of the restored shard: %v (the old one had incarnation %d)", rst,
			st.GetIncarnation())
	}
}

// TestCheckpointKeepsTwo writes four checkpoints: the last two files stay; ids must
// increase; repeating the last id answers the same file.
func TestCheckpointKeepsTwo(t *testing.T) {
	dir := t.TempDir()
	s := ckptServer(t, 0, dir)
	if _, err := s.Configure(context.Background(), configureReq(0, 2)); err != nil {
		t.Fatal(err)
	}
	for id := uint64(1); id <= 4; id++ {
		checkpoint(t, s, id)
	}
	names, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []string{filepath.Join(dir, "shard-0-3.ckpt"),
		filepath.Join(dir, "shard-0-4.ckpt")}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	if again := checkpoint(t, s, 4); again.GetPath() != wantNames[1] {
		t.Errorf("repeated checkpoint 4 answered %v", again)
	}
	_, err = s.Checkpoint(context.Background(), &skipgridpb.CheckpointRequest{JobId: testJob,
		CheckpointId: 2})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("checkpoint 2 after 4: %v, want FailedPrecondition", err)
	}
	_, err = s.Checkpoint(context.Background(), &skipgridpb.CheckpointRequest{JobId: "other",
		CheckpointId: 5})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("checkpoint of another job: %v, want FailedPrecondition", err)
	}
}

// TestCheckpointWithoutDir: a shard without a directory refuses, naming the flag.
func TestCheckpointWithoutDir(t *testing.T) {
	s := configured(t, 0, 2)
	_, err := s.Checkpoint(context.Background(), &skipgridpb.CheckpointRequest{JobId: testJob,
		CheckpointId: 1})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(),
		"--checkpoint-dir") {
		t.Errorf("checkpoint without a directory: %v", err)
	}
}

// damage describes one way to spoil the newest checkpoint.
type damage struct {
	name  string
	spoil func(t *testing.T, path string)
}

var damages = []damage{
	{"payload byte flipped", func(t *testing.T, path string) {
		b := readFile(t, path)
		b[len(b)-5] ^= 0x40
		writeFile(t, path, b)
	}},
	{"header byte flipped", func(t *testing.T, path string) {
		b := readFile(t, path)
		b[20] ^= 1
		writeFile(t, path, b)
	}},
	{"truncated", func(t *testing.T, path string) {
		b := readFile(t, path)
		writeFile(t, path, b[:len(b)/2])
	}},
	{"empty", func(t *testing.T, path string) { writeFile(t, path, nil) }},
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointDamagedNewest spoils the newest of two checkpoints: the restored shard holds
// the rows of the one before, and the spoiled file is set aside as *.bad.
func TestCheckpointDamagedNewest(t *testing.T) {
	for _, d := range damages {
		t.Run(d.name, func(t *testing.T) {
			dir := t.TempDir()
			s := ckptServer(t, 0, dir)
			if _, err := s.Configure(context.Background(), configureReq(0, 2)); err != nil {
				t.Fatal(err)
			}
			pushSome(t, s, 0, 1)
			checkpoint(t, s, 1)
			want := tableRows(t, s, 0)
			pushSome(t, s, 0, 2)
			newest := checkpoint(t, s, 2).GetPath()
			d.spoil(t, newest)

			r := ckptServer(t, 0, dir)
			if diff := cmp.Diff(want, tableRows(t, r, 0), bitwise); diff != "" {
				t.Errorf("rows restored (-want checkpoint 1 +got):\n%s", diff)
			}
			if id := stats(t, r).GetCheckpointId(); id != 1 {
				t.Errorf("restored checkpoint %d, want 1", id)
			}
			if _, err := os.Stat(newest + ".bad"); err != nil {
				t.Errorf("the damaged file was not set aside: %v", err)
			}
		})
	}
}

// TestCheckpointNoneUsable: with its only checkpoint truncated, a shard starts unconfigured
// and a Configure initialises it afresh.
func TestCheckpointNoneUsable(t *testing.T) {
	dir := t.TempDir()
	s := ckptServer(t, 0, dir)
	if _, err := s.Configure(context.Background(), configureReq(0, 2)); err != nil {
		t.Fatal(err)
	}
	path := checkpoint(t, s, 1).GetPath()
	damages[2].spoil(t, path)

	r := ckptServer(t, 0, dir)
	if st := stats(t, r); st.GetRestored() || st.GetLocalRows() != 0 {
		t.Errorf("stats of a shard without a usable checkpoint: %v", st)
	}
	resp, err := r.Configure(context.Background(), configureReq(0, 2))
	if err != nil || resp.GetRestored() {
		t.Errorf("Configure: %v, %v; want a fresh configuration", resp, err)
	}
}

// TestCheckpointWrongJob: a restored shard refuses another job, saying where its job came
// from; a checkpoint of shard 0 put in shard 1's name is not loaded by shard 1.
func TestCheckpointWrongJob(t *testing.T) {
	dir := t.TempDir()
	s := ckptServer(t, 0, dir)
	if _, err := s.Configure(context.Background(), configureReq(0, 2)); err != nil {
		t.Fatal(err)
	}
	path := checkpoint(t, s, 1).GetPath()

	r := ckptServer(t, 0, dir)
	other := configureReq(0, 2)
	other.JobId = "job-2"
	_, err := r.Configure(context.Background(), other)
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), path) {
		t.Errorf("Configure of another job on a restored shard: %v", err)
	}

	dir1 := t.TempDir()
	writeFile(t, filepath.Join(dir1, "shard-1-1.ckpt"), readFile(t, path))
	if st := stats(t, ckptServer(t, 1, dir1)); st.GetRestored() {
		t.Errorf("shard 1 restored shard 0's checkpoint: %v", st)
	}
}

// TestCheckpointConcurrentPushes takes checkpoints while pushes go on (run it with -race).
// Every push adds 1 to every value of a block of output rows, which start at zero, so a row
// in any checkpoint must hold one integer k in all its values (no push half applied) with
// 0 <= k <= the pushes to it.
func TestCheckpointConcurrentPushes(t *testing.T) {
	dir := t.TempDir()
	s := ckptServer(t, 0, dir)
	if _, err := s.Configure(context.Background(), configureReq(0, 2)); err != nil {
		t.Fatal(err)
	}
	ids := owned(t, 0, 2)
	const goroutines, pushesEach = 4, 50
	ones := make([]float32, len(ids)*testDim)
	for i := range ones {
		ones[i] = 1
	}
	block := rows(t, output, ids, testDim, ones)

	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range pushesEach {
				if _, err := push(t, s, block); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for id := uint64(1); id <= 5; id++ {
		checkpoint(t, s, id)
		checkRowsWhole(t, dir, id, goroutines*pushesEach)
	}
	wg.Wait()
	checkpoint(t, s, 6)
	if k := checkRowsWhole(t, dir, 6, goroutines*pushesEach); k != goroutines*pushesEach {
		t.Errorf("the checkpoint after every push holds %d pushes, want %d", k,
			goroutines*pushesEach)
	}
}

// checkRowsWhole reads checkpoint id of shard 0 and checks every output row holds one
// integer k in [0, most] in all its values; it returns the largest k.
func checkRowsWhole(t *testing.T, dir string, id uint64, most int) int {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, checkpointName(0, id)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	var out [][]float32
	meta, err := readCheckpoint(f, fi.Size(), 1<<30, allocTables(&out))
	if err != nil {
		t.Fatal(err)
	}
	top := 0
	for i, tb := range meta.Tables {
		if tb.Table != output {
			continue
		}
		for r := range int(tb.Rows) {
			row := out[i][r*testDim : (r+1)*testDim]
			k := row[0]
			for _, v := range row {
				if v != k || k != float32(int(k)) || k < 0 || int(k) > most {
					t.Fatalf("checkpoint %d: output row %d holds %v: a torn push", id, r, row)
				}
			}
			top = max(top, int(k))
		}
	}
	return top
}

// allocTables is a readCheckpoint dst that allocates every table and keeps them in *out.
func allocTables(out *[][]float32) func(*ckptMeta) ([][]float32, error) {
	return func(m *ckptMeta) ([][]float32, error) {
		*out = nil
		for _, tb := range m.Tables {
			*out = append(*out, make([]float32, tb.values()))
		}
		return *out, nil
	}
}

// smallCheckpoint encodes a checkpoint of two tables of rows x dim with values v(i, k).
func smallCheckpoint(t testing.TB, rows, dim int) ([]byte, *ckptMeta, [][]float32) {
	t.Helper()
	meta := &ckptMeta{ID: 9, Epoch: 2, Written: time.Unix(1700000000, 5),
		Req: configureReq(0, 1)}
	vals := make([][]float32, 2)
	for i, tb := range []skipgridpb.Table{input, output} {
		meta.Tables = append(meta.Tables, ckptTable{Table: tb, Rows: uint64(rows),
			Dim: uint32(dim)})
		for k := range rows * dim {
			vals[i] = append(vals[i], float32(k)*0.5-float32(i))
		}
	}
	path := filepath.Join(t.TempDir(), "c.ckpt")
	_, err := writeCheckpointFile(path, meta, func(i int, l uint32, dst []float32) {
		copy(dst, vals[i][int(l)*dim:])
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b, meta, vals
}

// TestReadCheckpointFile decodes a file written by writeCheckpointFile: the header fields,
// the configuration and every value (k*0.5 - table index) come back.
func TestReadCheckpointFile(t *testing.T) {
	b, meta, vals := smallCheckpoint(t, 5, 3)
	var out [][]float32
	got, err := readCheckpoint(bytes.NewReader(b), int64(len(b)), 1<<20, allocTables(&out))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(meta, got, protocmp.Transform()); diff != "" {
		t.Errorf("meta (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(vals, out, bitwise); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}

	// A raw length above the reader's limit is refused before decompression: 2 tables of 15
	// values take 120 bytes, plus the fixed fields.
	if _, err := readCheckpoint(bytes.NewReader(b), int64(len(b)), 100,
		allocTables(&out)); !errors.Is(err, ErrBadCheckpoint) {
		t.Errorf("limit 100: %v, want ErrBadCheckpoint", err)
	}
}

// fixChecksums rewrites both CRCs of a checkpoint so that a fuzzed payload gets past them.
func fixChecksums(b []byte) []byte {
	if len(b) < ckptHeaderSize {
		return b
	}
	c := bytes.Clone(b)
	binary.LittleEndian.PutUint64(c[16:], uint64(len(c)-ckptHeaderSize))
	binary.LittleEndian.PutUint32(c[32:], crc32.Checksum(c[ckptHeaderSize:], crcTable))
	binary.LittleEndian.PutUint32(c[36:], crc32.Checksum(c[:36], crcTable))
	return c
}

// FuzzReadCheckpoint feeds arbitrary bytes to the decoder, as they are and with their
// checksums made to match: it must never panic nor allocate past its limit, every failure
// must wrap ErrBadCheckpoint, and what it accepts must hold exactly the values it claims.
func FuzzReadCheckpoint(f *testing.F) {
	good, _, _ := smallCheckpoint(f, 4, 2)
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add(good[:ckptHeaderSize])
	f.Add([]byte(ckptMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, b := range [][]byte{data, fixChecksums(data)} {
			var out [][]float32
			meta, err := readCheckpoint(bytes.NewReader(b), int64(len(b)), 1<<16,
				allocTables(&out))
			if err != nil {
				if !errors.Is(err, ErrBadCheckpoint) {
					t.Fatalf("error without ErrBadCheckpoint: %v", err)
				}
				continue
			}
			for i, tb := range meta.Tables {
				if uint64(len(out[i])) != tb.values() {
					t.Fatalf("table %d: %d values, claims %d", i, len(out[i]), tb.values())
				}
			}
		}
	})
}
