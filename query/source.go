package query

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/skipgrid/skipgrid/vectors"
)

// Source builds indexes from where vectors live: a vectors file, or the
// parameter-server shards of a running job.
type Source interface {
	// Load builds a new index of the vectors as they are now. It may block
	// on I/O until ctx is done; it must be safe to call from one goroutine
	// while indexes it returned earlier are in use.
	Load(ctx context.Context) (*Index, error)
	// String describes the source for logs.
	String() string
}

// FileSource loads a vectors file.
type FileSource struct {
	Path string
	// Read says how to read the file; the zero value detects the format.
	Read vectors.ReadOptions
	// Index configures the index; the zero value means DefaultConfig().
	Index Config
}

// Load reads the file and builds its index. The file is read whole each
// time; ctx is checked before reading only.
func (f *FileSource) Load(ctx context.Context) (*Index, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg := f.Index
	if cfg == (Config{}) {
		cfg = DefaultConfig()
	}
	return LoadFile(f.Path, f.Read, cfg)
}

// String returns "file PATH".
func (f *FileSource) String() string { return "file " + f.Path }

// Live holds the current index of a Source and swaps in a fresh one on each
// refresh, so that queries see the vectors change while a job trains.
// Readers take the current index with Index and keep using it for one
// answer; a refresh never changes an index in use. Live is safe for
// concurrent use.
type Live struct {
	src Source
	log *slog.Logger
	cur atomic.Pointer[Index]
	// loads counts the successful loads; loadedAt is the Unix time in
	// nanoseconds of the last.
	loads, loadedAt atomic.Int64
}

// NewLive returns a Live for src with no index yet: queries fail with
// ErrNotReady until the first Refresh succeeds. A nil logger means
// slog.Default().
func NewLive(src Source, log *slog.Logger) *Live {
	if log == nil {
		log = slog.Default()
	}
	return &Live{src: src, log: log}
}

// Fixed returns a Live that always answers from x and cannot refresh.
func Fixed(x *Index) *Live {
	l := &Live{log: slog.Default()}
	l.set(x)
	return l
}

// set publishes x as the current index.
func (l *Live) set(x *Index) {
	l.cur.Store(x)
	l.loads.Add(1)
	l.loadedAt.Store(time.Now().UnixNano())
}

// Index returns the current index, or an error wrapping ErrNotReady before
// the first successful load.
func (l *Live) Index() (*Index, error) {
	if x := l.cur.Load(); x != nil {
		return x, nil
	}
	what := "no source"
	if l.src != nil {
		what = l.src.String()
	}
	return nil, fmt.Errorf("%w from %s; retry shortly", ErrNotReady, what)
}

// Loads returns how many indexes were loaded and when the last one was
// (the zero time before any).
func (l *Live) Loads() (int64, time.Time) {
	n := l.loads.Load()
	if n == 0 {
		return 0, time.Time{}
	}
	return n, time.Unix(0, l.loadedAt.Load())
}

// Refresh loads a fresh index from the source and makes it current. On
// error the current index stays.
func (l *Live) Refresh(ctx context.Context) error {
	if l.src == nil {
		return errors.New("refresh: this index has no source to load from")
	}
	start := time.Now()
	x, err := l.src.Load(ctx)
	if err != nil {
		return fmt.Errorf("load from %s: %w", l.src, err)
	}
	l.set(x)
	l.log.Info("vectors loaded", "source", l.src.String(), "words", x.Len(), "dim", x.Dim(),
		"took", time.Since(start))
	return nil
}

// Run refreshes at once when no index is loaded yet, then every period
// until ctx is done, and returns nil then. A failed load is logged (as a
// warning) and the current index kept; the next period tries again. A zero
// period loads at most once.
func (l *Live) Run(ctx context.Context, period time.Duration) error {
	if l.cur.Load() == nil {
		if err := l.Refresh(ctx); err != nil && ctx.Err() == nil {
			l.log.Warn("loading vectors failed; will retry", "err", err, "retry_in", period)
		}
	}
	if period <= 0 {
		return nil
	}

	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := l.Refresh(ctx); err != nil && ctx.Err() == nil {
			l.log.Warn("refreshing vectors failed; keeping the previous ones", "err", err,
				"retry_in", period)
		}
	}
}
