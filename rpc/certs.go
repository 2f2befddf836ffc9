package rpc

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Errors of WriteCerts; test for them with errors.Is.
var (
	// ErrInvalidCertConfig is wrapped by every error of CertConfig.Validate.
	ErrInvalidCertConfig = errors.New("invalid certificate config")
	// ErrPartialCA means the output directory holds only one of ca.pem and ca-key.pem.
	ErrPartialCA = errors.New("incomplete cluster CA")
	// ErrBadCA means ca.pem and ca-key.pem exist but cannot sign node certificates.
	ErrBadCA = errors.New("unusable cluster CA")
)

// Names of the CA's files in a certificate directory.
const (
	CACertFile = "ca.pem"
	CAKeyFile  = "ca-key.pem"
)

// backdate starts every certificate's validity this long before it is issued, so that nodes
// whose clocks run a little behind accept it at once.
const backdate = time.Hour

// CertConfig says which certificates WriteCerts issues.
type CertConfig struct {
	// Dir receives the files; it is created (0700) if missing.
	Dir string
	// Nodes are the node names, one certificate each. A name is also a DNS name in its
	// certificate, so it must be letters, digits, '-' and '.'; "ca" and "ca-key" are taken.
	Nodes []string
	// Hosts are the IP addresses and DNS names every node certificate holds besides the
	// node's name: whatever peers dial the nodes by.
	Hosts []string
	// Validity is how long the certificates are valid from now.
	Validity time.Duration
}

// DefaultCertConfig returns certificates for loopback (127.0.0.1 and localhost) valid for
// 365 days; Dir and Nodes are left for the caller.
func DefaultCertConfig() CertConfig {
	return CertConfig{Hosts: []string{"127.0.0.1", "localhost"}, Validity: 365 * 24 * time.Hour}
}

// Validate reports every problem with c at once, each wrapping ErrInvalidCertConfig.
func (c CertConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidCertConfig},
			args...)...))
	}
	if c.Dir == "" {
		bad("no output directory")
	}
	if len(c.Nodes) == 0 {
		bad("no node names: give one per node, such as coordinator,ps-0,worker-0")
	}
	seen := map[string]bool{}
	for i, n := range c.Nodes {
		switch {
		case !isDNSName(n):
			bad("node %d %q: use letters, digits, '-' and '.', starting with a letter "+
				"or digit", i, n)
		case n == "ca" || n == "ca-key":
			bad("node %d %q: its files would overwrite the CA's; pick another name", i, n)
		case seen[n]:
			bad("node %d %q: named twice", i, n)
		}
		seen[n] = true
	}
	for i, h := range c.Hosts {
		if net.ParseIP(h) == nil && !isDNSName(h) {
			bad("host %d %q: neither an IP address nor a DNS name", i, h)
		}
	}
	if c.Validity < 24*time.Hour {
		bad("validity %v: want at least a day", c.Validity)
	}
	return errors.Join(errs...)
}

// isDNSName reports whether s is a plain host name: labels of letters, digits and '-',
// separated by dots, each starting with a letter or digit.
func isDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	start := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		switch {
		case alnum:
			start = false
		case c == '-' && !start:
		case c == '.' && !start:
			start = true
		default:
			return false
		}
	}
	return !start
}

// NodeCertFiles names the certificate and key files of one node in dir.
func NodeCertFiles(dir, node string) (cert, key string) {
	return filepath.Join(dir, node+".pem"), filepath.Join(dir, node+"-key.pem")
}

// NodeSecurity returns the TLS half of Security for node, with the files WriteCerts wrote
// in dir.
func NodeSecurity(dir, node string) Security {
	cert, key := NodeCertFiles(dir, node)
	return Security{CAFile: filepath.Join(dir, CACertFile), CertFile: cert, KeyFile: key}
}

// IssuedCerts lists what WriteCerts wrote.
type IssuedCerts struct {
	// CAReused is true when the directory already held a CA, which signed the new
	// certificates; false when a new CA was made.
	CAReused bool
	// Files are the paths written, in order.
	Files []string
}

