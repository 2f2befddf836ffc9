package integration

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The job of TestDockerComposeWorkerDisconnected: enough epochs (about 0.4 s each) that
// training outlasts the cut and the worker rejoins a running job, and a short lease, so
// that it, not only gossip, can take the chunk back while the worker is away.
const (
	disconnectedEpochs = 40
	disconnectedLease  = 3 * time.Second
)

// workerDisconnectedSettings is the job of TestDockerComposeWorkerDisconnected.
func workerDisconnectedSettings() map[string]string {
	settings := dockerSettings(disconnectedEpochs)
	settings["SKIPGRID_LEASE_TIMEOUT"] = disconnectedLease.String()
	return settings
}

// TestDockerComposeWorkerDisconnected cuts a worker that holds a lease off the compose
// network for longer than the lease, then plugs it back in. The worker process lives on
// but can reach no one, so its lease must lapse (or gossip must declare it gone) and its
// chunk go to another worker; the job finishes with every chunk and word counted exactly
// once per epoch, whatever the cut-off worker reports after it is back.
func TestDockerComposeWorkerDisconnected(t *testing.T) {
	compose := requireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const (
		epochs = disconnectedEpochs
		cut    = 3 * disconnectedLease
	)
	settings := workerDisconnectedSettings()
	c := startCompose(t, ctx, compose, settings)

	victim, id, network, cutAt := cutLeaseHolder(c, ctx)

	select {
	case <-ctx.Done():
		t.Fatalf("deadline passed during the cut: %v", ctx.Err())
	case <-time.After(cut):
	}
	// Compose gave the container its service name as an alias on the network; it goes
	// with the disconnect, so it is given again.
	docker(t, ctx, "network", "connect", "--alias", victim, network, id)
	back, err := c.fetchStatus(ctx)
	t.Logf("reconnected %s after %v; job then in phase %q at %.1f%% (%v)", victim,
		time.Since(cutAt).Round(time.Millisecond), back.Phase, 100*back.Fraction, err)

	if code := c.waitExit(ctx, "coordinator"); code != 0 {
		t.Fatalf("coordinator exited with %d", code)
	}
	recovered := time.Since(cutAt)
	res := checkOutputs(t, c.out, epochs)
	if res.Retries.LeasesExpired+res.Retries.LeasesReleased == 0 {
		t.Errorf("no lease expired or was released while %s was cut off for %v: %+v",
			victim, cut, res.Retries)
	}
	inspect, _ := exec.CommandContext(ctx, "docker", "inspect", "-f",
		"restarts={{.RestartCount}} running={{.State.Running}}", id).Output()
	t.Logf("job ended %v after the disconnect; retries: %+v; cut-off container: %s; %s",
		recovered.Round(time.Millisecond), res.Retries, strings.TrimSpace(string(inspect)),
		phaseTimes(t, c.out))
	checkAccuracy(t, ctx, composeFaultFree(compose, settings), c.out)
}

// waitLeaseHolder waits until training has begun and some worker holds a lease, early
// enough that much of the job is still ahead, and returns that worker and the status.
func waitLeaseHolder(c *composeCluster, ctx context.Context) (string, status) {
	c.t.Helper()
	var holder string
	st := c.pollStatus(ctx, func(st status) bool {
		if st.Phase != "training" || st.Fraction <= 0 || st.Fraction > 0.5 {
			return false
		}
		for _, w := range st.Workers {
			if len(w.Leases) > 0 && strings.HasPrefix(w.Name, "worker-") {
				holder = w.Name
				return true
			}
		}
		return false
	})
	return holder, st
}

// cutLeaseHolder disconnects a worker that holds a lease from the cluster network and
// returns it, its container and network, and when it was cut off. A worker can finish its
// chunk between the status that names it and the disconnect, and then has no lease to lose;
// so the coordinator must still list a lease of the worker once it is cut off, or the worker
// is plugged back in at once and another try is made.
func cutLeaseHolder(c *composeCluster, ctx context.Context) (victim, id, network string,
	cutAt time.Time) {
	t := c.t
	t.Helper()
	const tries = 5
	for try := 1; try <= tries; try++ {
		victim, st := waitLeaseHolder(c, ctx)
		id = c.container(ctx, victim)
		network = clusterNetwork(t, ctx, id)
		docker(t, ctx, "network", "disconnect", network, id)
		cutAt = time.Now()
		if after, err := c.fetchStatus(ctx); err == nil && holdsLease(after, victim) {
			t.Logf("disconnected %s from %s at %.1f%% of training, holding a lease", victim,
				network, 100*st.Fraction)
			return victim, id, network, cutAt
		}
		t.Logf("try %d: %s held no lease once disconnected; connected again", try, victim)
		docker(t, ctx, "network", "connect", "--alias", victim, network, id)
	}
	t.Fatalf("no worker still held a lease once disconnected, in %d tries", tries)
	return "", "", "", time.Time{}
}

// holdsLease reports whether st lists a lease of the worker name.
func holdsLease(st status, name string) bool {
	for _, w := range st.Workers {
		if w.Name == name && len(w.Leases) > 0 {
			return true
		}
	}
	return false
}

// clusterNetwork returns the name of the one network the container is attached to: the
// compose project's cluster network (compose names it after the project).
func clusterNetwork(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	out, err := exec.CommandContext(ctx, "docker", "inspect", "-f",
		"{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}", id).Output()
	if err != nil {
		t.Fatalf("docker inspect %s: %v", id, err)
	}
	names := strings.Fields(string(out))
	if len(names) != 1 || !strings.HasSuffix(names[0], "_cluster") {
		t.Fatalf("container %s is on networks %q, want only the project's cluster network",
			id, names)
	}
	return names[0]
}

// docker runs a docker subcommand and fails the test if it does not succeed.
func docker(t *testing.T, ctx context.Context, args ...string) {
	t.Helper()
	if out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput(); err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, tail(out, 2000))
	}
}
