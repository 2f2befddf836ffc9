package member

import (
	"cmp"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Member states reported in Member.State.
const (
	// StateAlive means the node is in the cluster (possibly suspected, see
	// Node.Members).
	StateAlive = "alive"
	// StateDead means the failure detector declared the node dead.
	StateDead = "dead"
	// StateLeft means the node left with Node.Leave.
	StateLeft = "left"
)

// Member is one node as the local node knows it.
type Member struct {
	// Meta is what the node gossips about itself.
	Meta
	// Addr is the node's gossip address, host:port.
	Addr string
	// State is StateAlive, StateDead or StateLeft (see Node.Members).
	State string
}

// departedRetention is how long a dead or left node stays in the roster
// (and in Node.Members) before it is forgotten, so that a long job with
// many restarts does not grow the roster without bound.
const departedRetention = 10 * time.Minute

// rosterEntry is one node of the roster.
type rosterEntry struct {
	member Member
	// since is when the node last changed state.
	since time.Time
}

// roster is the table of nodes built from memberlist's events. It exists
// because memberlist's own Members returns pointers into its table that
// it keeps writing after it unlocks; this copy is read under its own lock.
type roster struct {
	mu      sync.Mutex
	entries map[string]rosterEntry // by node name; guarded by mu
}

func newRoster() *roster {
	return &roster{entries: make(map[string]rosterEntry)}
}

// set records m as it is now and forgets departed nodes older than the
// retention.
func (r *roster) set(m Member, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()

	r.entries[m.Name] = rosterEntry{member: m, since: now}
	for name, e := range r.entries {
		if e.member.State != StateAlive && now.Sub(e.since) > departedRetention {
			delete(r.entries, name)
		}
	}
}

// list returns a copy of the roster sorted by name.
func (r *roster) list() []Member {
	r.mu.Lock()
	out := make([]Member, 0, len(r.entries))
	for _, e := range r.entries {
		out = append(out, e.member)
	}
	r.mu.Unlock()

	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// events implements memberlist.EventDelegate and memberlist.Delegate: it
// serves the local metadata, keeps the roster and calls the callbacks.
type events struct {
	self    string
	meta    atomic.Pointer[[]byte] // JSON of the local wireMeta, at most maxMetaBytes
	roster  *roster
	log     *slog.Logger
	onJoin  func(Meta)
	onLeave func(Meta)
	now     func() time.Time
}

// memberOf converts a memberlist node and tells whether it announced that
// it is leaving. Metadata that cannot be read is logged and replaced by a
// Meta holding only the name (so its Role is empty); the memberlist name
// wins over a different Meta.Name.
func (e *events) memberOf(n *memberlist.Node, state string) (Member, bool) {
	w, err := decodeMeta(n.Meta)
	if err != nil {
		e.log.Warn("node metadata unreadable; treating the node as roleless",
			"node", n.Name, "addr", n.Address(), "err", err)
		w = wireMeta{}
	}
	if w.Name != n.Name {
		if w.Name != "" {
			e.log.Warn("node metadata names another node; using the gossip name",
				"node", n.Name, "meta_name", w.Name)
		}
		w.Name = n.Name
	}
	return Member{Meta: w.Meta, Addr: n.Address(), State: state}, w.Leaving
}

// NotifyJoin implements memberlist.EventDelegate.
func (e *events) NotifyJoin(n *memberlist.Node) {
	m, _ := e.memberOf(n, StateAlive)
	e.roster.set(m, e.now())
	if n.Name == e.self {
		return
	}

	e.log.Info("node joined", "node", m.Name, "role", m.Role, "addr", m.Addr)
	if e.onJoin != nil {
		e.onJoin(m.Meta)
	}
}

// NotifyLeave implements memberlist.EventDelegate. memberlist does not say
// whether the node left or failed (the State of the node it passes is not
// maintained), so a node counts as left when its last metadata carried the
// leaving flag that Node.Leave gossips first.
func (e *events) NotifyLeave(n *memberlist.Node) {
	m, leaving := e.memberOf(n, StateDead)
	if leaving {
		m.State = StateLeft
	}
	e.roster.set(m, e.now())
	if n.Name == e.self {
		return
	}

	if m.State == StateDead {
		e.log.Warn("node failed", "node", m.Name, "role", m.Role, "addr", m.Addr)
	} else {
		e.log.Info("node left", "node", m.Name, "role", m.Role, "addr", m.Addr)
	}
	if e.onLeave != nil {
		e.onLeave(m.Meta)
	}
}

// NotifyUpdate implements memberlist.EventDelegate: the node's metadata or
// address changed.
func (e *events) NotifyUpdate(n *memberlist.Node) {
	m, leaving := e.memberOf(n, StateAlive)
	e.roster.set(m, e.now())
	e.log.Debug("node updated", "leaving", leaving, "node", m.Name, "role", m.Role, "addr", m.Addr)
}

// NodeMeta implements memberlist.Delegate. The metadata was checked against
// the limit before it was stored, so it always fits.
func (e *events) NodeMeta(limit int) []byte {
	if b := e.meta.Load(); b != nil {
		return *b
	}
	return nil
}

// NotifyMsg implements memberlist.Delegate; no user messages are sent.
func (e *events) NotifyMsg([]byte) {}

// GetBroadcasts implements memberlist.Delegate; nothing is broadcast.
func (e *events) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState implements memberlist.Delegate; there is no extra state.
func (e *events) LocalState(join bool) []byte { return nil }

// MergeRemoteState implements memberlist.Delegate; there is no extra state.
func (e *events) MergeRemoteState(buf []byte, join bool) {}
