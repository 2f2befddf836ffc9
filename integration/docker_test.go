package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The container tests run docker-compose.yml as it ships: the FROM-scratch image built from
// deploy/Dockerfile and the binary TestMain built, one coordinator, two PS shards and three
// workers on the compose project's private network. Each test has its own project name,
// image tag and output folder, and takes everything down in its cleanup.

// requireDocker skips the test under -short, or when no Docker daemon or no compose
// answers, and returns the compose command (docker-compose v1, or docker compose v2).
func requireDocker(t *testing.T) []string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a Docker cluster; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info").CombinedOutput(); err != nil {
		t.Skipf("docker info does not answer, so the container tests are skipped: %v\n%s",
			err, tail(out, 300))
	}
	if h := os.Getenv("DOCKER_HOST"); h != "" && !strings.HasPrefix(h, "unix://") {
		t.Skipf("DOCKER_HOST=%s: the tests bind-mount local folders and need a local daemon", h)
	}
	if err := exec.CommandContext(ctx, "docker-compose", "version").Run(); err == nil {
		return []string{"docker-compose"}
	}
	if err := exec.CommandContext(ctx, "docker", "compose", "version").Run(); err == nil {
		return []string{"docker", "compose"}
	}
	t.Skip("neither docker-compose nor docker compose is installed")
	return nil
}

// composeCluster is one compose project started by a test.
type composeCluster struct {
	t       *testing.T
	compose []string
	project string
	env     []string
	// out is the host folder mounted as the coordinator's output.
	out string
	// statusURL is the coordinator's /status on the published port.
	statusURL string
	// overrides are compose files applied over the root one, in order.
	overrides []string
}

// randomSuffix returns 8 hex digits, for names no other run uses.
func randomSuffix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// buildImage builds deploy/Dockerfile around the test binary under a tag of its own, in a
// context folder that holds nothing else, and removes the image at cleanup.
func buildImage(t *testing.T, ctx context.Context) string {
	t.Helper()
	dir := t.TempDir()
	dockerfile, err := os.ReadFile("../deploy/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), dockerfile, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "skipgrid"), bin, 0o755); err != nil {
		t.Fatal(err)
	}

	tag := "skipgrid:test-" + randomSuffix(t)
	if out, err := exec.CommandContext(ctx, "docker", "build", "-q", "-t", tag,
		dir).CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		_ = exec.Command("docker", "rmi", "-f", tag).Run()
	})
	return tag
}

// startCompose brings the compose file, with any override files over it, up with settings
// (SKIPGRID_* job settings) and registers its teardown, logs included when the test failed.
func startCompose(t *testing.T, ctx context.Context, compose []string,
	settings map[string]string, overrides ...string) *composeCluster {
	t.Helper()
	image := buildImage(t, ctx)
	c := &composeCluster{t: t, compose: compose, project: "sgtest" + randomSuffix(t),
		out: t.TempDir(), overrides: overrides}
	data, err := filepath.Abs("../data")
	if err != nil {
		t.Fatal(err)
	}
	_, port, err := net.SplitHostPort(freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	c.statusURL = "http://127.0.0.1:" + port + "/status"

	// The nodes run as the test's user, or as 65532 with a world-writable output folder
	// when the test runs as root (the image's user; root is not needed in a container).
	uid, gid := os.Getuid(), os.Getgid()
	if uid == 0 {
		uid, gid = 65532, 65532
		if err := os.Chmod(c.out, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SKIPGRID_") && !strings.HasPrefix(kv, "SG_") {
			c.env = append(c.env, kv) // the host's own settings stay out of the test
		}
	}
	c.env = append(c.env, "SG_IMAGE="+image, "SG_DATA="+data, "SG_OUT="+c.out,
		"SG_HTTP_PORT="+port, fmt.Sprintf("SG_UID=%d", uid), fmt.Sprintf("SG_GID=%d", gid))
	for k, v := range settings {
		c.env = append(c.env, k+"="+v)
	}

	t.Cleanup(c.down)
	if _, err := c.run(ctx, "up", "-d", "--no-build"); err != nil {
		t.Fatal(err)
	}
	return c
}

// run runs a compose subcommand on the project and returns its standard output; the error
// carries its standard error. (Compose v1 writes a warning there for each Swarm-only key.)
func (c *composeCluster) run(ctx context.Context, args ...string) ([]byte, error) {
	full := append(append([]string{}, c.compose[1:]...), "-f", composePath)
	for _, f := range c.overrides {
		full = append(full, "-f", f)
	}
	full = append(full, "-p", c.project)
	cmd := exec.CommandContext(ctx, c.compose[0], append(full, args...)...)
	cmd.Env = c.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w\n%s", c.compose[0], strings.Join(args, " "), err,
			tail(stderr.Bytes(), 2000))
	}
	return out, nil
}

