package integration

import (
	"context"
	"maps"
	"os/exec"
	"testing"
	"time"
)

// replicasFile is the compose override that gives every shard a backup.
const replicasFile = "../deploy/replicas.yml"

// TestDockerComposePSKilledWithReplicas is fault 3 on containers: the compose cluster with
// deploy/replicas.yml (two copies of each shard), the primary of shard 1 killed with
// `docker kill` mid-training and never started again (Docker restarts no container that
// `docker kill` ended). Its backup takes over; the job finishes with exact per-epoch counts,
// nothing rolled back, the surviving copies hold exactly the rows the workers were
// acknowledged, and analogy accuracy is within a point of the fault-free run's.
func TestDockerComposePSKilledWithReplicas(t *testing.T) {
	compose := requireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// The Wikipedia sample, so that the accuracy comparison has enough questions; its 3
	// epochs outlast the kill and the failover by a wide margin.
	const epochs = 3
	settings := wikiComposeSettings()
	// The fault-free run: the same job on the same compose cluster without the backups,
	// which hold copies and train nothing.
	faultFree := composeFaultFree(compose, maps.Clone(settings))
	settings["SKIPGRID_FAILOVER_AFTER"] = "2s"
	c := startCompose(t, ctx, compose, settings, replicasFile)
	id := c.container(ctx, "ps-1")
	c.pollStatus(ctx, func(st status) bool {
		return st.Phase == "training" && st.Fraction >= 0.3
	})
	if out, err := exec.CommandContext(ctx, "docker", "kill", id).CombinedOutput(); err != nil {
		t.Fatalf("docker kill ps-1: %v\n%s", err, out)
	}
	killed := time.Now()

	if code := c.waitExit(ctx, "coordinator"); code != 0 {
		t.Fatalf("coordinator exited with %d", code)
	}
	end := time.Now()
	res := checkOutputs(t, c.out, epochs)
	rec := readFailovers(t, c.out)
	if rec.Failovers != 1 || rec.ShardRestarts != 0 || rec.ChunksRolledBack != 0 ||
		len(rec.Events) != 1 || rec.Events[0].Shard != 1 {
		t.Fatalf("run.json recovery %+v; want one failover of shard 1, nothing rolled back",
			rec)
	}

	for _, svc := range []string{"worker-0", "worker-1", "worker-2", "ps-0", "ps-0-r1",
		"ps-1-r1"} {
		c.waitExit(ctx, svc)
	}
	ack := make(map[int]uint64)
	for _, w := range []string{"worker-0", "worker-1", "worker-2"} {
		out, err := c.run(ctx, "logs", "--no-color", w)
		if err != nil {
			t.Fatal(err)
		}
		addAcked(t, w, out, ack)
	}
	for s, copies := range [][]string{{"ps-0", "ps-0-r1"}, {"ps-1-r1"}} {
		for _, svc := range copies {
			out, err := c.run(ctx, "logs", "--no-color", svc)
			if err != nil {
				t.Fatal(err)
			}
			if got := appliedIn(t, svc, out); got != ack[s] {
				t.Errorf("shard %d: %s applied %d rows, the workers were acknowledged %d",
					s, svc, got, ack[s])
			}
		}
	}
	checkAccuracy(t, ctx, faultFree, c.out)
	t.Logf("figures: replicas fault (containers): job finished; %d chunks x %d epochs "+
		"counted exactly once; failover %.1fs after the primary's first missed poll; kill "+
		"to job end %.1fs; rows acknowledged shard 0 %d, shard 1 %d, all held by the "+
		"surviving copies: updates lost 0", res.Chunks, epochs,
		rec.Events[0].RecoverySeconds, end.Sub(killed).Seconds(), ack[0], ack[1])
}
