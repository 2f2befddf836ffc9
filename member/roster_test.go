package member

import (
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/memberlist"
)

func TestRosterForgetsDepartedNodes(t *testing.T) {
	r := newRoster()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	alive := Member{Meta: Meta{Name: "a"}, State: StateAlive}
	dead := Member{Meta: Meta{Name: "d"}, State: StateDead}
	left := Member{Meta: Meta{Name: "l"}, State: StateLeft}
	r.set(alive, t0)
	r.set(dead, t0)
	r.set(left, t0.Add(5*time.Minute))

	// At t0+10m nothing is older than the 10-minute retention: all stay.
	r.set(alive, t0.Add(departedRetention))
	if diff := cmp.Diff([]Member{alive, dead, left}, r.list()); diff != "" {
		t.Errorf("at +10m (-want +got):\n%s", diff)
	}

	// At t0+10m1s d (gone at t0) is past it, l (gone at t0+5m) is not, and
	// a stays however long ago it was set since it is alive.
	r.set(Member{Meta: Meta{Name: "b"}, State: StateAlive}, t0.Add(departedRetention+time.Second))
	want := []Member{alive, {Meta: Meta{Name: "b"}, State: StateAlive}, left}
	if diff := cmp.Diff(want, r.list()); diff != "" {
		t.Errorf("at +10m1s (-want +got):\n%s", diff)
	}
}

func TestEventsUnreadableMeta(t *testing.T) {
	rec := newRecorder(t)
	var joined []Meta
	ev := &events{
		self:   "self",
		roster: newRoster(),
		log:    slog.New(recHandler{r: rec}),
		onJoin: func(m Meta) { joined = append(joined, m) },
		now:    time.Now,
	}
	addr := net.IPv4(10, 0, 0, 7)

	// Garbage metadata: the node is kept under its gossip name, without a
	// role, and a warning names it. A Meta.Name that differs from the
	// gossip name is replaced by the gossip name.
	ev.NotifyJoin(&memberlist.Node{Name: "x", Addr: addr, Port: 7946, Meta: []byte("{oops")})
	ev.NotifyJoin(&memberlist.Node{Name: "y", Addr: addr, Port: 7947,
		Meta: []byte(`{"role":"ps","name":"z"}`)})
	// The local node is listed but not announced.
	ev.NotifyJoin(&memberlist.Node{Name: "self", Addr: addr, Port: 7948,
		Meta: []byte(`{"role":"worker","name":"self"}`)})

	wantJoined := []Meta{{Name: "x"}, {Role: "ps", Name: "y"}}
	if diff := cmp.Diff(wantJoined, joined); diff != "" {
		t.Errorf("OnJoin metas (-want +got):\n%s", diff)
	}
	wantMembers := []Member{
		{Meta: Meta{Role: "worker", Name: "self"}, Addr: "10.0.0.7:7948", State: StateAlive},
		{Meta: Meta{Name: "x"}, Addr: "10.0.0.7:7946", State: StateAlive},
		{Meta: Meta{Role: "ps", Name: "y"}, Addr: "10.0.0.7:7947", State: StateAlive},
	}
	if diff := cmp.Diff(wantMembers, ev.roster.list()); diff != "" {
		t.Errorf("roster (-want +got):\n%s", diff)
	}

	var warned []string
	for _, r := range rec.all() {
		if r.Level == slog.LevelWarn {
			warned = append(warned, r.Attrs["node"])
		}
	}
	if diff := cmp.Diff([]string{"x", "y"}, warned); diff != "" {
		t.Errorf("nodes warned about (-want +got):\n%s", diff)
	}
}

func TestEventsLeftOrDead(t *testing.T) {
	var left []Meta
	ev := &events{
		self:    "self",
		roster:  newRoster(),
		log:     slog.New(slog.DiscardHandler),
		onLeave: func(m Meta) { left = append(left, m) },
		now:     time.Now,
	}
	addr := net.IPv4(10, 0, 0, 8)

	// p gossiped the leaving flag before going: left. q did not: dead.
	ev.NotifyLeave(&memberlist.Node{Name: "p", Addr: addr, Port: 1,
		Meta: []byte(`{"role":"ps","name":"p","leaving":true}`)})
	ev.NotifyLeave(&memberlist.Node{Name: "q", Addr: addr, Port: 2,
		Meta: []byte(`{"role":"worker","name":"q"}`)})

	if diff := cmp.Diff([]Meta{{Role: "ps", Name: "p"}, {Role: "worker", Name: "q"}},
		left); diff != "" {
		t.Errorf("OnLeave metas (-want +got):\n%s", diff)
	}
	want := []Member{
		{Meta: Meta{Role: "ps", Name: "p"}, Addr: "10.0.0.8:1", State: StateLeft},
		{Meta: Meta{Role: "worker", Name: "q"}, Addr: "10.0.0.8:2", State: StateDead},
	}
	if diff := cmp.Diff(want, ev.roster.list()); diff != "" {
		t.Errorf("roster (-want +got):\n%s", diff)
	}
}