// WriteCerts issues a certificate for each node of c, signed by the cluster CA in c.Dir.
// When c.Dir holds no CA, WriteCerts first makes one (ca.pem, ca-key.pem); when it holds
// one, WriteCerts reuses it, so that nodes can be added to a running cluster. Node
// certificates are ECDSA P-256, hold the node name and c.Hosts, and serve both as server and
// as client certificates; one that already exists is replaced. Keys are written 0600,
// certificates 0644, each file whole or not at all. Keys come from crypto/rand.
func WriteCerts(c CertConfig) (*IssuedCerts, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("certificate directory: %w", err)
	}

	now := time.Now()
	res := &IssuedCerts{}
	ca, caKey, reused, err := loadCA(c.Dir)
	if err != nil {
		return nil, err
	}
	if !reused {
		if ca, caKey, err = createCA(c.Dir, now, c.Validity); err != nil {
			return nil, err
		}
		res.Files = append(res.Files, filepath.Join(c.Dir, CAKeyFile),
			filepath.Join(c.Dir, CACertFile))
	}
	res.CAReused = reused

	for _, n := range c.Nodes {
		files, err := issueNode(c, n, ca, caKey, now)
		if err != nil {
			return nil, err
		}
		res.Files = append(res.Files, files...)
	}
	return res, nil
}

// loadCA reads the CA in dir; ok is false when there is none.
func loadCA(dir string) (ca *x509.Certificate, key crypto.Signer, ok bool, err error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	switch {
	case errors.Is(certErr, os.ErrNotExist) && errors.Is(keyErr, os.ErrNotExist):
		return nil, nil, false, nil
	case errors.Is(certErr, os.ErrNotExist) || errors.Is(keyErr, os.ErrNotExist):
		return nil, nil, false, fmt.Errorf("%w: %s needs both %s and %s; restore the "+
			"missing one, or remove the other to make a new CA", ErrPartialCA, dir,
			CACertFile, CAKeyFile)
	case certErr != nil:
		return nil, nil, false, fmt.Errorf("cluster CA: %w", certErr)
	case keyErr != nil:
		return nil, nil, false, fmt.Errorf("cluster CA key: %w", keyErr)
	}

	if ca, err = parseCertPEM(certPEM); err != nil {
		return nil, nil, false, fmt.Errorf("%w: %s: %w", ErrBadCA, certPath, err)
	}
	if !ca.IsCA {
		return nil, nil, false, fmt.Errorf("%w: %s is not a CA certificate", ErrBadCA,
			certPath)
	}
	if key, err = parseKeyPEM(keyPEM); err != nil {
		return nil, nil, false, fmt.Errorf("%w: %s: %w", ErrBadCA, keyPath, err)
	}
	pub, _ := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if pub == nil || !pub.Equal(ca.PublicKey) {
		return nil, nil, false, fmt.Errorf("%w: %s is not the key of %s", ErrBadCA, keyPath,
			certPath)
	}
	return ca, key, true, nil
}

func parseCertPEM(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return x509.ParseCertificate(blk.Bytes)
}

func parseKeyPEM(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New("no PEM PRIVATE KEY block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key of type %T cannot sign", k)
	}
	return s, nil
}

// createCA makes a self-signed CA that may sign node certificates only, and writes it.
func createCA(dir string, now time.Time, validity time.Duration) (*x509.Certificate,
	crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "skipgrid cluster CA"},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster CA certificate: %w", err)
	}

	if err := writeKey(filepath.Join(dir, CAKeyFile), key); err != nil {
		return nil, nil, err
	}
	if err := writeCert(filepath.Join(dir, CACertFile), der); err != nil {
		return nil, nil, err
	}
	return ca, key, nil
}

// issueNode writes node's key and certificate, signed by ca. The certificate ends no later
// than the CA does.
func issueNode(c CertConfig, node string, ca *x509.Certificate, caKey crypto.Signer,
	now time.Time) ([]string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("node %s key: %w", node, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: node},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(c.Validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{node},
	}
	if tmpl.NotAfter.After(ca.NotAfter) {
		tmpl.NotAfter = ca.NotAfter
	}
	for _, h := range c.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != node {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("node %s certificate: %w", node, err)
	}

	certPath, keyPath := NodeCertFiles(c.Dir, node)
	if err := writeKey(keyPath, key); err != nil {
		return nil, err
	}
	if err := writeCert(certPath, der); err != nil {
		return nil, err
	}
	return []string{keyPath, certPath}, nil
}

// newSerial returns a random 128-bit certificate serial number.
func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("certificate serial: %w", err)
	}
	return n, nil
}

func writeKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return writeFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY",
		Bytes: der}), 0o600)
}

func writeCert(path string, der []byte) error {
	return writeFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE",
		Bytes: der}), 0o644)
}

// writeFileAtomic writes data to a temporary file beside path with mode perm, syncs it and
// renames it over path, so that path holds either its old content or all of data.
func writeFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()

	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("chmod %s: %w", f.Name(), err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("rename into %s: %w", path, err)
	}

	// A directory that cannot be synced is no error: some file systems refuse.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
