package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// recoveryJob is a coordinator, two PS shards with checkpoint directories and two workers
// training the Wikipedia sample for three epochs, with the arguments to start any of them
// again on the same addresses.
type recoveryJob struct {
	out, status string
	ckptDirs    []string
	coordArgs   []string
	psArgs      [][]string
	coord       *proc
	ps          []*proc
	workers     []*proc
}

const recoveryEpochs = 3

// startRecoveryJob starts the job; coordExtra and workerExtra are added to the coordinator's
// and the workers' arguments.
func startRecoveryJob(t *testing.T, c *cluster, coordExtra, workerExtra []string) *recoveryJob {
	t.Helper()
	j := &recoveryJob{out: t.TempDir(), status: freeAddr(t)}
	coordRPC, gossip := freeAddr(t), freeAddr(t)
	j.coordArgs = append([]string{"coordinator",
		"--corpus", "../data/enwiki-sample.txt.gz", "--out", j.out, "--ps", "2",
		"--epochs", fmt.Sprint(recoveryEpochs), "--chunk-bytes", "262144",
		"--lease-timeout", "5s", "--grpc-addr", coordRPC, "--http-addr", j.status,
		"--gossip-addr", gossip, "--gossip-profile", "local", "--linger", "2s"},
		coordExtra...)
	j.coord = c.start("coordinator", j.coordArgs...)
	for i := range 2 {
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("ckpt-%d", i))
		j.ckptDirs = append(j.ckptDirs, dir)
		args := []string{"ps", "--shard", fmt.Sprint(i), "--grpc-addr", freeAddr(t),
			"--coordinator", coordRPC, "--gossip-addr", freeAddr(t), "--join", gossip,
			"--gossip-profile", "local", "--checkpoint-dir", dir}
		j.psArgs = append(j.psArgs, args)
		j.ps = append(j.ps, c.start(fmt.Sprintf("ps-%d", i), args...))
	}
	for i := range 2 {
		args := append([]string{"worker", "--name", fmt.Sprintf("worker-%d", i),
			"--coordinator", coordRPC, "--gossip-addr", freeAddr(t), "--join", gossip,
			"--gossip-profile", "local"}, workerExtra...)
		j.workers = append(j.workers, c.start(fmt.Sprintf("worker-%d", i), args...))
	}
	return j
}