// down logs the nodes' output when the test failed, then removes the project's
// containers, network and volumes whatever happened.
func (c *composeCluster) down() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if c.t.Failed() {
		c.logServices(ctx)
	}
	if _, err := c.run(ctx, "down", "-v", "--remove-orphans", "--timeout", "5"); err != nil {
		c.t.Error(err)
	}
}

// logServices logs the end of every service's output, each on its own, so that the
// coordinator's and the shards' lines are there however much the workers wrote.
func (c *composeCluster) logServices(ctx context.Context) {
	out, err := c.run(ctx, "config", "--services")
	if err != nil {
		c.t.Logf("--- compose services: %v", err)
		return
	}
	for _, service := range strings.Fields(string(out)) {
		out, err := c.run(ctx, "logs", "--no-color", "--tail", "40", service)
		c.t.Logf("--- %s logs (last 4000 bytes; %v):\n%s", service, err, tail(out, 4000))
	}
}

// container returns the id of a service's container.
func (c *composeCluster) container(ctx context.Context, service string) string {
	c.t.Helper()
	out, err := c.run(ctx, "ps", "-q", service)
	id := strings.TrimSpace(string(out))
	if err != nil || id == "" || strings.ContainsAny(id, " \n") {
		c.t.Fatalf("compose ps -q %s: %q, %v", service, out, err)
	}
	return id
}

// waitExit waits for a service's container to stop and returns its exit code, failing the
// test at ctx's deadline.
func (c *composeCluster) waitExit(ctx context.Context, service string) int {
	c.t.Helper()
	id := c.container(ctx, service)
	out, err := exec.CommandContext(ctx, "docker", "wait", id).CombinedOutput()
	if err != nil {
		c.t.Fatalf("docker wait %s (%v): %v\n%s", service, ctx.Err(), err, out)
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		c.t.Fatalf("docker wait %s: %q", service, out)
	}
	return code
}

// status is the part of the coordinator's /status the tests read.
type status struct {
	Phase    string  `json:"phase"`
	Fraction float64 `json:"fraction"`
	Workers  []struct {
		Name   string            `json:"name"`
		Leases []json.RawMessage `json:"leases"`
	} `json:"workers"`
}

