package ps

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// Dialer returns a client for another shard's address: the backups a primary forwards
// pushes to.
type Dialer func(ctx context.Context, addr string) (skipgridpb.ParameterServerClient, error)

// dedupWindow is how many of one sender's most recent push sequence numbers a shard
// remembers. A worker retries a push within seconds, while it sends at most a few pushes a
// second to one shard, so a retry always finds its first attempt in the window.
const dedupWindow = 1 << 13

// forwardRetry bounds how long a primary retries forwarding one push to a backup before it
// answers its sender Unavailable; the sender retries and the push is forwarded again.
const forwardRetry = 2 * time.Second

// replication is a shard's replication state: the backups it forwards pushes to and the
// pushes it has applied, by sender and sequence number.
type replication struct {
	backups atomic.Pointer[backupSet]
	// setMu serialises SetBackups.
	setMu sync.Mutex

	mu      sync.Mutex
	senders map[string]*seqWindow

	duplicates, forwarded, forwardFailures atomic.Uint64
}

// backupSet is the backups of a primary, as SetBackups last named them.
type backupSet struct {
	addrs   []string
	clients []skipgridpb.ParameterServerClient
}

// seqWindow remembers the last dedupWindow sequence numbers of one sender.
type seqWindow struct {
	seen map[uint64]struct{}
	ring []uint64
	next int
}

// claim records seq of sender and reports whether it is new; 0 is never recorded.
func (r *replication) claim(sender string, seq uint64) bool {
	if seq == 0 {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()

	if r.senders == nil {
		r.senders = make(map[string]*seqWindow)
	}
	// TODO(skipgrid): the windows of senders that left are kept until the process ends,
	// because a shard cannot tell a departed worker from a slow one; each is 64 KiB.
	w := r.senders[sender]
	if w == nil {
		w = &seqWindow{seen: make(map[uint64]struct{}, dedupWindow),
			ring: make([]uint64, 0, dedupWindow)}
		r.senders[sender] = w
	}
	if _, dup := w.seen[seq]; dup {
		return false
	}
	if len(w.ring) < dedupWindow {
		w.ring = append(w.ring, seq)
	} else {
		delete(w.seen, w.ring[w.next])
		w.ring[w.next] = seq
		w.next = (w.next + 1) % dedupWindow
	}
	w.seen[seq] = struct{}{}
	return true
}

// SetBackups makes this shard forward every push it applies to the named shards before it
// acknowledges the push. The backups must serve the same job and shard; each is dialled
// with Config.Dial. An empty list stops forwarding.
func (s *Server) SetBackups(ctx context.Context, req *skipgridpb.SetBackupsRequest) (
	*skipgridpb.SetBackupsResponse, error) {
	if _, err := s.jobFor("set backups", "coordinator", req.GetJobId()); err != nil {
		return nil, err
	}
	addrs := req.GetAddresses()
	if len(addrs) > 0 && s.cfg.Dial == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "set backups: shard %d has no "+
			"dialer for backups (Config.Dial)", s.cfg.Shard)
	}

	s.repl.setMu.Lock()
	defer s.repl.setMu.Unlock()
	old := s.repl.backups.Load()
	if old != nil && slices.Equal(old.addrs, addrs) {
		return &skipgridpb.SetBackupsResponse{}, nil
	}
	next := &backupSet{addrs: slices.Clone(addrs)}
	for _, a := range addrs {
		if i := indexOf(old, a); i >= 0 {
			next.clients = append(next.clients, old.clients[i])
			continue
		}
		cl, err := s.cfg.Dial(ctx, a)
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "set backups: dial backup %s of "+
				"shard %d: %v", a, s.cfg.Shard, err)
		}
		next.clients = append(next.clients, cl)
	}
	s.repl.backups.Store(next)
	s.log.Info("backups set", "backups", addrs, "was", oldAddrs(old))
	return &skipgridpb.SetBackupsResponse{}, nil
}

func indexOf(set *backupSet, addr string) int {
	if set == nil {
		return -1
	}
	return slices.Index(set.addrs, addr)
}

func oldAddrs(set *backupSet) []string {
	if set == nil {
		return nil
	}
	return set.addrs
}

// forward sends an applied push to every backup, in parallel, retrying each for up to
// forwardRetry. A backup that does not take it makes the push Unavailable for its sender,
// who retries with the same sequence number: this shard does not apply it twice, and
// forwards it again.
func (s *Server) forward(ctx context.Context, req *skipgridpb.PushRequest) error {
	set := s.repl.backups.Load()
	if set == nil || len(set.clients) == 0 || req.GetForwarded() {
		return nil
	}
	fwd := &skipgridpb.PushRequest{Sender: req.GetSender(), JobId: req.GetJobId(),
		Rows: req.GetRows(), Seq: req.GetSeq(), Forwarded: true}

	var g errgroup.Group
	for i, cl := range set.clients {
		g.Go(func() error { return s.forwardOne(ctx, cl, set.addrs[i], fwd) })
	}
	return g.Wait()
}

func (s *Server) forwardOne(ctx context.Context, cl skipgridpb.ParameterServerClient,
	addr string, req *skipgridpb.PushRequest) error {
	deadline := time.Now().Add(forwardRetry)
	backoff := 20 * time.Millisecond
	for {
		cctx, cancel := context.WithDeadline(ctx, deadline)
		_, err := cl.Push(cctx, req)
		cancel()
		if err == nil {
			return nil
		}
		s.repl.forwardFailures.Add(1)
		code := status.Code(err)
		retryable := code == codes.Unavailable || code == codes.DeadlineExceeded
		if !retryable || ctx.Err() != nil || time.Now().Add(backoff).After(deadline) {
			s.log.Warn("forward to backup failed; the push is not acknowledged",
				"backup", addr, "sender", req.GetSender(), "seq", req.GetSeq(), "err", err)
			return status.Errorf(codes.Unavailable, "push from %s applied on shard %d but "+
				"not on its backup %s (%v); retry it", req.GetSender(), s.cfg.Shard, addr, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// replicationStats fills the replication part of resp.
func (s *Server) replicationStats(resp *skipgridpb.StatsResponse) {
	resp.PushesDuplicate = s.repl.duplicates.Load()
	resp.PushesForwarded = s.repl.forwarded.Load()
	resp.ForwardFailures = s.repl.forwardFailures.Load()
	if set := s.repl.backups.Load(); set != nil {
		resp.Backups = slices.Clone(set.addrs)
	}
}
