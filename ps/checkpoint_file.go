package ps

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/proto"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// ErrBadCheckpoint is wrapped by every error about the content of a checkpoint file: a wrong
// magic or version, a checksum that does not match, a truncated file, sizes that disagree.
var ErrBadCheckpoint = errors.New("bad checkpoint")

// Checkpoint file layout, version 1. All integers are little-endian.
//
//	offset  size  field
//	0       8     magic "SKGCKPT\n"
//	8       4     format version (1)
//	12      4     flags (0; readers refuse any other value)
//	16      8     payload length in the file (compressed)
//	24      8     payload length decompressed
//	32      4     CRC-32C (Castagnoli) of the compressed payload
//	36      4     CRC-32C of bytes 0..35
//	40      -     payload: zstd frames, exactly the payload length
//
// The payload, decompressed:
//
//	8  checkpoint id
//	4  epoch the coordinator gave
//	8  time written, Unix nanoseconds
//	4  n, then n bytes: the job's ConfigureRequest (protobuf, deterministic encoding)
//	4  t, the number of tables; then t times: 4 table id, 8 local rows, 4 dim
//	   then, table after table in that order, rows*dim float32 values: the shard's rows in
//	   ascending global id order, row-major, as the table holds them
const (
	ckptMagic      = "SKGCKPT\n"
	ckptVersion    = 1
	ckptHeaderSize = 40
	// ckptMaxTables bounds the table list a reader accepts.
	ckptMaxTables = 64
	// ckptMaxRequest bounds the encoded ConfigureRequest a reader accepts.
	ckptMaxRequest = 1 << 20
	// ckptRowBatch is the number of values copied and encoded at a time.
	ckptRowBatch = 1 << 14
	// ckptMaxWindow bounds the zstd window a reader accepts (writers use 1 MiB).
	ckptMaxWindow = 8 << 20
)

// crcTable is CRC-32C, which CPUs compute in hardware.
var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ckptMeta is what a checkpoint file says about itself.
type ckptMeta struct {
	ID      uint64
	Epoch   uint32
	Written time.Time
	Req     *skipgridpb.ConfigureRequest
	Tables  []ckptTable
}

// ckptTable describes one table of a checkpoint: its local rows of dim values.
type ckptTable struct {
	Table skipgridpb.Table
	Rows  uint64
	Dim   uint32
}

// values is the number of float32 values of the table.
func (t ckptTable) values() uint64 { return t.Rows * uint64(t.Dim) }

// writeCheckpointFile writes meta and the tables' rows to path through a temporary file in the
// same directory that is synced, then renamed; the directory is synced after the rename.
// readRow copies local row l of table i (meta.Tables[i]) into dst. It returns the file's
// size.
func writeCheckpointFile(path string, meta *ckptMeta,
	readRow func(i int, l uint32, dst []float32)) (size int64, err error) {
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return 0, fmt.Errorf("create checkpoint in %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()

	// The header goes last, once the payload's sizes and checksum are known.
	if _, err := f.Write(make([]byte, ckptHeaderSize)); err != nil {
		return 0, fmt.Errorf("write %s: %w", f.Name(), err)
	}
	cw := &countingWriter{w: bufio.NewWriterSize(f, 1<<16), crc: crc32.New(crcTable)}
	raw, err := encodePayload(cw, meta, readRow)
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if err := cw.w.(*bufio.Writer).Flush(); err != nil {
		return 0, fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if _, err := f.WriteAt(ckptHeader(cw.n, raw, cw.crc.Sum32()), 0); err != nil {
		return 0, fmt.Errorf("write header of %s: %w", f.Name(), err)
	}

	if err := f.Chmod(0o644); err != nil {
		return 0, fmt.Errorf("chmod %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("sync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("close %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return 0, fmt.Errorf("rename checkpoint into %s: %w", path, err)
	}
	syncDir(dir)
	return ckptHeaderSize + int64(cw.n), nil
}

// ckptHeader encodes the 40-byte header.
func ckptHeader(compressed, raw uint64, crc uint32) []byte {
	h := make([]byte, ckptHeaderSize)
	copy(h, ckptMagic)
	binary.LittleEndian.PutUint32(h[8:], ckptVersion)
	binary.LittleEndian.PutUint64(h[16:], compressed)
	binary.LittleEndian.PutUint64(h[24:], raw)
	binary.LittleEndian.PutUint32(h[32:], crc)
	binary.LittleEndian.PutUint32(h[36:], crc32.Checksum(h[:36], crcTable))
	return h
}

// encodePayload compresses the payload into w and returns its decompressed length.
func encodePayload(w io.Writer, meta *ckptMeta,
	readRow func(i int, l uint32, dst []float32)) (uint64, error) {
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(1<<20))
	if err != nil {
		return 0, err
	}
	cw := &countingWriter{w: zw}

	req, err := proto.MarshalOptions{Deterministic: true}.Marshal(meta.Req)
	if err != nil {
		return 0, fmt.Errorf("encode the job's configuration: %w", err)
	}
	var b []byte
	b = binary.LittleEndian.AppendUint64(b, meta.ID)
	b = binary.LittleEndian.AppendUint32(b, meta.Epoch)
	b = binary.LittleEndian.AppendUint64(b, uint64(meta.Written.UnixNano()))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(req)))
	b = append(b, req...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(meta.Tables)))
	for _, t := range meta.Tables {
		b = binary.LittleEndian.AppendUint32(b, uint32(t.Table))
		b = binary.LittleEndian.AppendUint64(b, t.Rows)
		b = binary.LittleEndian.AppendUint32(b, t.Dim)
	}
	if _, err := cw.Write(b); err != nil {
		return 0, err
	}

	for i, t := range meta.Tables {
		read := func(l uint32, dst []float32) { readRow(i, l, dst) }
		if err := encodeRows(cw, t, read); err != nil {
			return 0, err
		}
	}
	if err := zw.Close(); err != nil {
		return 0, err
	}
	return cw.n, nil
}

