package shard

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/gzip"
)

// writeFile writes data to name in dir and returns the path.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// gzipMembers compresses each part as a separate gzip member, concatenated.
func gzipMembers(t *testing.T, parts ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, p := range parts {
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestPlanChunks(t *testing.T) {
	dir := t.TempDir()
	ten := writeFile(t, dir, "ten.txt", []byte("abcd\nefgh\n"))
	empty := writeFile(t, dir, "empty.txt", nil)
	// Two gzip members holding 6 + 7 = 13 bytes, under a name that hides it.
	gz := writeFile(t, dir, "looks-plain.txt", gzipMembers(t, "hello\n", "world!\n"))
	// A plain file named like gzip: its 3 bytes are measured by stat.
	fake := writeFile(t, dir, "fake.gz", []byte("a\nb"))

	got, err := PlanChunks([]string{ten, empty, gz, fake}, 4)
	if err != nil {
		t.Fatal(err)
	}
	// ten.txt: 10 bytes / 4 -> ceil = 3 chunks, boundaries floor(10k/3) =
	// 0, 3, 6, 10. empty.txt: none. The gzip file: 13 bytes -> 4 chunks,
	// floor(13k/4) = 0, 3, 6, 9, 13. fake.gz: 3 bytes -> one chunk.
	want := []Chunk{
		{ID: 0, Path: ten, Start: 0, End: 3},
		{ID: 1, Path: ten, Start: 3, End: 6},
		{ID: 2, Path: ten, Start: 6, End: 10},
		{ID: 3, Path: gz, Gzip: true, Start: 0, End: 3},
		{ID: 4, Path: gz, Gzip: true, Start: 3, End: 6},
		{ID: 5, Path: gz, Gzip: true, Start: 6, End: 9},
		{ID: 6, Path: gz, Gzip: true, Start: 9, End: 13},
		{ID: 7, Path: fake, Start: 0, End: 3},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PlanChunks (-want +got):\n%s", diff)
	}
}

func TestPlanChunksCoversEveryByte(t *testing.T) {
	// For every size and chunk size the chunks tile [0, size) without gaps,
	// each no larger than the chunk size, and their count is ceil(size/c).
	dir := t.TempDir()
	for size := range 40 {
		p := writeFile(t, dir, "f", bytes.Repeat([]byte("x"), size))
		for c := int64(1); c <= 45; c++ {
			chunks, err := PlanChunks([]string{p}, c)
			if err != nil {
				t.Fatal(err)
			}
			if want := (int64(size) + c - 1) / c; int64(len(chunks)) != want {
				t.Fatalf("size %d, chunk %d: %d chunks, want %d", size, c, len(chunks), want)
			}
			var at int64
			for i, ch := range chunks {
				if ch.ID != i || ch.Start != at || ch.End <= ch.Start || ch.End-ch.Start > c {
					t.Fatalf("size %d, chunk %d: bad chunk %d %+v (expected start %d)",
						size, c, i, ch, at)
				}
				at = ch.End
			}
			if at != int64(size) {
				t.Fatalf("size %d, chunk %d: chunks end at %d", size, c, at)
			}
		}
	}
}

func TestPlanChunksErrors(t *testing.T) {
	dir := t.TempDir()
	ok := writeFile(t, dir, "ok.txt", []byte("a\n"))
	missing := filepath.Join(dir, "missing.txt")
	// Gzip magic followed by garbage: the header check fails.
	badHeader := writeFile(t, dir, "bad-header", []byte{0x1f, 0x8b, 0, 0, 0})
	// A valid member cut short: decompression fails midway.
	full := gzipMembers(t, strings.Repeat("some text\n", 100))
	truncated := writeFile(t, dir, "truncated", full[:len(full)-12])

	tests := []struct {
		name   string
		paths  []string
		chunk  int64
		target error
		inMsg  string
	}{
		{"missing file", []string{ok, missing}, 10, fs.ErrNotExist, missing},
		{"directory", []string{dir}, 10, nil, dir},
		{"bad gzip header", []string{badHeader}, 10, nil, badHeader},
		{"truncated gzip", []string{truncated}, 10, nil, truncated},
		{"zero chunk size", []string{ok}, 0, ErrInvalidArgument, "chunk size 0"},
		{"negative chunk size", []string{ok}, -5, ErrInvalidArgument, "chunk size -5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chunks, err := PlanChunks(tt.paths, tt.chunk)
			if err == nil {
				t.Fatalf("PlanChunks = %v, want an error", chunks)
			}
			if tt.target != nil && !errors.Is(err, tt.target) {
				t.Errorf("error %q does not wrap %v", err, tt.target)
			}
			if !strings.Contains(err.Error(), tt.inMsg) {
				t.Errorf("error %q does not mention %q", err, tt.inMsg)
			}
		})
	}
}

func TestPlanChunksNoFiles(t *testing.T) {
	chunks, err := PlanChunks(nil, 10)
	if err != nil || len(chunks) != 0 {
		t.Errorf("PlanChunks(nil) = %v, %v; want no chunks and no error", chunks, err)
	}
}