// waitCheckpoint waits until shard s has written a checkpoint file.
func (j *recoveryJob) waitCheckpoint(t *testing.T, ctx context.Context, s int) {
	t.Helper()
	for {
		files, _ := filepath.Glob(filepath.Join(j.ckptDirs[s], fmt.Sprintf("shard-%d-*.ckpt", s)))
		if len(files) > 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("shard %d wrote no checkpoint before the deadline", s)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// kill sends SIGKILL to p.
func kill(t *testing.T, p *proc) time.Time {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	p.done <- errors.New("killed by the test")
	return time.Now()
}

// recoveryRecord is run.json's recovery part.
type recoveryRecord struct {
	Checkpoints         int    `json:"checkpoints"`
	ShardRestarts       int    `json:"shard_restarts"`
	UpdatesLostEstimate uint64 `json:"updates_lost_estimate"`
	ChunksRolledBack    int    `json:"chunks_rolled_back"`
	CoordinatorResumes  int    `json:"coordinator_resumes"`
	Events              []struct {
		Shard               int       `json:"shard"`
		At                  time.Time `json:"at"`
		Restored            bool      `json:"restored"`
		RestoredCheckpoint  uint64    `json:"restored_checkpoint"`
		RolledBackTo        uint64    `json:"rolled_back_to"`
		ChunksRolledBack    int       `json:"chunks_rolled_back"`
		LeasesDropped       int       `json:"leases_dropped"`
		UpdatesLostEstimate uint64    `json:"updates_lost_estimate"`
		RecoverySeconds     float64   `json:"recovery_seconds"`
	} `json:"events"`
}

func readRecovery(t *testing.T, out string) recoveryRecord {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(out, "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Recovery recoveryRecord `json:"recovery"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("run.json: %v", err)
	}
	return r.Recovery
}

// waitAll waits for every process of ps and fails the test for any that exits with an
// error.
func waitAll(t *testing.T, ctx context.Context, ps ...*proc) {
	t.Helper()
	for _, p := range ps {
		if err := p.wait(t, ctx); err != nil {
			t.Errorf("%s exited with %v", p.name, err)
		}
	}
}

// TestPSKilledAndRestarted kills PS shard 1 with SIGKILL in the second epoch, after the
// first epoch's checkpoint, and starts it again a second later with the same checkpoint
// directory and addresses. The workers retry its calls until it is back; the coordinator
// sees the new incarnation, rolls training back to the restored checkpoint and records the
// restart; the job finishes with every chunk counted exactly once per epoch, and its vectors
// score within a point of a fault-free run's (checkAccuracy).
func TestPSKilledAndRestarted(t *testing.T) {
	testPSRestart(t, false)
}

// TestPSKilledBeforeCheckpoint is the same with the kill early in the first epoch, before
// any checkpoint: the shard comes back empty, the coordinator configures it afresh, and
// training goes back to its start.
func TestPSKilledBeforeCheckpoint(t *testing.T) {
	testPSRestart(t, true)
}

func testPSRestart(t *testing.T, early bool) {
	if testing.Short() {
		t.Skip("fault injection on five processes; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := newCluster(t)
	j := startRecoveryJob(t, c, nil, nil)

	if early {
		waitTraining(t, ctx, j.status, 0.1)
	} else {
		// Well into the second epoch, so that polls after the checkpoint saw pushes.
		j.waitCheckpoint(t, ctx, 1)
		waitTraining(t, ctx, j.status, 0.6)
	}
	killed := kill(t, j.ps[1])
	time.Sleep(time.Second)
	restarted := c.start("ps-1-restarted", j.psArgs[1]...)

	if err := j.coord.wait(t, ctx); err != nil {
		t.Fatalf("coordinator failed after PS shard 1 was killed and restarted: %v", err)
	}
	end := time.Now()
	waitAll(t, ctx, append([]*proc{j.ps[0], restarted}, j.workers...)...)
	checkOutputs(t, j.out, recoveryEpochs)

	rec := readRecovery(t, j.out)
	if rec.ShardRestarts != 1 || len(rec.Events) != 1 {
		t.Fatalf("run.json recovery %+v; want one shard restart", rec)
	}
	ev := rec.Events[0]
	switch {
	case ev.Shard != 1 || ev.UpdatesLostEstimate == 0 || ev.ChunksRolledBack == 0:
		t.Errorf("restart event %+v; want shard 1, with updates lost and chunks rolled back",
			ev)
	case early && (ev.Restored || ev.RolledBackTo != 0):
		t.Errorf("restart event %+v; want the shard back empty and training from its start",
			ev)
	case !early && (!ev.Restored || ev.RestoredCheckpoint < 1 ||
		ev.RolledBackTo != ev.RestoredCheckpoint):
		t.Errorf("restart event %+v; want shard 1 restored from a checkpoint and training "+
			"rolled back to it", ev)
	}
	retried := false
	for _, w := range j.workers {
		out, _ := os.ReadFile(w.log)
		retried = retried || strings.Contains(string(out), "shard 1")
	}
	if !retried {
		t.Errorf("no worker log mentions retrying shard 1")
	}
	t.Logf("figures: job finished; restored %v, checkpoint %d; updates lost (estimate) %d; "+
		"chunks rolled back %d; leases dropped %d; kill to rollback %.1fs (coordinator's "+
		"recovery_seconds %.1f); kill to job end %.1fs; checkpoints %d", ev.Restored,
		ev.RestoredCheckpoint, ev.UpdatesLostEstimate, ev.ChunksRolledBack, ev.LeasesDropped,
		ev.At.Sub(killed).Seconds(), ev.RecoverySeconds, end.Sub(killed).Seconds(),
		rec.Checkpoints)
	checkAccuracy(t, ctx, recoveryJobFaultFree, j.out)
}

// TestCoordinatorKilledAndRestarted kills the coordinator with SIGKILL in the middle of
// training and starts it again with the same arguments (so the same output directory): it
// resumes from its saved state, the workers and shards carry on, and the job finishes with
// every chunk counted exactly once per epoch, and vectors within a point of a fault-free run's.
func TestCoordinatorKilledAndRestarted(t *testing.T) {
	if testing.Short() {
		t.Skip("fault injection on five processes; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := newCluster(t)
	j := startRecoveryJob(t, c, nil, nil)

	waitTraining(t, ctx, j.status, 0.4)
	killed := kill(t, j.coord)
	time.Sleep(500 * time.Millisecond)
	coord := c.start("coordinator-restarted", j.coordArgs...)
	waitTraining(t, ctx, j.status, 0)
	resumed := time.Now()

	if err := coord.wait(t, ctx); err != nil {
		t.Fatalf("restarted coordinator failed: %v", err)
	}
	end := time.Now()
	waitAll(t, ctx, append(append([]*proc{}, j.ps...), j.workers...)...)
	res := checkOutputs(t, j.out, recoveryEpochs)
	rec := readRecovery(t, j.out)
	if rec.CoordinatorResumes != 1 || rec.ShardRestarts != 0 {
		t.Errorf("run.json recovery %+v; want one resume and no shard restart", rec)
	}
	t.Logf("figures: job finished; exact counts (%d words x %d epochs in %d chunks each); "+
		"kill to training again %.1fs; kill to job end %.1fs; retries %+v",
		res.TrainWords, recoveryEpochs, res.Chunks, resumed.Sub(killed).Seconds(),
		end.Sub(killed).Seconds(), res.Retries)
	checkAccuracy(t, ctx, recoveryJobFaultFree, j.out)
}

// TestPSKilledForGood kills PS shard 1 after the first checkpoint and does not start it
// again. Workers give up after their --retry-for with an error naming the shard and the rows
// it owns, and the coordinator fails the job after its --shard-down-timeout, keeping its
// state; nothing hangs. Then the operator starts everything again with the same arguments:
// the job resumes from the shards' checkpoints and finishes with exact counts, and vectors
// within a point of a fault-free run's.
func TestPSKilledForGood(t *testing.T) {
	if testing.Short() {
		t.Skip("fault injection on five processes; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := newCluster(t)
	j := startRecoveryJob(t, c, []string{"--shard-down-timeout", "15s"},
		[]string{"--retry-for", "5s"})

	j.waitCheckpoint(t, ctx, 1)
	waitTraining(t, ctx, j.status, 0.4)
	killed := kill(t, j.ps[1])

	for _, w := range j.workers {
		err := w.wait(t, ctx)
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Errorf("%s exited with %v; want a failure", w.name, err)
		}
		out, _ := os.ReadFile(w.log)
		if !strings.Contains(string(out), "shard 1 at") || !strings.Contains(string(out), "owns") {
			t.Errorf("%s's output does not name shard 1 and the rows it owns:\n%s", w.name,
				tail(out, 1500))
		}
		t.Logf("%s: %s", w.name, lastLine(out, "gave up"))
	}
	workersOut := time.Now()
	err := j.coord.wait(t, ctx)
	coordOut := time.Now()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("coordinator exited with %v; want the job to fail", err)
	}
	out, _ := os.ReadFile(j.coord.log)
	if !strings.Contains(string(out), "PS shard 1 at") ||
		!strings.Contains(string(out), "has not answered for") {
		t.Errorf("the coordinator's output does not say shard 1 is gone:\n%s", tail(out, 1500))
	}
	t.Logf("coordinator: %s", lastLine(out, "has not answered for"))
	if err := j.ps[0].wait(t, ctx); err != nil {
		t.Errorf("ps-0 exited with %v after the job failed", err)
	}
	if _, err := os.Stat(filepath.Join(j.out, "vectors.bin")); err == nil {
		t.Error("a failed job wrote vectors.bin")
	}
	t.Logf("figures: job failed as it should; kill to last worker exit %.1fs; kill to "+
		"coordinator exit %.1fs (shard down timeout 15s, linger 2s)",
		workersOut.Sub(killed).Seconds(), coordOut.Sub(killed).Seconds())

	// Everything again, with the same arguments: the job resumes.
	again := []*proc{c.start("coordinator-again", j.coordArgs...)}
	for i, args := range j.psArgs {
		again = append(again, c.start(fmt.Sprintf("ps-%d-again", i), args...))
	}
	for _, w := range j.workers {
		again = append(again, c.start(w.name+"-again", w.cmd.Args[1:]...))
	}
	if err := again[0].wait(t, ctx); err != nil {
		t.Fatalf("resumed coordinator failed: %v", err)
	}
	waitAll(t, ctx, again[1:]...)
	checkOutputs(t, j.out, recoveryEpochs)
	rec := readRecovery(t, j.out)
	if rec.CoordinatorResumes != 1 || rec.ShardRestarts != 2 {
		t.Errorf("run.json recovery %+v; want one resume and both shards restarted", rec)
	}
	t.Logf("figures: resumed job finished; updates lost (estimate) %d; chunks rolled back "+
		"%d; restart events %+v", rec.UpdatesLostEstimate, rec.ChunksRolledBack, rec.Events)
	// --shard-down-timeout and --retry-for change nothing while every node answers, so the
	// fault-free run of the other recovery tests is this job's too.
	checkAccuracy(t, ctx, recoveryJobFaultFree, j.out)
}

// TestTrainKilledAndResumed kills an embedded `skipgrid train` with SIGKILL after its first
// checkpoint and continues it with `train --resume`: both shards come back from their
// checkpoints, the coordinator from its saved state, and the job finishes with every chunk
// counted exactly once per epoch, and vectors within a point of a fault-free train's.
func TestTrainKilledAndResumed(t *testing.T) {
	if testing.Short() {
		t.Skip("trains twice; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := newCluster(t)
	out := filepath.Join(t.TempDir(), "out")
	args := trainArgs()
	first := c.start("train", append([]string{"train", "--out", out}, args...)...)
	j := &recoveryJob{ckptDirs: []string{filepath.Join(out, ".checkpoints")}}
	j.waitCheckpoint(t, ctx, 0)
	time.Sleep(time.Second) // into the second epoch
	killed := kill(t, first)

	second := c.start("train-resumed", append([]string{"train", "--resume", out}, args...)...)
	if err := second.wait(t, ctx); err != nil {
		t.Fatalf("train --resume failed: %v", err)
	}
	end := time.Now()
	res := checkOutputs(t, out, recoveryEpochs)
	rec := readRecovery(t, out)
	if rec.CoordinatorResumes != 1 || rec.ShardRestarts != 2 {
		t.Errorf("run.json recovery %+v; want one resume and both shards restarted", rec)
	}
	for _, ev := range rec.Events {
		if !ev.Restored || ev.RolledBackTo != ev.RestoredCheckpoint {
			t.Errorf("restart event %+v; want the shard restored and training rolled back "+
				"to its checkpoint", ev)
		}
	}
	for _, dir := range []string{".state", ".checkpoints"} {
		if _, err := os.Stat(filepath.Join(out, dir)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left in the output directory of the finished job (%v)", dir, err)
		}
	}
	t.Logf("figures: job finished; exact counts (%d words x %d epochs); updates lost "+
		"(estimate) %d; chunks rolled back %d; kill to job end %.1fs", res.TrainWords,
		recoveryEpochs, rec.UpdatesLostEstimate, rec.ChunksRolledBack,
		end.Sub(killed).Seconds())
	checkAccuracy(t, ctx, trainJobFaultFree, out)
}

// trainArgs are the job arguments of the embedded `skipgrid train` that
// TestTrainKilledAndResumed kills and resumes.
func trainArgs() []string {
	return []string{"--corpus", "../data/enwiki-sample.txt.gz", "--epochs",
		fmt.Sprint(recoveryEpochs), "--chunk-bytes", "262144", "--progress", "off"}
}

// lastLine returns the last line of out that contains s.
func lastLine(out []byte, s string) string {
	lines := strings.Split(string(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], s) {
			return lines[i]
		}
	}
	return ""
}
