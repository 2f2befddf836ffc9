package coordinator

import (
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// TestReplicaRegistryAndFailover walks the core through a replicated job's life: both copies
// of both shards register, a primary goes silent and its backup takes over, the dead copy
// comes back (and stays unused), and a backup restarts during training (and is dropped).
func TestReplicaRegistryAndFailover(t *testing.T) {
	co := newCore(coreSettings{NumPS: 2, Epochs: 1, Replicas: 2},
		slog.New(slog.DiscardHandler), t0)
	reg := func(name string, s, r uint32, addr string) {
		t.Helper()
		if err := co.registerCopy(name, s, r, addr); err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
	}

	reg("ps-0", 0, 0, "a:1")
	reg("ps-1", 1, 0, "b:1")
	reg("ps-1-r1", 1, 1, "b:2")
	if got := co.missingPS(); !slices.Equal(got, []int{0}) {
		t.Fatalf("missing %v with shard 0's backup unregistered; want [0]", got)
	}
	if got := co.missingCopies(); got != "shard 0 (replica 1)" {
		t.Fatalf("missing copies %q; want shard 0 (replica 1)", got)
	}
	reg("ps-0-r1", 0, 1, "a:2")
	if got := co.missingPS(); len(got) != 0 {
		t.Fatalf("missing %v with every copy registered", got)
	}
	if err := co.registerCopy("ps-0-r2", 0, 2, "a:3"); !errors.Is(err, errBadRequest) {
		t.Fatalf("replica 2 of a 2-copy job: %v; want a bad request", err)
	}
	if got := co.PS[1].backupAddrs(); !slices.Equal(got, []string{"b:2"}) {
		t.Fatalf("shard 1 backups %v; want [b:2]", got)
	}

	co.Phase = skipgridpb.Phase_PHASE_TRAINING
	w := co.watch(1)
	w.Incarnation, w.LastPushes, w.FailingSince = 7, 40, t0.Add(time.Second)
	co.PS[1].Backups[0].Incarnation, co.PS[1].Backups[0].Pushes = 9, 40
	if got := co.failover(1, t0.Add(4*time.Second)); got != "b:2" {
		t.Fatalf("failover to %q; want b:2", got)
	}
	if addrs := co.psAddresses(); !slices.Equal(addrs, []string{"a:1", "b:2"}) {
		t.Errorf("addresses after failover %v; want [a:1 b:2]", addrs)
	}
	p := co.PS[1]
	if p.Name != "ps-1-r1" || p.Replica != 1 || len(p.live()) != 0 || len(p.Backups) != 1 ||
		!p.Backups[0].Lost || p.Backups[0].Address != "b:1" {
		t.Errorf("shard 1 after failover %+v; want ps-1-r1 serving, ps-1 lost", p)
	}
	if w := co.watch(1); w.Incarnation != 9 || !w.FailingSince.IsZero() {
		t.Errorf("watch after failover %+v; want the backup's incarnation 9, not failing", w)
	}
	rec := co.Durable.Recovery
	if rec.Failovers != 1 || len(rec.Events) != 1 || rec.ShardRestarts != 0 {
		t.Fatalf("recovery %+v; want one failover event", rec)
	}
	ev := rec.Events[0]
	if !ev.Failover || ev.Shard != 1 || ev.FailoverFrom != "b:1" || ev.FailoverTo != "b:2" ||
		ev.RecoverySeconds != 3 || ev.PrimaryPushesLastPoll != 40 || ev.BackupPushes != 40 {
		t.Errorf("event %+v", ev)
	}

	// The old primary restarts: it is behind, so it stays a lost copy.
	reg("ps-1", 1, 0, "b:9")
	if p := co.PS[1]; p.Address != "b:2" || !p.Backups[0].Lost || p.Backups[0].Address != "b:1" {
		t.Errorf("shard 1 after its old primary came back %+v", p)
	}
	// Shard 0's backup restarts during training: it is dropped.
	reg("ps-0-r1", 0, 1, "a:2")
	if got := co.PS[0].backupAddrs(); len(got) != 0 || !co.PS[0].Backups[0].Lost {
		t.Errorf("shard 0 backups %v after its backup restarted; want none live", got)
	}
}