// pollStatus fetches /status until ready says yes, and returns that status; it fails the
// test at ctx's deadline or when the job ended first.
func (c *composeCluster) pollStatus(ctx context.Context, ready func(status) bool) status {
	c.t.Helper()
	var last status
	for {
		if st, err := c.fetchStatus(ctx); err == nil {
			last = st
			if ready(st) {
				return st
			}
			if st.Phase == "done" || st.Phase == "failed" {
				c.t.Fatalf("the job ended (%s) before the awaited moment", st.Phase)
			}
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("deadline passed waiting on /status; last: %+v", last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *composeCluster) fetchStatus(ctx context.Context) (status, error) {
	var st status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.statusURL, nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return st, err
	}
	return st, json.Unmarshal(buf.Bytes(), &st)
}

// dockerSettings is a short job on the Lee corpus: 299 lines in 11 chunks of 32 KiB.
func dockerSettings(epochs int) map[string]string {
	return map[string]string{
		"SKIPGRID_CORPUS":      "/data/lee_background.cor",
		"SKIPGRID_EPOCHS":      strconv.Itoa(epochs),
		"SKIPGRID_MIN_COUNT":   "2",
		"SKIPGRID_CHUNK_BYTES": "32768",
	}
}

// TestDockerCompose trains the Lee corpus on the compose cluster and checks the outputs
// the coordinator wrote through the bind mount: every epoch trained every chunk and word
// exactly once, the loss fell, and vectors.bin loads and matches vocab.txt.
func TestDockerCompose(t *testing.T) {
	compose := requireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const epochs = 3
	start := time.Now()
	c := startCompose(t, ctx, compose, dockerSettings(epochs))
	if code := c.waitExit(ctx, "coordinator"); code != 0 {
		t.Fatalf("coordinator exited with %d", code)
	}
	res := checkOutputs(t, c.out, epochs)
	t.Logf("trained %d epochs of %d words in %d chunks; cluster up to coordinator exit %v; %s",
		epochs, res.TrainWords, res.Chunks, time.Since(start).Round(time.Millisecond),
		phaseTimes(t, c.out))
}

// phaseTimes returns the job's phase durations and speed from run.json, for the log.
func phaseTimes(t *testing.T, out string) string {
	t.Helper()
	var run struct {
		PhaseSeconds     map[string]float64 `json:"phase_seconds"`
		TrainWordsPerSec float64            `json:"train_words_per_sec"`
	}
	raw, err := os.ReadFile(filepath.Join(out, "run.json"))
	if err == nil {
		err = json.Unmarshal(raw, &run)
	}
	if err != nil {
		return fmt.Sprintf("run.json: %v", err)
	}
	return fmt.Sprintf("phase seconds %v, %.0f words/s", run.PhaseSeconds,
		run.TrainWordsPerSec)
}

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

// workerKilledEpochs is the length of TestDockerComposeWorkerKilled's job.
const workerKilledEpochs = 12

// workerKilledSettings is the job of TestDockerComposeWorkerKilled: enough epochs that
// training outlasts the kill and its detection by gossip, and a short lease as the fallback
// should gossip miss the death.
func workerKilledSettings() map[string]string {
	settings := dockerSettings(workerKilledEpochs)
	settings["SKIPGRID_LEASE_TIMEOUT"] = "10s"
	return settings
}

// TestDockerComposeWorkerKilled kills (SIGKILL) a worker container that holds a lease in
// the middle of training and checks that the job still finishes with exact per-epoch
// counts: the dead worker's chunks go back to the pool and count once.
func TestDockerComposeWorkerKilled(t *testing.T) {
	compose := requireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const epochs = workerKilledEpochs
	settings := workerKilledSettings()
	c := startCompose(t, ctx, compose, settings)

	var victim string
	st := c.pollStatus(ctx, func(st status) bool {
		if st.Phase != "training" || st.Fraction <= 0 || st.Fraction > 0.5 {
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
	if out, err := exec.CommandContext(ctx, "docker", "kill", id).CombinedOutput(); err != nil {
		t.Fatalf("docker kill %s: %v\n%s", victim, err, out)
	}
	t.Logf("killed %s at %.1f%% of training", victim, 100*st.Fraction)

	if code := c.waitExit(ctx, "coordinator"); code != 0 {
		t.Fatalf("coordinator exited with %d", code)
	}
	res := checkOutputs(t, c.out, epochs)
	inspect, _ := exec.CommandContext(ctx, "docker", "inspect", "-f",
		"restarts={{.RestartCount}} exit={{.State.ExitCode}}", id).Output()
	t.Logf("retries: %+v; killed container: %s; %s", res.Retries,
		strings.TrimSpace(string(inspect)), phaseTimes(t, c.out))
	checkAccuracy(t, ctx, composeFaultFree(compose, settings), c.out)
}
