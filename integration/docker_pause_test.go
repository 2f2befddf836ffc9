package integration

import (
	"context"
	"maps"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// wikiComposeSettings is a compose job on the Wikipedia sample, a slice of the shared
// corpus: 3 epochs of 23 chunks. The container tests that compare accuracy share its
// fault-free run.
func wikiComposeSettings() map[string]string {
	return map[string]string{
		"SKIPGRID_CORPUS":      "/data/enwiki-sample.txt.gz",
		"SKIPGRID_EPOCHS":      strconv.Itoa(3),
		"SKIPGRID_CHUNK_BYTES": "262144",
	}
}

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
