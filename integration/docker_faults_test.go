package integration

import (
	"context"
	"maps"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDockerComposeWorkerPaused is fault 4 on containers: `docker pause` of a worker that
// holds a lease, for longer than the lease (3 s), then `docker unpause`. Its lease is taken
// back (by the deadline, or earlier when gossip reports the frozen node dead) and leased
// again; whatever the worker pushes or reports late is not counted twice: the job finishes
// with every chunk counted once per epoch, and its analogy accuracy is within a point of
// the fault-free run's.
func TestDockerComposeWorkerPaused(t *testing.T) {
	compose := requireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	settings := wikiComposeSettings()
	// The lease deadline changes nothing while no node fails.
	faultFree := composeFaultFree(compose, maps.Clone(settings))
	settings["SKIPGRID_LEASE_TIMEOUT"] = "3s"
	c := startCompose(t, ctx, compose, settings)

	var victim string
	st := c.pollStatus(ctx, func(st status) bool {
		if st.Phase != "training" || st.Fraction < 0.1 || st.Fraction > 0.5 {
			return false
		}
		for _, w := range st.Workers {
			if len(w.Leases) > 0 && strings.HasPrefix(w.Name, "worker-") {
				victim = w.Name
				return true
			}
		}
		return false
	})
	id := c.container(ctx, victim)
	docker := func(verb string) {
		t.Helper()
		if out, err := exec.CommandContext(ctx, "docker", verb, id).CombinedOutput(); err != nil {
			t.Fatalf("docker %s %s: %v\n%s", verb, victim, err, out)
		}
	}
	docker("pause")
	paused := time.Now()
	time.Sleep(7 * time.Second)
	docker("unpause")
	t.Logf("paused %s at %.1f%% of training for %.1fs", victim, 100*st.Fraction,
		time.Since(paused).Seconds())

	if code := c.waitExit(ctx, "coordinator"); code != 0 {
		t.Fatalf("coordinator exited with %d", code)
	}
	end := time.Now()
	res := checkOutputs(t, c.out, 3)
	if r := res.Retries; r.LeasesExpired+r.LeasesReleased == 0 {
		t.Errorf("retries %+v: the paused worker's lease was never taken back", r)
	}
	t.Logf("figures: worker paused (containers): job finished; %d chunks x 3 epochs counted "+
		"exactly once; retries %+v; pause to job end %.1fs", res.Chunks, res.Retries,
		end.Sub(paused).Seconds())
	checkAccuracy(t, ctx, faultFree, c.out)
}

// restartAfterKill kills service's container with `docker kill` once training passes
// fraction, starts it again after pause with `compose start` (Docker restarts no container
// that `docker kill` ended) and returns the kill time.
func (c *composeCluster) restartAfterKill(ctx context.Context, service string,
	fraction float64, pause time.Duration) time.Time {
	c.t.Helper()
	id := c.container(ctx, service)
	c.pollStatus(ctx, func(st status) bool {
		return st.Phase == "training" && st.Fraction >= fraction
	})
	if out, err := exec.CommandContext(ctx, "docker", "kill", id).CombinedOutput(); err != nil {
		c.t.Fatalf("docker kill %s: %v\n%s", service, err, out)
	}
	killed := time.Now()
	time.Sleep(pause)
	if _, err := c.run(ctx, "start", service); err != nil {
		c.t.Fatal(err)
	}
	return killed
}

// TestDockerComposePSRestarted is fault 2 on containers: `docker kill` of shard ps-1 after
// the first epoch's checkpoint, then `compose start ps-1`. The shard restores its
// checkpoint from its volume, the coordinator rolls training back to it, and the job
// finishes with every chunk counted once per epoch and accuracy within a point of the
// fault-free run's.
func TestDockerComposePSRestarted(t *testing.T) {
	compose := requireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	settings := wikiComposeSettings()
	c := startCompose(t, ctx, compose, settings)
	killed := c.restartAfterKill(ctx, "ps-1", 0.45, time.Second)

	if code := c.waitExit(ctx, "coordinator"); code != 0 {
		t.Fatalf("coordinator exited with %d", code)
	}
	end := time.Now()
	res := checkOutputs(t, c.out, 3)
	rec := readRecovery(t, c.out)
	if rec.ShardRestarts != 1 || len(rec.Events) != 1 || !rec.Events[0].Restored {
		t.Fatalf("run.json recovery %+v; want one restart of shard 1 from a checkpoint", rec)
	}
	ev := rec.Events[0]
	t.Logf("figures: PS killed and restarted (containers): job finished; %d chunks x 3 "+
		"epochs counted exactly once; restored checkpoint %d; %d chunks rolled back; "+
		"updates lost (estimate) %d rows; kill to job end %.1fs", res.Chunks,
		ev.RestoredCheckpoint, ev.ChunksRolledBack, ev.UpdatesLostEstimate,
		end.Sub(killed).Seconds())
	checkAccuracy(t, ctx, composeFaultFree(compose, settings), c.out)
}

// TestDockerComposeCoordinatorRestarted is fault 6 on containers: `docker kill` of the
// coordinator mid-training, then `compose start coordinator`. It resumes the job saved in
// its output folder; workers and shards carry on with it, and the job finishes with every
// chunk counted once per epoch and accuracy within a point of the fault-free run's.
func TestDockerComposeCoordinatorRestarted(t *testing.T) {
	compose := requireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	settings := wikiComposeSettings()
	c := startCompose(t, ctx, compose, settings)
	killed := c.restartAfterKill(ctx, "coordinator", 0.4, time.Second)

	if code := c.waitExit(ctx, "coordinator"); code != 0 {
		t.Fatalf("coordinator exited with %d", code)
	}
	end := time.Now()
	res := checkOutputs(t, c.out, 3)
	if rec := readRecovery(t, c.out); rec.CoordinatorResumes != 1 {
		t.Fatalf("run.json recovery %+v; want one coordinator resume", rec)
	}
	t.Logf("figures: coordinator killed and restarted (containers): job finished; %d chunks "+
		"x 3 epochs counted exactly once; retries %+v; kill to job end %.1fs", res.Chunks,
		res.Retries, end.Sub(killed).Seconds())
	checkAccuracy(t, ctx, composeFaultFree(compose, settings), c.out)
}
