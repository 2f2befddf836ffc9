package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Tokens of the security tests: 24 bytes each, above the 16-byte minimum.
const (
	clusterToken = "integration-token-0123456"
	wrongToken   = "integration-token-6543210"
)

// requireSecurityFlags skips the test unless every role command lists the security flags.
func requireSecurityFlags(t *testing.T) {
	t.Helper()
	for _, role := range []string{"coordinator", "ps", "worker"} {
		help, err := exec.Command(binary, role, "--help").Output()
		if err != nil {
			t.Fatalf("%s --help: %v", role, err)
		}
		for _, flag := range []string{"token", "allow-plaintext-token", "tls-ca", "tls-cert",
			"tls-key"} {
			if !regexp.MustCompile(`(?m)^\s+--` + flag + `\s`).Match(help) {
				t.Skipf("skipgrid %s has no --%s flag yet: the role commands must call "+
					"addSecurityFlags and use grpcSecurity", role, flag)
			}
		}
	}
}

// writeCerts runs `skipgrid certs` for nodes into a new directory.
func writeCerts(t *testing.T, nodes ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs")
	out, err := exec.Command(binary, "certs", "--out", dir,
		"--nodes", strings.Join(nodes, ",")).CombinedOutput()
	if err != nil {
		t.Fatalf("skipgrid certs: %v\n%s", err, out)
	}
	return dir
}

// tlsFlags are the flags giving node its files from a certs directory.
func tlsFlags(dir, node string) []string {
	return []string{"--tls-ca", filepath.Join(dir, "ca.pem"),
		"--tls-cert", filepath.Join(dir, node+".pem"),
		"--tls-key", filepath.Join(dir, node+"-key.pem")}
}

// waitLog waits until p's output holds every one of wants on one line, failing the test at
// ctx's deadline.
func (p *proc) waitLog(t *testing.T, ctx context.Context, wants ...string) {
	t.Helper()
	for {
		out, _ := os.ReadFile(p.log)
		for line := range strings.SplitSeq(string(out), "\n") {
			found := true
			for _, w := range wants {
				found = found && strings.Contains(line, w)
			}
			if found {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never logged a line with %q", p.name, wants)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startLoneCoordinator starts a coordinator that waits for one shard which never comes, so
// that it stays up for a refused worker; extra are its security flags.
func startLoneCoordinator(t *testing.T, c *cluster, extra ...string) (*proc, string) {
	t.Helper()
	addr := freeAddr(t)
	args := append([]string{"coordinator", "--corpus", "../data/lee_background.cor",
		"--out", t.TempDir(), "--ps", "1", "--grpc-addr", addr, "--http-addr", "",
		"--gossip-addr", freeAddr(t), "--gossip-profile", "local"}, extra...)
	return c.start("coordinator", args...), addr
}

// TestWrongTokenRefused checks that a worker with the wrong cluster token is refused at
// once, says so, and that the coordinator logs the refusal with the reason.
func TestWrongTokenRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes; skipped with -short")
	}
	requireSecurityFlags(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	c := newCluster(t)
	coord, addr := startLoneCoordinator(t, c, "--token", clusterToken,
		"--allow-plaintext-token")
	w := c.start("worker", "worker", "--name", "worker-0", "--coordinator", addr,
		"--gossip-addr", freeAddr(t), "--gossip-profile", "local", "--retry-for", "30s",
		"--allow-plaintext-token", "--token", wrongToken)

	// Unauthenticated is not worth retrying: the worker gives up well inside --retry-for.
	if err := w.wait(t, ctx); err == nil {
		t.Fatal("worker with the wrong token exited successfully")
	}
	w.waitLog(t, ctx, "Unauthenticated", "wrong cluster token")
	coord.waitLog(t, ctx, `msg="grpc call refused"`, "peer=127.0.0.1:",
		`reason="wrong cluster token"`)
}

// TestForeignCertificateRefused checks that a worker whose certificate another CA signed
// cannot reach a TLS coordinator, and that the coordinator logs why.
func TestForeignCertificateRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes; skipped with -short")
	}
	requireSecurityFlags(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	certs := writeCerts(t, "coordinator")
	foreign := writeCerts(t, "worker-0")

	c := newCluster(t)
	coord, addr := startLoneCoordinator(t, c, tlsFlags(certs, "coordinator")...)
	args := append([]string{"worker", "--name", "worker-0", "--coordinator", addr,
		"--gossip-addr", freeAddr(t), "--gossip-profile", "local", "--retry-for", "3s",
		"--tls-ca", filepath.Join(certs, "ca.pem")},
		tlsFlags(foreign, "worker-0")[2:]...)
	w := c.start("worker", args...)

	// A refused handshake looks like an unreachable peer: the worker retries it until
	// --retry-for runs out.
	if err := w.wait(t, ctx); err == nil {
		t.Fatal("worker with a foreign certificate exited successfully")
	}
	w.waitLog(t, ctx, "register with coordinator", "gave up")
	coord.waitLog(t, ctx, `msg="grpc connection refused"`, "peer=127.0.0.1:",
		"certificate signed by unknown authority")
}

// TestSecureCluster trains with TLS and a token on every node: a coordinator, one shard and
// one worker, with connections both ways (shard and worker to coordinator, coordinator and
// worker to shard).
func TestSecureCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes; skipped with -short")
	}
	requireSecurityFlags(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	certs := writeCerts(t, "coordinator", "ps-0", "worker-0")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(clusterToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secure := func(node string) []string {
		return append(tlsFlags(certs, node), "--token-file", tokenFile)
	}

	out := t.TempDir()
	c := newCluster(t)
	coordRPC, gossip := freeAddr(t), freeAddr(t)
	const epochs = 2
	coord := c.start("coordinator", append([]string{"coordinator",
		"--corpus", "../data/lee_background.cor", "--out", out, "--ps", "1",
		"--epochs", fmt.Sprint(epochs), "--min-count", "2", "--chunk-bytes", "32768",
		"--grpc-addr", coordRPC, "--http-addr", "", "--gossip-addr", gossip,
		"--gossip-profile", "local", "--linger", "2s"}, secure("coordinator")...)...)
	c.start("ps-0", append([]string{"ps", "--shard", "0", "--grpc-addr", freeAddr(t),
		"--coordinator", coordRPC, "--gossip-addr", freeAddr(t), "--join", gossip,
		"--gossip-profile", "local"}, secure("ps-0")...)...)
	c.start("worker-0", append([]string{"worker", "--name", "worker-0",
		"--coordinator", coordRPC, "--gossip-addr", freeAddr(t), "--join", gossip,
		"--gossip-profile", "local"}, secure("worker-0")...)...)

	if err := coord.wait(t, ctx); err != nil {
		t.Fatalf("coordinator failed: %v", err)
	}
	for _, p := range c.procs[1:] {
		if err := p.wait(t, ctx); err != nil {
			t.Errorf("%s exited with %v", p.name, err)
		}
	}
	checkOutputs(t, out, epochs)
	for _, p := range c.procs {
		log, _ := os.ReadFile(p.log)
		for line := range strings.SplitSeq(string(log), "\n") {
			if strings.Contains(line, `msg="grpc call refused"`) ||
				strings.Contains(line, `msg="grpc connection refused"`) &&
					strings.Contains(line, "certificate") {
				t.Errorf("%s refused a peer with the right credentials: %s", p.name, line)
			}
		}
	}
}
