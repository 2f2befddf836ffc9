package member

import (
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// metaA, metaB and metaC are the three nodes of the cluster tests, one per
// role; the gRPC ports are arbitrary (nothing dials them).
var (
	metaA = Meta{Role: "coordinator", Name: "a", GRPCAddr: "127.0.0.1:7001"}
	metaB = Meta{Role: "ps", Name: "b", GRPCAddr: "127.0.0.1:7002", Shard: 1}
	metaC = Meta{Role: "worker", Name: "c", GRPCAddr: "127.0.0.1:7003"}
)

// startThree starts a as the first node and b, c through a as seed, and
// waits until every node has seen both others join.
func startThree(t *testing.T) (nodes []*Node, events []*eventLog) {
	t.Helper()
	ctx := deadline(t)
	metas := []Meta{metaA, metaB, metaC}
	for i, m := range metas {
		var join []string
		if i > 0 {
			join = []string{nodes[0].LocalAddr()}
		}
		ev := newEventLog(t)
		n := testNode{name: m.Name, meta: m, join: join, event: ev}.start(t)
		nodes = append(nodes, n)
		events = append(events, ev)
	}

	// Each node must hear of exactly the two others, whatever the order.
	for i, ev := range events {
		var got []Meta
		for range 2 {
			got = append(got, next(ctx, t, ev.joins, metas[i].Name+" OnJoin"))
		}
		slices.SortFunc(got, func(x, y Meta) int { return strings.Compare(x.Name, y.Name) })
		want := slices.Delete(slices.Clone(metas), i, i+1)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("node %s OnJoin metas (-want +got):\n%s", metas[i].Name, diff)
		}
	}
	return nodes, events
}

func TestThreeNodesSeeEachOther(t *testing.T) {
	checkGoroutines(t)
	nodes, _ := startThree(t)

	// Every node lists all three, itself included, alive, with the metadata
	// each one set and the gossip address each one reports for itself.
	want := []Member{
		{Meta: metaA, Addr: nodes[0].LocalAddr(), State: StateAlive},
		{Meta: metaB, Addr: nodes[1].LocalAddr(), State: StateAlive},
		{Meta: metaC, Addr: nodes[2].LocalAddr(), State: StateAlive},
	}
	for i, n := range nodes {
		if diff := cmp.Diff(want, n.Members()); diff != "" {
			t.Errorf("node %d Members (-want +got):\n%s", i, diff)
		}
	}
}

func TestShutdownWithoutLeaveIsDetected(t *testing.T) {
	checkGoroutines(t)
	nodes, events := startThree(t)
	ctx := deadline(t)

	// c crashes (no Leave): a and b must each report c through OnLeave once
	// the failure detector declares it dead, and list it as dead.
	if err := nodes[2].Shutdown(); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		got := next(ctx, t, events[i].leaves, "OnLeave for c")
		if diff := cmp.Diff(metaC, got); diff != "" {
			t.Errorf("node %d OnLeave meta (-want +got):\n%s", i, diff)
		}
		m := nodes[i].Members()
		if len(m) != 3 || m[2].Name != "c" || m[2].State != StateDead {
			t.Errorf("node %d Members after c crashed: %+v, want c listed as %q", i, m,
				StateDead)
		}
	}
}

func TestLeaveIsSeenAsLeft(t *testing.T) {
	checkGoroutines(t)
	ctx := deadline(t)
	evA := newEventLog(t)
	a := testNode{name: "a", meta: metaA, event: evA}.start(t)
	b := testNode{name: "b", meta: metaB, join: []string{a.LocalAddr()}}.start(t)
	next(ctx, t, evA.joins, "OnJoin for b")

	// A clean Leave reaches a before Leave returns, so a sees b as left.
	if err := b.Leave(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	got := next(ctx, t, evA.leaves, "OnLeave for b")
	if diff := cmp.Diff(metaB, got); diff != "" {
		t.Errorf("OnLeave meta (-want +got):\n%s", diff)
	}
	want := []Member{
		{Meta: metaA, Addr: a.LocalAddr(), State: StateAlive},
		{Meta: metaB, Addr: b.LocalAddr(), State: StateLeft},
	}
	if diff := cmp.Diff(want, a.Members()); diff != "" {
		t.Errorf("Members after b left (-want +got):\n%s", diff)
	}
}

// The keys of the encryption tests: two different 16-byte keys and one of
// 32 bytes.
var (
	key1 = []byte("0123456789abcdef")
	key2 = []byte("fedcba9876543210")
	key3 = []byte("0123456789abcdef0123456789abcdef")
)

func TestGossipKeyMismatchIsRefused(t *testing.T) {
	tests := []struct {
		name             string
		seedKey, joinKey []byte
		wantJoin         bool
	}{
		{"same key", key1, key1, true},
		{"same 32-byte key", key3, key3, true},
		{"wrong key", key1, key2, false},
		{"joiner has no key", key1, nil, false},
		{"only joiner has a key", nil, key1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			ctx := deadline(t)
			rec := newRecorder(t)
			seed := testNode{name: "seed", meta: Meta{Role: "coordinator"}, key: tc.seedKey,
				rec: rec}.start(t)
			joiner := testNode{name: "joiner", meta: Meta{Role: "worker"}, key: tc.joinKey,
				join: []string{seed.LocalAddr()}}

			n, err := Start(joiner.config())
			if tc.wantJoin {
				if err != nil {
					t.Fatalf("Start with the seed's key: %v", err)
				}
				if err := n.Shutdown(); err != nil {
					t.Fatal(err)
				}
				return
			}
			checkRefusal(t, n, err, seed)

			// The seed logged the refused gossip, as memberlist reports it
			// (decryption failed, or encryption expected or not configured).
			_, err = rec.waitFor(ctx, func(r logRecord) bool {
				return r.Level >= slog.LevelWarn && r.Attrs["component"] == "memberlist" &&
					containsFold(r.Msg, "crypt")
			})
			if err != nil {
				t.Errorf("seed did not log the refusal: %v", err)
			}
		})
	}
}

