package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// classifyData holds the labelled sets, beside the repository.
const classifyData = "../../shared/data/classify"

// finetuneAccuracy runs `skipgrid finetune` from random rows on TREC with the given transport
// and seed, 2 workers and 2 shards unless more flags (which come last) say otherwise, and
// returns the test accuracy it reports.
func finetuneAccuracy(t *testing.T, ctx context.Context, transport string, seed int,
	more ...string) float64 {
	t.Helper()
	out := t.TempDir()
	args := []string{"finetune", "--random-init",
		"--train", filepath.Join(classifyData, "trec.train.txt"),
		"--test", filepath.Join(classifyData, "trec.test.txt"),
		"--out", out, "--transport", transport, "--seed", fmt.Sprint(seed),
		"--workers", "2", "--ps", "2", "--json", "--log-level", "warn"}
	stdout, err := exec.CommandContext(ctx, binary, append(args, more...)...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("finetune over %s, seed %d: %v\n%s", transport, seed, err, tail(stderr, 3000))
	}
	var res struct {
		Report struct {
			Accuracy float64 `json:"accuracy"`
			Examples int     `json:"examples"`
		} `json:"report"`
	}
	if err := json.Unmarshal(stdout, &res); err != nil {
		t.Fatalf("finetune --json output: %v\n%s", err, stdout)
	}
	if res.Report.Examples != 500 {
		t.Fatalf("scored %d test examples, want TREC's 500", res.Report.Examples)
	}

	var run struct {
		Epochs []struct {
			Words  uint64 `json:"words"`
			Chunks int    `json:"chunks"`
		} `json:"epochs"`
		Chunks int `json:"chunks"`
	}
	raw, err := os.ReadFile(filepath.Join(out, "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &run); err != nil {
		t.Fatal(err)
	}
	for i, e := range run.Epochs {
		if e.Words != 5452 || e.Chunks != run.Chunks {
			t.Errorf("%s seed %d epoch %d: %d examples in %d chunks, want 5452 in %d",
				transport, seed, i, e.Words, e.Chunks, run.Chunks)
		}
	}
	return res.Report.Accuracy
}

// TestFinetuneTransportsAgree fine-tunes TREC on the embedded cluster in memory and over
// gRPC on loopback (2 workers, 2 shards, asynchronous pushes), three seeds each: the mean
// test accuracies must agree within one point.
func TestFinetuneTransportsAgree(t *testing.T) {
	if testing.Short() {
		t.Skip("trains six classifiers; skipped with -short")
	}
	if _, err := os.Stat(filepath.Join(classifyData, "trec.train.txt")); err != nil {
		t.Skipf("TREC is not there: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	mean := map[string]float64{}
	for _, transport := range []string{"inmem", "grpc"} {
		for seed := 1; seed <= 3; seed++ {
			mean[transport] += finetuneAccuracy(t, ctx, transport, seed) / 3
		}
	}
	t.Logf("TREC accuracy, mean of 3 seeds: in memory %.4f, gRPC %.4f", mean["inmem"],
		mean["grpc"])
	if d := math.Abs(mean["inmem"] - mean["grpc"]); d > 0.01 {
		t.Errorf("accuracy in memory %.4f and over gRPC %.4f differ by %.4f, more than a point",
			mean["inmem"], mean["grpc"], d)
	}
	if mean["inmem"] < 0.75 {
		t.Errorf("accuracy in memory %.4f; a random-init TREC classifier reaches about 0.83",
			mean["inmem"])
	}
}