// encodeRows writes the values of t's rows, a batch of rows at a time.
func encodeRows(w io.Writer, t ckptTable, readRow func(l uint32, dst []float32)) error {
	dim := int(t.Dim)
	per := max(ckptRowBatch/max(dim, 1), 1)
	vals := make([]float32, per*dim)
	buf := make([]byte, 4*len(vals))
	for start := uint64(0); start < t.Rows; start += uint64(per) {
		n := int(min(uint64(per), t.Rows-start))
		for r := range n {
			readRow(uint32(start)+uint32(r), vals[r*dim:(r+1)*dim])
		}
		for k, v := range vals[:n*dim] {
			binary.LittleEndian.PutUint32(buf[4*k:], math.Float32bits(v))
		}
		if _, err := w.Write(buf[:4*n*dim]); err != nil {
			return err
		}
	}
	return nil
}

// countingWriter counts the bytes written through it and, when crc is set, checksums them.
type countingWriter struct {
	w   io.Writer
	crc hash.Hash32
	n   uint64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += uint64(n)
	if c.crc != nil {
		c.crc.Write(p[:n])
	}
	return n, err
}

// readCheckpoint decodes the checkpoint in r, which holds size bytes. It checks the header and
// the payload's checksum before decompressing anything. maxRaw bounds the decompressed
// payload. dst is called once the table list is known and returns the slices to fill, one per
// table of meta.Tables, each of rows*dim values; an error from it ends the read. Every error
// wraps ErrBadCheckpoint except dst's and the reader's own, and names the byte offset at fault
// (in the file for the header, in the decompressed payload after it).
func readCheckpoint(r io.ReaderAt, size, maxRaw int64,
	dst func(*ckptMeta) ([][]float32, error)) (*ckptMeta, error) {
	compressed, raw, err := checkCkptHeader(r, size, maxRaw)
	if err != nil {
		return nil, err
	}

	// A damaged or cut payload fails here, before any decompression.
	crc := crc32.New(crcTable)
	payload := io.NewSectionReader(r, ckptHeaderSize, int64(compressed))
	if _, err := io.Copy(crc, payload); err != nil {
		return nil, fmt.Errorf("read payload: %w", err)
	}
	var h [4]byte
	if _, err := r.ReadAt(h[:], 32); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if want, got := binary.LittleEndian.Uint32(h[:]), crc.Sum32(); want != got {
		return nil, fmt.Errorf("%w: byte %d: the payload's CRC-32C is %08x, the header "+
			"says %08x: the file is damaged", ErrBadCheckpoint, ckptHeaderSize, got, want)
	}

	zr, err := zstd.NewReader(io.NewSectionReader(r, ckptHeaderSize, int64(compressed)),
		zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(ckptMaxWindow))
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrBadCheckpoint, err)
	}
	defer zr.Close()
	pr := &payloadReader{r: bufio.NewReaderSize(zr, 1<<16), limit: raw}
	meta, err := decodePayload(pr, dst)
	if err != nil {
		return nil, err
	}
	if pr.n != raw {
		return nil, fmt.Errorf("%w: payload byte %d: the payload ends here, the header says "+
			"%d bytes", ErrBadCheckpoint, pr.n, raw)
	}
	// Reading past the end also checks the zstd frame's own checksum.
	if _, err := pr.r.ReadByte(); err == nil {
		return nil, fmt.Errorf("%w: payload byte %d: data after the last table",
			ErrBadCheckpoint, pr.n)
	} else if !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: payload byte %d: %v", ErrBadCheckpoint, pr.n, err)
	}
	return meta, nil
}

