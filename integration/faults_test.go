package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// startJob starts a coordinator, two PS shards and two workers training the Wikipedia sample
// for two epochs with short leases, and returns the coordinator, the workers, the status
// address and the output directory.
func startJob(t *testing.T, c *cluster) (coord *proc, workers []*proc, status, out string) {
	t.Helper()
	out = t.TempDir()
	coordRPC, gossip, status := freeAddr(t), freeAddr(t), freeAddr(t)
	coord = c.start("coordinator", "coordinator",
		"--corpus", "../data/enwiki-sample.txt.gz", "--out", out, "--ps", "2",
		"--epochs", "2", "--lease-timeout", "3s", "--batch-words", "4096",
		"--grpc-addr", coordRPC, "--http-addr", status, "--gossip-addr", gossip,
		"--gossip-profile", "local", "--linger", "2s")
	for i := range 2 {
		c.start(fmt.Sprintf("ps-%d", i), "ps", "--shard", fmt.Sprint(i),
			"--grpc-addr", freeAddr(t), "--coordinator", coordRPC,
			"--gossip-addr", freeAddr(t), "--join", gossip, "--gossip-profile", "local")
	}
	for i := range 2 {
		workers = append(workers, c.start(fmt.Sprintf("worker-%d", i), "worker",
			"--name", fmt.Sprintf("worker-%d", i), "--coordinator", coordRPC,
			"--gossip-addr", freeAddr(t), "--join", gossip, "--gossip-profile", "local"))
	}
	return coord, workers, status, out
}

// waitTraining polls the coordinator's /status until training has passed fraction.
func waitTraining(t *testing.T, ctx context.Context, status string, fraction float64) {
	t.Helper()
	for {
		var st struct {
			Phase    string  `json:"phase"`
			Fraction float64 `json:"fraction"`
		}
		resp, err := http.Get("http://" + status + "/status")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
		}
		if err == nil && st.Phase == "training" && st.Fraction >= fraction {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("training never reached %.0f%% (last status: %+v, %v)", 100*fraction, st, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestWorkerKilled kills one worker with SIGKILL in the middle of the first epoch: its
// chunks go back to the pool, the job finishes on the other worker, every chunk is still
// counted exactly once per epoch, and the vectors score within a point of a fault-free run's.
func TestWorkerKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("fault injection on five processes; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := newCluster(t)
	coord, workers, status, out := startJob(t, c)

	waitTraining(t, ctx, status, 0.1)
	if err := workers[1].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if err := coord.wait(t, ctx); err != nil {
		t.Fatalf("coordinator failed after a worker was killed: %v", err)
	}
	res := checkOutputs(t, out, 2)
	if res.Retries.LeasesExpired+res.Retries.LeasesReleased == 0 {
		t.Errorf("no lease was expired or released after killing a worker: %+v", res.Retries)
	}
	t.Logf("job finished %.1fs after the kill; retries %+v", time.Since(killed).Seconds(),
		res.Retries)
	checkAccuracy(t, ctx, faultJobFaultFree, out)
}

// TestWorkerPausedPastLease stops one worker (SIGSTOP) for longer than its lease, then lets
// it go on: its chunk is leased again, whatever it reports late must not be counted, and the
// vectors score within a point of a fault-free run's.
func TestWorkerPausedPastLease(t *testing.T) {
	if testing.Short() {
		t.Skip("fault injection on five processes; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := newCluster(t)
	coord, workers, status, out := startJob(t, c)

	waitTraining(t, ctx, status, 0.1)
	p := workers[1].cmd.Process
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second) // the lease is 3 s
	if err := p.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := coord.wait(t, ctx); err != nil {
		t.Fatalf("coordinator failed after a worker was paused: %v", err)
	}
	res := checkOutputs(t, out, 2)
	if res.Retries.LeasesExpired+res.Retries.LeasesReleased == 0 {
		t.Errorf("the paused worker's lease neither expired nor was released: %+v",
			res.Retries)
	}
	t.Logf("retries after a 5 s pause: %+v", res.Retries)
	checkAccuracy(t, ctx, faultJobFaultFree, out)
}
