package rpc

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseCertPEM(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

func TestWriteCertsContents(t *testing.T) {
	c := DefaultCertConfig()
	c.Dir = filepath.Join(t.TempDir(), "certs")
	c.Nodes = []string{"coordinator", "ps-0"}
	c.Hosts = []string{"127.0.0.1", "localhost", "::1", "ps-0"}
	c.Validity = 10 * 24 * time.Hour
	res, err := WriteCerts(c)
	if err != nil {
		t.Fatal(err)
	}

	// A new CA, then each node's key before its certificate.
	wantFiles := []string{"ca-key.pem", "ca.pem", "coordinator-key.pem", "coordinator.pem",
		"ps-0-key.pem", "ps-0.pem"}
	var gotFiles []string
	for _, f := range res.Files {
		gotFiles = append(gotFiles, filepath.Base(f))
	}
	if diff := cmp.Diff(wantFiles, gotFiles); diff != "" || res.CAReused {
		t.Errorf("files (-want +got):\n%s\nCA reused %v, want false", diff, res.CAReused)
	}

	// Nothing else in the directory (no temporary files); keys 0600, certificates 0644.
	entries, err := os.ReadDir(c.Dir)
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]os.FileMode{}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		modes[e.Name()] = info.Mode().Perm()
	}
	wantModes := map[string]os.FileMode{"ca-key.pem": 0o600, "ca.pem": 0o644,
		"coordinator-key.pem": 0o600, "coordinator.pem": 0o644, "ps-0-key.pem": 0o600,
		"ps-0.pem": 0o644}
	if diff := cmp.Diff(wantModes, modes); diff != "" {
		t.Errorf("directory (-want +got):\n%s", diff)
	}

	ca := readCert(t, filepath.Join(c.Dir, CACertFile))
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, node := range c.Nodes {
		certPath, _ := NodeCertFiles(c.Dir, node)
		checkNodeCert(t, readCert(t, certPath), node, roots, c)
	}
}

// checkNodeCert checks one node certificate against what WriteCerts promises.
func checkNodeCert(t *testing.T, cert *x509.Certificate, node string, roots *x509.CertPool,
	c CertConfig) {
	t.Helper()

	// The node name first, then the DNS hosts other than the node's own name.
	wantDNS := []string{node, "localhost"}
	if node != "ps-0" {
		wantDNS = append(wantDNS, "ps-0")
	}
	var gotIPs []string
	for _, ip := range cert.IPAddresses {
		gotIPs = append(gotIPs, ip.String())
	}
	got := []any{cert.Subject.CommonName, cert.DNSNames, gotIPs, cert.ExtKeyUsage}
	want := []any{node, wantDNS, []string{"127.0.0.1", "::1"},
		[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s: CN, DNS names, IPs, key usages (-want +got):\n%s", node, diff)
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("%s: public key %T, want ECDSA P-256", node, cert.PublicKey)
	}

	// Validity starts an hour back and runs c.Validity from issue; both ends come from
	// the same instant, so the span is exact.
	if span := cert.NotAfter.Sub(cert.NotBefore); span != c.Validity+time.Hour {
		t.Errorf("%s: valid for %v, want %v", node, span, c.Validity+time.Hour)
	}

	// Signed by the CA, for both roles, under every name and address.
	for _, name := range []string{node, "localhost", "127.0.0.1", "::1"} {
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth,
			x509.ExtKeyUsageClientAuth} {
			_, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: name,
				KeyUsages: []x509.ExtKeyUsage{usage}})
			if err != nil {
				t.Errorf("%s: verify as %q for usage %v: %v", node, name, usage, err)
			}
		}
	}
}

func TestWriteCertsReusesCA(t *testing.T) {
	c := DefaultCertConfig()
	c.Dir, c.Nodes, c.Validity = t.TempDir(), []string{"coordinator"}, 2*24*time.Hour
	if _, err := WriteCerts(c); err != nil {
		t.Fatal(err)
	}
	caPath := filepath.Join(c.Dir, CACertFile)
	before, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}

	// A later node, asked for longer than the CA lives: the CA is kept and bounds it.
	c.Nodes, c.Validity = []string{"worker-7"}, 30*24*time.Hour
	res, err := WriteCerts(c)
	if err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}
	if !res.CAReused || !bytes.Equal(before, after) || len(res.Files) != 2 {
		t.Fatalf("CA reused %v, ca.pem unchanged %v, %d files written; want true, true, 2",
			res.CAReused, bytes.Equal(before, after), len(res.Files))
	}
	ca := readCert(t, caPath)
	certPath, _ := NodeCertFiles(c.Dir, "worker-7")
	cert := readCert(t, certPath)
	if err := cert.CheckSignatureFrom(ca); err != nil {
		t.Errorf("worker-7 not signed by the existing CA: %v", err)
	}
	if !cert.NotAfter.Equal(ca.NotAfter) {
		t.Errorf("worker-7 ends %v, want the CA's end %v", cert.NotAfter, ca.NotAfter)
	}
}

