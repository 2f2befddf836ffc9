package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// ackedLine and totalsLine are the log lines a worker writes per shard at exit and a PS
// writes at exit: the updates acknowledged to the worker and those the shard applied.
var (
	ackedLine = regexp.MustCompile(
		`msg="pushes acknowledged by shard" .*\bshard=(\d+) pushes=(\d+) rows=(\d+)`)
	totalsLine = regexp.MustCompile(
		`msg="shard totals" .*\bpushes_applied=(\d+) rows_applied=(\d+)`)
)

// failoverRecord is run.json's recovery part, with the failover fields.
type failoverRecord struct {
	Failovers        int `json:"failovers"`
	ShardRestarts    int `json:"shard_restarts"`
	ChunksRolledBack int `json:"chunks_rolled_back"`
	Events           []struct {
		Shard                 int     `json:"shard"`
		Failover              bool    `json:"failover"`
		FailoverFrom          string  `json:"failover_from"`
		FailoverTo            string  `json:"failover_to"`
		PrimaryPushesLastPoll uint64  `json:"primary_pushes_last_poll"`
		BackupPushes          uint64  `json:"backup_pushes"`
		RecoverySeconds       float64 `json:"recovery_seconds"`
	} `json:"events"`
}

func readFailovers(t *testing.T, out string) failoverRecord {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(out, "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Recovery failoverRecord `json:"recovery"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("run.json: %v", err)
	}
	return r.Recovery
}

// acked sums, by shard, the rows the shards acknowledged to the workers whose logs are given.
func acked(t *testing.T, logs ...string) map[int]uint64 {
	t.Helper()
	sum := make(map[int]uint64)
	for _, path := range logs {
		out, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		addAcked(t, path, out, sum)
	}
	return sum
}

// addAcked adds the acknowledged rows that one worker's output (from where) logs to sum.
func addAcked(t *testing.T, where string, out []byte, sum map[int]uint64) {
	t.Helper()
	m := ackedLine.FindAllSubmatch(out, -1)
	if len(m) == 0 {
		t.Fatalf("%s logs no acknowledged pushes:\n%s", where, tail(out, 1500))
	}
	for _, g := range m {
		s, _ := strconv.Atoi(string(g[1]))
		rows, _ := strconv.ParseUint(string(g[3]), 10, 64)
		sum[s] += rows
	}
}

// applied returns the rows the PS whose log is path applied, from its exit line.
func applied(t *testing.T, path string) uint64 {
	t.Helper()
	out, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return appliedIn(t, path, out)
}

// appliedIn returns the rows a PS applied, from its output's exit line.
func appliedIn(t *testing.T, where string, out []byte) uint64 {
	t.Helper()
	m := totalsLine.FindSubmatch(out)
	if m == nil {
		t.Fatalf("%s logs no shard totals:\n%s", where, tail(out, 1500))
	}
	rows, _ := strconv.ParseUint(string(m[2]), 10, 64)
	return rows
}

// TestPSKilledForGoodWithReplicas is fault 3: two shards with two copies each (four PS
// processes), two workers. The primary of shard 1 is killed with SIGKILL mid-training and
// never comes back. Its backup takes over, workers follow it, and the job finishes with
// every chunk counted once per epoch, no progress rolled back, and no update lost: the rows
// each surviving copy applied equal, to the row, the rows the shards acknowledged to the
// workers. Its analogy accuracy is within a point of the fault-free job's.
func TestPSKilledForGoodWithReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("fault injection on seven processes; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := newCluster(t)
	out, status := t.TempDir(), freeAddr(t)
	coordRPC, gossip := freeAddr(t), freeAddr(t)
	coord := c.start("coordinator", "coordinator",
		"--corpus", "../data/enwiki-sample.txt.gz", "--out", out, "--ps", "2",
		"--replicas", "2", "--failover-after", "2s", "--shard-down-timeout", "60s",
		"--epochs", fmt.Sprint(recoveryEpochs), "--chunk-bytes", "262144",
		"--lease-timeout", "5s", "--grpc-addr", coordRPC, "--http-addr", status,
		"--gossip-addr", gossip, "--gossip-profile", "local", "--linger", "2s")
	copies := make(map[string]*proc)
	for s := range 2 {
		for r := range 2 {
			name := fmt.Sprintf("ps-%d-r%d", s, r)
			copies[name] = c.start(name, "ps", "--shard", fmt.Sprint(s),
				"--replica", fmt.Sprint(r), "--name", name, "--grpc-addr", freeAddr(t),
				"--coordinator", coordRPC, "--gossip-addr", freeAddr(t), "--join", gossip,
				"--gossip-profile", "local")
		}
	}
	var workers []*proc
	for i := range 2 {
		name := fmt.Sprintf("worker-%d", i)
		workers = append(workers, c.start(name, "worker", "--name", name,
			"--coordinator", coordRPC, "--gossip-addr", freeAddr(t), "--join", gossip,
			"--gossip-profile", "local", "--retry-for", "60s"))
	}

	waitTraining(t, ctx, status, 0.4)
	killed := kill(t, copies["ps-1-r0"])

	if err := coord.wait(t, ctx); err != nil {
		t.Fatalf("coordinator: %v", err)
	}
	end := time.Now()
	waitAll(t, ctx, workers...)
	for name, p := range copies {
		if name != "ps-1-r0" {
			waitAll(t, ctx, p)
		}
	}
	res := checkOutputs(t, out, recoveryEpochs)

	rec := readFailovers(t, out)
	if rec.Failovers != 1 || rec.ShardRestarts != 0 || rec.ChunksRolledBack != 0 ||
		len(rec.Events) != 1 || !rec.Events[0].Failover || rec.Events[0].Shard != 1 {
		t.Fatalf("run.json recovery %+v; want one failover of shard 1 and nothing rolled "+
			"back", rec)
	}

	// Updates lost: what the workers were told is applied against what the copies hold.
	ack := acked(t, workers[0].log, workers[1].log)
	for s, survivor := range []string{"ps-0-r0", "ps-1-r1"} {
		got := applied(t, copies[survivor].log)
		if got != ack[s] {
			t.Errorf("shard %d: %s applied %d rows, the workers were acknowledged %d: "+
				"%d updates lost", s, survivor, got, ack[s], int64(ack[s])-int64(got))
		}
	}
	if backup0 := applied(t, copies["ps-0-r1"].log); backup0 != ack[0] {
		t.Errorf("shard 0's backup applied %d rows, its primary acknowledged %d", backup0,
			ack[0])
	}
	// The fault-free run of the recovery job trains the same corpus, epochs, chunks, shards,
	// workers and seed: replicas change where copies of rows live, not what is trained.
	checkAccuracy(t, ctx, recoveryJobFaultFree, out)
	t.Logf("figures: replicas fault: job finished; %d chunks x %d epochs counted exactly "+
		"once; failover %.1fs after the primary's first missed poll (kill to job end "+
		"%.1fs); rows acknowledged shard 0 %d, shard 1 %d; rows the surviving copies "+
		"applied equal them: updates lost 0; primary pushes at its last poll %d, backup "+
		"pushes then %d", res.Chunks, recoveryEpochs, rec.Events[0].RecoverySeconds,
		end.Sub(killed).Seconds(), ack[0], ack[1], rec.Events[0].PrimaryPushesLastPoll,
		rec.Events[0].BackupPushes)
}
