package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skipgrid/skipgrid/vectors"
)

var binary string // the skipgrid binary TestMain builds

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "skipgrid-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "skipgrid")
	build := exec.Command("go", "build", "-o", binary, "../cmd/skipgrid")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building skipgrid: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freeAddr returns a loopback address with a port the OS just handed out.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is one started node, its output kept in a file for failure reports.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan error
}

// cluster tracks the processes of one test and kills them all at cleanup.
type cluster struct {
	t *testing.T
	// logs holds the processes' output. It is made before the cleanup that prints the
	// output of a failed test is registered, so that it is removed after that runs.
	logs  string
	mu    sync.Mutex
	procs []*proc
}

func newCluster(t *testing.T) *cluster {
	c := &cluster{t: t, logs: t.TempDir()}
	t.Cleanup(func() {
		for _, p := range c.procs {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			for _, p := range c.procs {
				out, _ := os.ReadFile(p.log)
				t.Logf("--- %s output (last 3000 bytes):\n%s", p.name, tail(out, 3000))
			}
		}
	})
	return c
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// start runs the binary with args; its output goes to a log file in the test's temp dir.
func (c *cluster) start(name string, args ...string) *proc {
	c.t.Helper()
	logPath := filepath.Join(c.logs, name+".log")
	for n := 2; ; n++ { // a name started twice gets a second file
		if _, err := os.Stat(logPath); err != nil {
			break
		}
		logPath = filepath.Join(c.logs, fmt.Sprintf("%s.%d.log", name, n))
	}
	f, err := os.Create(logPath)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() {
		p.done <- cmd.Wait()
		f.Close()
	}()
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	return p
}

// wait returns the process's exit error, failing the test at the deadline.
func (p *proc) wait(t *testing.T, ctx context.Context) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // keep it for cleanup
		return err
	case <-ctx.Done():
		t.Fatalf("%s did not finish before the deadline", p.name)
		return nil
	}
}

// runResult is the part of run.json the tests read.
type runResult struct {
	VocabSize  int    `json:"vocab_size"`
	TrainWords uint64 `json:"train_words"`
	Chunks     int    `json:"chunks"`
	Epochs     []struct {
		Epoch  int     `json:"epoch"`
		Words  uint64  `json:"words"`
		Chunks int     `json:"chunks"`
		Loss   float64 `json:"loss"`
	} `json:"epochs"`
	Retries struct {
		LeasesExpired  uint64 `json:"leases_expired"`
		LeasesReleased uint64 `json:"leases_released"`
		LateCompletes  uint64 `json:"late_completes"`
	} `json:"retries"`
}

// TestMultiProcessCluster trains the Lee corpus with one coordinator, two PS shards and two
// workers, each its own process, meeting over gRPC and gossip on loopback.
func TestMultiProcessCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five processes; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	out := t.TempDir()
	c := newCluster(t)
	coordRPC, gossip := freeAddr(t), freeAddr(t)
	const epochs = 3
	coord := c.start("coordinator", "coordinator",
		"--corpus", "../data/lee_background.cor", "--out", out, "--ps", "2",
		"--epochs", fmt.Sprint(epochs), "--min-count", "2", "--chunk-bytes", "32768",
		"--grpc-addr", coordRPC, "--http-addr", freeAddr(t), "--gossip-addr", gossip,
		"--gossip-profile", "local", "--linger", "2s")
	for i := range 2 {
		c.start(fmt.Sprintf("ps-%d", i), "ps", "--shard", fmt.Sprint(i),
			"--grpc-addr", freeAddr(t), "--coordinator", coordRPC,
			"--gossip-addr", freeAddr(t), "--join", gossip, "--gossip-profile", "local")
	}
	for i := range 2 {
		c.start(fmt.Sprintf("worker-%d", i), "worker", "--name", fmt.Sprintf("worker-%d", i),
			"--coordinator", coordRPC, "--gossip-addr", freeAddr(t), "--join", gossip,
			"--gossip-profile", "local")
	}

	if err := coord.wait(t, ctx); err != nil {
		t.Fatalf("coordinator failed: %v", err)
	}
	for _, p := range c.procs[1:] {
		if err := p.wait(t, ctx); err != nil {
			t.Errorf("%s exited with %v", p.name, err)
		}
	}
	checkOutputs(t, out, epochs)
}

// checkOutputs verifies a finished job's directory: every chunk trained exactly once per
// epoch, the loss falling, and vectors that load, match the vocabulary and are finite.
func checkOutputs(t *testing.T, out string, epochs int) runResult {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(out, "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res runResult
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("run.json: %v", err)
	}
	if res.Chunks < 2 {
		t.Errorf("run.json: %d chunks; the test wants several to spread", res.Chunks)
	}
	if len(res.Epochs) != epochs {
		t.Fatalf("run.json: %d epochs, want %d", len(res.Epochs), epochs)
	}
	for _, e := range res.Epochs {
		if e.Words != res.TrainWords || e.Chunks != res.Chunks {
			t.Errorf("epoch %d: %d words in %d chunks, want exactly %d words in %d chunks",
				e.Epoch, e.Words, e.Chunks, res.TrainWords, res.Chunks)
		}
	}
	losses := make([]float64, len(res.Epochs))
	for i, e := range res.Epochs {
		losses[i] = e.Loss
	}
	t.Logf("loss per epoch: %.4f", losses)
	if first, last := res.Epochs[0].Loss, res.Epochs[epochs-1].Loss; !(last < first) {
		t.Errorf("loss did not fall: epoch 1 %v, epoch %d %v", first, epochs, last)
	}

	vocabTxt, err := os.ReadFile(filepath.Join(out, "vocab.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(vocabTxt), "\n"), "\n")
	v, err := vectors.ReadFile(filepath.Join(out, "vectors.bin"),
		vectors.ReadOptions{Format: vectors.FormatBinary})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Words) != res.VocabSize || len(lines) != res.VocabSize || v.Dim != 100 {
		t.Fatalf("vectors: %d words of dim %d; vocab.txt %d lines; run.json vocab %d",
			len(v.Words), v.Dim, len(lines), res.VocabSize)
	}
	for i, w := range v.Words {
		if word, _, _ := strings.Cut(lines[i], " "); word != w {
			t.Fatalf("row %d: vectors.bin has %q, vocab.txt %q", i, w, word)
		}
	}
	for i, x := range v.Data {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			t.Fatalf("value %d of vectors.bin is %v", i, x)
		}
	}
	return res
}