// checkRefusal checks the outcome of a join that keys must prevent.
func checkRefusal(t *testing.T, n *Node, err error, seed *Node) {
	t.Helper()
	if err == nil {
		_ = n.Shutdown()
		t.Fatal("Start joined a cluster with another gossip key")
	}
	if !errors.Is(err, ErrJoin) || !errors.Is(err, ErrGossipKey) {
		t.Errorf("Start error %q: want it to wrap ErrJoin and ErrGossipKey", err)
	}
	if !strings.Contains(err.Error(), seed.LocalAddr()) {
		t.Errorf("Start error %q does not name the seed %s", err, seed.LocalAddr())
	}

	// The seed's table holds only itself.
	if m := seed.Members(); len(m) != 1 || m[0].Name != "seed" {
		t.Errorf("seed Members after refusal: %+v, want only the seed", m)
	}
}

func TestJoinUnreachableSeed(t *testing.T) {
	checkGoroutines(t)

	// A port that was just free: nothing listens there, so connecting is
	// refused at once and every attempt fails.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	cfg := testNode{name: "lonely", meta: Meta{Role: "worker"}, join: []string{dead}}.config()
	n, err := Start(cfg)
	if err == nil {
		_ = n.Shutdown()
		t.Fatalf("Start joined through %s, where nothing listens", dead)
	}
	if !errors.Is(err, ErrJoin) || errors.Is(err, ErrGossipKey) {
		t.Errorf("Start error %q: want ErrJoin without ErrGossipKey", err)
	}
	// The local profile makes 4 attempts.
	for _, want := range []string{dead, "after 4 attempts"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Start error %q does not contain %q", err, want)
		}
	}
}

func TestStartRefusesLargeMeta(t *testing.T) {
	checkGoroutines(t)

	// A 470-byte role makes 43+470 = 513 bytes of JSON (see TestMetaSize).
	cfg := testNode{name: "n1", meta: Meta{Role: strings.Repeat("r", 470)}}.config()
	n, err := Start(cfg)
	if err == nil {
		_ = n.Shutdown()
		t.Fatal("Start accepted 513 bytes of metadata")
	}
	if !errors.Is(err, ErrMetaTooLarge) || !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Start error %q: want ErrMetaTooLarge and ErrInvalidConfig", err)
	}
}

func TestLeaveAfterShutdown(t *testing.T) {
	checkGoroutines(t)
	n := testNode{name: "a", meta: metaA}.start(t)
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}

	// A second Shutdown (the cleanup's) is a no-op; Leave reports the state
	// instead of letting memberlist panic.
	if err := n.Shutdown(); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if err := n.Leave(time.Second); !errors.Is(err, ErrShutdown) {
		t.Errorf("Leave after Shutdown: %v, want ErrShutdown", err)
	}
}

func TestMembersLogJoins(t *testing.T) {
	checkGoroutines(t)
	ctx := deadline(t)
	rec := newRecorder(t)
	a := testNode{name: "a", meta: metaA, rec: rec}.start(t)
	testNode{name: "b", meta: metaB, join: []string{a.LocalAddr()}}.start(t)

	// a logs b's arrival with its role, under component=member.
	_, err := rec.waitFor(ctx, func(r logRecord) bool {
		return r.Msg == "node joined" && r.Attrs["component"] == "member" &&
			r.Attrs["node"] == "b" && r.Attrs["role"] == "ps"
	})
	if err != nil {
		t.Error(err)
	}
}