// checkCkptHeader reads and checks the header, returning the payload's compressed and raw
// lengths.
func checkCkptHeader(r io.ReaderAt, size, maxRaw int64) (compressed, raw uint64, err error) {
	if size < ckptHeaderSize {
		return 0, 0, fmt.Errorf("%w: the file holds %d bytes, less than the %d-byte header: "+
			"it is truncated", ErrBadCheckpoint, size, ckptHeaderSize)
	}
	h := make([]byte, ckptHeaderSize)
	if _, err := r.ReadAt(h, 0); err != nil {
		return 0, 0, fmt.Errorf("read header: %w", err)
	}
	if string(h[:8]) != ckptMagic {
		return 0, 0, fmt.Errorf("%w: byte 0: magic %q, want %q: not a skipgrid checkpoint",
			ErrBadCheckpoint, h[:8], ckptMagic)
	}
	if want, got := binary.LittleEndian.Uint32(h[36:]), crc32.Checksum(h[:36],
		crcTable); want != got {
		return 0, 0, fmt.Errorf("%w: byte 36: the header's CRC-32C is %08x, the file says "+
			"%08x: the header is damaged", ErrBadCheckpoint, got, want)
	}
	if v := binary.LittleEndian.Uint32(h[8:]); v != ckptVersion {
		return 0, 0, fmt.Errorf("%w: byte 8: format version %d; this build reads version %d",
			ErrBadCheckpoint, v, ckptVersion)
	}
	if fl := binary.LittleEndian.Uint32(h[12:]); fl != 0 {
		return 0, 0, fmt.Errorf("%w: byte 12: flags %#x; this build knows none",
			ErrBadCheckpoint, fl)
	}
	compressed = binary.LittleEndian.Uint64(h[16:])
	raw = binary.LittleEndian.Uint64(h[24:])
	if have := uint64(size - ckptHeaderSize); compressed != have {
		return 0, 0, fmt.Errorf("%w: byte 16: the header says %d payload bytes, the file "+
			"holds %d: it is truncated or has trailing data", ErrBadCheckpoint, compressed, have)
	}
	if raw > uint64(maxRaw) {
		return 0, 0, fmt.Errorf("%w: byte 24: the payload decompresses to %d bytes, above "+
			"the limit of %d", ErrBadCheckpoint, raw, maxRaw)
	}
	return compressed, raw, nil
}

