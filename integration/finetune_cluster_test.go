package integration

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestFinetuneMultiProcess fine-tunes TREC from random rows on a coordinator, one PS shard
// and one worker, each its own process: the same roles as pretraining run the supervised
// phase, every example is counted once per epoch, and the model's test accuracy is within a
// point of the embedded cluster's with the same seed, shards and workers.
func TestFinetuneMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes; skipped with -short")
	}
	train := filepath.Join(classifyData, "trec.train.txt")
	if _, err := os.Stat(train); err != nil {
		t.Skipf("TREC not found beside the repository (%v)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	out := t.TempDir()
	c := newCluster(t)
	coordRPC, gossip := freeAddr(t), freeAddr(t)
	coord := c.start("coordinator", "coordinator", "--train", train, "--random-init",
		"--epochs", "5", "--seed", "1", "--out", out, "--ps", "1", "--grpc-addr", coordRPC,
		"--http-addr", freeAddr(t), "--gossip-addr", gossip, "--gossip-profile", "local",
		"--linger", "1s")
	c.start("ps-0", "ps", "--shard", "0", "--grpc-addr", freeAddr(t), "--coordinator",
		coordRPC, "--gossip-addr", freeAddr(t), "--join", gossip, "--gossip-profile", "local")
	c.start("worker-0", "worker", "--name", "worker-0", "--coordinator", coordRPC,
		"--gossip-addr", freeAddr(t), "--join", gossip, "--gossip-profile", "local")
	if err := coord.wait(t, ctx); err != nil {
		t.Fatalf("coordinator failed: %v", err)
	}

	raw, err := os.ReadFile(filepath.Join(out, "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Epochs []struct {
			Words uint64 `json:"words"`
		} `json:"epochs"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	// trec.train.txt holds 5,452 labelled questions.
	if len(res.Epochs) != 5 {
		t.Errorf("%d epochs in run.json, want 5", len(res.Epochs))
	}
	for i, e := range res.Epochs {
		if e.Words != 5452 {
			t.Errorf("epoch %d: %d examples, want 5452", i, e.Words)
		}
	}
	for _, f := range []string{"model.json", "classifier.bin", "vectors.bin"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("model file missing: %v", err)
		}
	}

	got := classifyAccuracy(t, ctx, out, filepath.Join(classifyData, "trec.test.txt"))
	want := finetuneAccuracy(t, ctx, "inmem", 1, "--epochs", "5", "--workers", "1",
		"--ps", "1")
	t.Logf("TREC accuracy: processes %.4f, embedded in memory %.4f", got, want)
	if math.Abs(got-want) > 0.01 {
		t.Errorf("accuracy of the process cluster %.4f and of the embedded one %.4f differ "+
			"by more than a point", got, want)
	}
}
