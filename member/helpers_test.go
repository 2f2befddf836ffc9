package member

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testTimeout bounds every wait of a test. Failure detection with the local
// profile takes a few seconds; this leaves room for a loaded machine.
const testTimeout = 30 * time.Second

// deadline returns a context that ends after testTimeout or with the test.
func deadline(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// logRecord is one captured slog record with its attributes as text.
type logRecord struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

// recorder collects the records of every handler made from it.
type recorder struct {
	mu     sync.Mutex
	recs   []logRecord   // guarded by mu
	notify chan struct{} // signalled (without blocking) on every record
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{notify: make(chan struct{}, 1)}
	t.Cleanup(func() {
		if t.Failed() {
			for _, rec := range r.all() {
				t.Logf("log: %v %s %v", rec.Level, rec.Msg, rec.Attrs)
			}
		}
	})
	return r
}

// logger returns a logger writing into r at every level, with name as the
// attribute node_log so that several nodes can share one recorder.
func (r *recorder) logger(name string) *slog.Logger {
	return slog.New(recHandler{r: r}).With("node_log", name)
}

func (r *recorder) all() []logRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]logRecord(nil), r.recs...)
}

// waitFor returns the first record that match accepts, waiting for it
// until ctx ends.
func (r *recorder) waitFor(ctx context.Context, match func(logRecord) bool) (logRecord, error) {
	for {
		for _, rec := range r.all() {
			if match(rec) {
				return rec, nil
			}
		}
		select {
		case <-r.notify:
		case <-ctx.Done():
			return logRecord{}, fmt.Errorf("no matching log record: %w", ctx.Err())
		}
	}
}

// recHandler is a slog.Handler that stores records in a recorder.
type recHandler struct {
	r     *recorder
	attrs []slog.Attr
}

func (h recHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h recHandler) Handle(_ context.Context, rec slog.Record) error {
	attrs := make(map[string]string)
	for _, a := range h.attrs {
		attrs[a.Key] = a.Value.String()
	}
	rec.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.String()
		return true
	})

	h.r.mu.Lock()
	h.r.recs = append(h.r.recs, logRecord{Level: rec.Level, Msg: rec.Message, Attrs: attrs})
	h.r.mu.Unlock()
	select {
	case h.r.notify <- struct{}{}:
	default:
	}
	return nil
}

func (h recHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return recHandler{r: h.r, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

// WithGroup ignores groups: this package logs none.
func (h recHandler) WithGroup(string) slog.Handler { return h }

// checkGoroutines fails the test when, after every later cleanup has run
// (the nodes' shutdowns), the goroutine count does not come back to what
// it was within the deadline. Call it first in a test. The check is rough:
// it counts, it does not compare stacks.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		stop := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(stop) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutines: %d before the test, %d after shutdown:\n%s",
					before, runtime.NumGoroutine(), buf)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// eventLog gathers a node's OnJoin and OnLeave calls without blocking.
type eventLog struct {
	joins, leaves chan Meta
	dropped       atomic.Int32 // calls that found their channel full
}

func newEventLog(t *testing.T) *eventLog {
	e := &eventLog{joins: make(chan Meta, 64), leaves: make(chan Meta, 64)}
	t.Cleanup(func() {
		if d := e.dropped.Load(); d > 0 {
			t.Errorf("%d events dropped: channel buffers too small", d)
		}
	})
	return e
}

func (e *eventLog) onJoin(m Meta) {
	select {
	case e.joins <- m:
	default:
		e.dropped.Add(1)
	}
}

func (e *eventLog) onLeave(m Meta) {
	select {
	case e.leaves <- m:
	default:
		e.dropped.Add(1)
	}
}

// next receives one Meta from ch before ctx ends.
func next(ctx context.Context, t *testing.T, ch <-chan Meta, what string) Meta {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-ctx.Done():
		t.Fatalf("waiting for %s: %v", what, ctx.Err())
		return Meta{}
	}
}

// testNode describes one node to start on loopback.
type testNode struct {
	name  string
	meta  Meta
	join  []string
	key   []byte
	rec   *recorder
	event *eventLog
}

// config returns the local-profile Config of tn, bound to a port that the
// system picks.
func (tn testNode) config() Config {
	cfg := DefaultConfig()
	cfg.Name = tn.name
	cfg.BindAddr = "127.0.0.1"
	cfg.BindPort = 0
	cfg.Join = tn.join
	cfg.SecretKey = tn.key
	cfg.Meta = tn.meta
	cfg.Profile = ProfileLocal
	if tn.rec != nil {
		cfg.Logger = tn.rec.logger(tn.name)
	} else {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if tn.event != nil {
		cfg.OnJoin, cfg.OnLeave = tn.event.onJoin, tn.event.onLeave
	}
	return cfg
}

// start starts tn and shuts it down when the test ends.
func (tn testNode) start(t *testing.T) *Node {
	t.Helper()
	n, err := Start(tn.config())
	if err != nil {
		t.Fatalf("start %s: %v", tn.name, err)
	}
	t.Cleanup(func() {
		if err := n.Shutdown(); err != nil {
			t.Errorf("shut down %s: %v", tn.name, err)
		}
	})
	return n
}

// containsFold reports whether s contains sub, ignoring case.
func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