func TestWriteCertsRefusesBrokenCA(t *testing.T) {
	setup := func(t *testing.T) CertConfig {
		c := DefaultCertConfig()
		c.Dir, c.Nodes = t.TempDir(), []string{"coordinator"}
		if _, err := WriteCerts(c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name  string
		spoil func(t *testing.T, dir string)
		want  error
	}{
		{"key missing", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, CAKeyFile)); err != nil {
				t.Fatal(err)
			}
		}, ErrPartialCA},
		{"certificate missing", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, CACertFile)); err != nil {
				t.Fatal(err)
			}
		}, ErrPartialCA},
		{"key of another certificate", func(t *testing.T, dir string) {
			_, key := NodeCertFiles(dir, "coordinator")
			if err := os.Rename(key, filepath.Join(dir, CAKeyFile)); err != nil {
				t.Fatal(err)
			}
		}, ErrBadCA},
		{"node certificate as CA", func(t *testing.T, dir string) {
			cert, key := NodeCertFiles(dir, "coordinator")
			if err := os.Rename(cert, filepath.Join(dir, CACertFile)); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(key, filepath.Join(dir, CAKeyFile)); err != nil {
				t.Fatal(err)
			}
		}, ErrBadCA},
		{"not PEM", func(t *testing.T, dir string) {
			err := os.WriteFile(filepath.Join(dir, CACertFile), []byte("junk"), 0o644)
			if err != nil {
				t.Fatal(err)
			}
		}, ErrBadCA},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := setup(t)
			tc.spoil(t, c.Dir)
			if _, err := WriteCerts(c); !errors.Is(err, tc.want) {
				t.Errorf("WriteCerts: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCertConfigValidate(t *testing.T) {
	ok := DefaultCertConfig()
	ok.Dir, ok.Nodes = "certs", []string{"coordinator", "ps-0", "worker-1.example"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}

	tests := []struct {
		name  string
		edit  func(*CertConfig)
		count int // problems expected
	}{
		{"no dir", func(c *CertConfig) { c.Dir = "" }, 1},
		{"no nodes", func(c *CertConfig) { c.Nodes = nil }, 1},
		{"underscore, leading dash, empty, trailing dot", func(c *CertConfig) {
			c.Nodes = []string{"ps_0", "-x", "", "a."}
		}, 4},
		{"CA's names", func(c *CertConfig) { c.Nodes = []string{"ca", "ca-key"} }, 2},
		{"duplicate", func(c *CertConfig) { c.Nodes = []string{"ps-0", "ps-0"} }, 1},
		{"path in name", func(c *CertConfig) { c.Nodes = []string{"../x"} }, 1},
		{"bad host", func(c *CertConfig) { c.Hosts = []string{"a b", "10.0.0.1"} }, 1},
		{"short validity", func(c *CertConfig) { c.Validity = time.Hour }, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			c.Nodes = slices.Clone(ok.Nodes)
			tc.edit(&c)
			err := c.Validate()
			if !errors.Is(err, ErrInvalidCertConfig) {
				t.Fatalf("Validate: %v, want ErrInvalidCertConfig", err)
			}
			if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != tc.count {
				t.Errorf("Validate: %d problems (%v), want %d", n, err, tc.count)
			}
		})
	}
}

// TestNodeSecurityWorksWithWrittenCerts checks that the files WriteCerts writes load as
// Security material on both sides.
func TestNodeSecurityWorksWithWrittenCerts(t *testing.T) {
	dir := writeTestCerts(t, "coordinator")
	sec := NodeSecurity(dir, "coordinator")
	if _, err := sec.ServerOptions(); err != nil {
		t.Errorf("ServerOptions: %v", err)
	}
	if _, err := sec.DialOptions(""); err != nil {
		t.Errorf("DialOptions: %v", err)
	}
}