// decodePayload reads the decompressed payload up to and including the rows.
func decodePayload(pr *payloadReader, dst func(*ckptMeta) ([][]float32, error)) (
	*ckptMeta, error) {
	meta := &ckptMeta{ID: pr.u64(), Epoch: pr.u32()}
	meta.Written = time.Unix(0, int64(pr.u64()))
	at, n := pr.n, pr.u32()
	if pr.err == nil && n > ckptMaxRequest {
		return nil, fmt.Errorf("%w: payload byte %d: the configuration takes %d bytes, more "+
			"than %d", ErrBadCheckpoint, at, n, ckptMaxRequest)
	}
	reqBytes := pr.bytes(int(n))
	at, nt := pr.n, pr.u32()
	if pr.err == nil && nt > ckptMaxTables {
		return nil, fmt.Errorf("%w: payload byte %d: %d tables, more than %d",
			ErrBadCheckpoint, at, nt, ckptMaxTables)
	}
	for range int(min(nt, ckptMaxTables)) {
		meta.Tables = append(meta.Tables, ckptTable{Table: skipgridpb.Table(pr.u32()),
			Rows: pr.u64(), Dim: pr.u32()})
	}
	if pr.err != nil {
		return nil, pr.err
	}
	meta.Req = &skipgridpb.ConfigureRequest{}
	if err := proto.Unmarshal(reqBytes, meta.Req); err != nil {
		return nil, fmt.Errorf("%w: payload byte 24: the job's configuration does not "+
			"decode: %v", ErrBadCheckpoint, err)
	}

	// The rows must fill the rest of the payload exactly; checking that first bounds what
	// dst may be asked to allocate by the header's raw length.
	var values uint64
	for i, t := range meta.Tables {
		if t.Dim == 0 || t.Rows > math.MaxUint32 || t.Dim > math.MaxUint32/4 ||
			t.values() > (pr.limit-pr.n)/4 {
			return nil, fmt.Errorf("%w: payload byte %d: table %d (%v) claims %d rows of "+
				"dim %d, which the payload cannot hold", ErrBadCheckpoint, pr.n, i, t.Table,
				t.Rows, t.Dim)
		}
		values += t.values()
	}
	if rest := (pr.limit - pr.n) / 4; values != rest || (pr.limit-pr.n)%4 != 0 {
		return nil, fmt.Errorf("%w: payload byte %d: the tables hold %d values, the payload "+
			"has room for %d bytes after the table list", ErrBadCheckpoint, pr.n, values,
			pr.limit-pr.n)
	}
	return meta, decodeRows(pr, meta, dst)
}

// decodeRows fills the slices dst returns with every table's values.
func decodeRows(pr *payloadReader, meta *ckptMeta,
	dst func(*ckptMeta) ([][]float32, error)) error {
	out, err := dst(meta)
	if err != nil {
		return err
	}
	if len(out) != len(meta.Tables) {
		return fmt.Errorf("checkpoint reader: %d slices for %d tables", len(out),
			len(meta.Tables))
	}
	buf := make([]byte, 4*ckptRowBatch)
	for i, t := range meta.Tables {
		vals := out[i]
		if uint64(len(vals)) != t.values() {
			return fmt.Errorf("checkpoint reader: table %d: %d values to fill, the file "+
				"holds %d", i, len(vals), t.values())
		}
		for len(vals) > 0 {
			k := min(len(vals), ckptRowBatch)
			b := pr.bytes(4*k, buf)
			if pr.err != nil {
				return pr.err
			}
			for j := range k {
				vals[j] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*j:]))
			}
			vals = vals[k:]
		}
	}
	return nil
}

// payloadReader reads the decompressed payload, counting its bytes against the header's
// length. The first error sticks; later reads return zeros.
type payloadReader struct {
	r       *bufio.Reader
	n       uint64
	limit   uint64
	scratch [8]byte
	err     error
}

// bytes reads n bytes into buf (allocating when buf is too small or absent).
func (p *payloadReader) bytes(n int, buf ...[]byte) []byte {
	if p.err != nil {
		return nil
	}
	if uint64(n) > p.limit-p.n {
		p.err = fmt.Errorf("%w: payload byte %d: %d more bytes wanted, the header says the "+
			"payload ends at %d", ErrBadCheckpoint, p.n, n, p.limit)
		return nil
	}
	var b []byte
	if len(buf) > 0 && len(buf[0]) >= n {
		b = buf[0][:n]
	} else {
		b = make([]byte, n)
	}
	if _, err := io.ReadFull(p.r, b); err != nil {
		p.err = fmt.Errorf("%w: payload byte %d: %v", ErrBadCheckpoint, p.n, err)
		return nil
	}
	p.n += uint64(n)
	return b
}

func (p *payloadReader) u32() uint32 {
	b := p.bytes(4, p.scratch[:])
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

func (p *payloadReader) u64() uint64 {
	b := p.bytes(8, p.scratch[:])
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

// syncDir makes a rename in dir durable where the platform allows; failures are ignored
// because some file systems refuse to sync directories.
func syncDir(dir string) {
	if dir == "" {
		dir = "."
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
