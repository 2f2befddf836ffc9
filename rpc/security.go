package rpc

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// MinTokenBytes is the shortest cluster token Validate accepts.
const MinTokenBytes = 16

// Errors of Security.Validate; test for them with errors.Is.
var (
	// ErrCertKeyPair means a certificate was given without its key, or a key without its
	// certificate.
	ErrCertKeyPair = errors.New("tls certificate and key must be given together")
	// ErrCAMismatch means TLS material was given without the cluster CA, or the CA without
	// this node's certificate and key.
	ErrCAMismatch = errors.New("tls needs the cluster CA and this node's certificate and key")
	// ErrBadToken means the cluster token is shorter than MinTokenBytes or holds bytes that
	// cannot travel in gRPC metadata.
	ErrBadToken = errors.New("cluster token unusable")
	// ErrPlaintextToken means a token was given without TLS and without
	// Security.AllowPlaintextToken, so it would cross the network in clear.
	ErrPlaintextToken = errors.New("cluster token without tls")
)

// authorizationKey is the metadata key that carries the cluster token.
const authorizationKey = "authorization"

// Security is how a node proves itself to its gRPC peers and checks theirs. It has two
// independent layers, which may be combined:
//
//   - TLS (CAFile, CertFile, KeyFile): every connection is TLS 1.3 at least, both ends show
//     a certificate signed by the cluster CA, and each end checks the other's. A client
//     checks the server's name against the certificate's names; the server accepts any
//     client whose certificate the CA signed.
//   - A cluster token (Token): a shared secret every call carries as
//     "authorization: Bearer <token>" metadata, checked by the server in constant time.
//     Without TLS the token crosses the network in clear, so it is only allowed with
//     AllowPlaintextToken: the minimum for a trusted network, never for an open one.
//
// The zero Security turns both off: plaintext and no checks. A server refuses a connection
// that fails the TLS handshake and a call without the right token (codes.Unauthenticated),
// and logs each refusal at warn level with the peer's address and the reason.
//
// In-process servers called through InMemCoordinator and InMemPS need no Security.
type Security struct {
	// CAFile is the PEM file of the cluster CA that signs every node's certificate.
	CAFile string
	// CertFile is the PEM file of this node's certificate, used as server and as client.
	CertFile string
	// KeyFile is the PEM file of CertFile's private key.
	KeyFile string
	// Token is the cluster token; empty means none. At least MinTokenBytes of printable
	// ASCII without spaces.
	Token string
	// AllowPlaintextToken allows Token without TLS.
	AllowPlaintextToken bool
	// Logger receives refusals; nil means slog.Default().
	Logger *slog.Logger
}

// TLS reports whether s asks for TLS: any of the CA, certificate and key is set.
func (s Security) TLS() bool {
	return s.CAFile != "" || s.CertFile != "" || s.KeyFile != ""
}

// Enabled reports whether s authenticates peers at all, by TLS or by token.
func (s Security) Enabled() bool { return s.TLS() || s.Token != "" }

// Validate reports every problem with s at once: the certificate and key given together,
// TLS material complete, each file readable, and the token long and plain enough and
// protected by TLS unless AllowPlaintextToken is set.
func (s Security) Validate() error {
	var errs []error
	if (s.CertFile == "") != (s.KeyFile == "") {
		errs = append(errs, fmt.Errorf("security: %w: certificate %q, key %q",
			ErrCertKeyPair, s.CertFile, s.KeyFile))
	}
	if s.TLS() && (s.CAFile == "" || (s.CertFile == "" && s.KeyFile == "")) {
		errs = append(errs, fmt.Errorf("security: %w: CA %q, certificate %q, key %q",
			ErrCAMismatch, s.CAFile, s.CertFile, s.KeyFile))
	}
	for _, f := range []struct{ what, path string }{
		{"CA", s.CAFile}, {"certificate", s.CertFile}, {"key", s.KeyFile},
	} {
		if f.path == "" {
			continue
		}
		if err := readable(f.path); err != nil {
			errs = append(errs, fmt.Errorf("security: tls %s: %w", f.what, err))
		}
	}
	if s.Token != "" {
		if err := checkToken(s.Token); err != nil {
			errs = append(errs, err)
		}
		if !s.TLS() && !s.AllowPlaintextToken {
			errs = append(errs, fmt.Errorf("security: %w: give TLS material, or allow the "+
				"token over plaintext on a trusted network only", ErrPlaintextToken))
		}
	}
	return errors.Join(errs...)
}

// readable checks that path can be opened for reading.
func readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// checkToken checks the token's length and that every byte is printable ASCII other than a
// space, which gRPC metadata carries unchanged.
func checkToken(tok string) error {
	if len(tok) < MinTokenBytes {
		return fmt.Errorf("security: %w: %d bytes, want at least %d (for example 32 random "+
			"bytes in base64)", ErrBadToken, len(tok), MinTokenBytes)
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("security: %w: byte %d is %#02x; use printable ASCII without "+
				"spaces", ErrBadToken, i, c)
		}
	}
	return nil
}

func (s Security) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

// ServerOptions returns the gRPC server options that enforce s: TLS credentials that
// require and verify client certificates, and interceptors that check the token. Pass them
// with the package's ServerOptions: grpc.NewServer(ServerOptions(opts...)...). The zero
// Security returns no options. The files are read once, here.
func (s Security) ServerOptions() ([]grpc.ServerOption, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	log := s.logger()
	var opts []grpc.ServerOption
	if s.TLS() {
		cfg, err := s.serverTLS()
		if err != nil {
			return nil, err
		}
		creds := &handshakeLogger{TransportCredentials: credentials.NewTLS(cfg), log: log}
		opts = append(opts, grpc.Creds(creds))
	}
	if s.Token != "" {
		g := &tokenGuard{want: sha256.Sum256([]byte(s.Token)), log: log}
		opts = append(opts, grpc.ChainUnaryInterceptor(g.unary),
			grpc.ChainStreamInterceptor(g.stream))
	}
	return opts, nil
}

// DialOptions returns the gRPC dial options that satisfy a server enforcing s: TLS
// credentials with this node's certificate and the cluster CA, and per-call credentials
// carrying the token. serverName is the name the server's certificate must hold; empty
// means the host part of the address dialed. Pass them as Dial's extra options with nil
// creds: their transport credentials come later and so replace Dial's plaintext default.
// The files are read once, here; reuse the options for every connection.
func (s Security) DialOptions(serverName string) ([]grpc.DialOption, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var opts []grpc.DialOption
	if s.TLS() {
		cfg, err := s.clientTLS(serverName)
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	}
	if s.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(tokenCredentials{
			header: "Bearer " + s.Token, requireTLS: s.TLS(),
		}))
	}
	return opts, nil
}

// serverTLS builds the server side: this node's certificate, client certificates required
// and verified against the CA.
func (s Security) serverTLS() (*tls.Config, error) {
	cert, pool, err := s.loadTLS()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// clientTLS builds the client side: this node's certificate shown to servers, servers
// verified against the CA.
func (s Security) clientTLS(serverName string) (*tls.Config, error) {
	cert, pool, err := s.loadTLS()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ServerName:   serverName,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// loadTLS reads the certificate, its key and the CA.
func (s Security) loadTLS() (tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("security: tls certificate %s with key %s: %w",
			s.CertFile, s.KeyFile, err)
	}
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("security: tls CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return tls.Certificate{}, nil, fmt.Errorf("security: tls CA %s: no PEM certificate "+
			"found; give the ca.pem that signed the node certificates", s.CAFile)
	}
	return cert, pool, nil
}

// handshakeLogger logs every server-side TLS handshake that fails, the one place where a
// connection without a good certificate is refused.
type handshakeLogger struct {
	credentials.TransportCredentials
	log *slog.Logger
}

// ServerHandshake runs the TLS handshake and logs a failure with the peer's address. A
// connection closed before its first byte is logged at debug only: load balancers and
// liveness probes open and close connections that way.
func (h *handshakeLogger) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo,
	error) {
	conn, info, err := h.TransportCredentials.ServerHandshake(raw)
	if err != nil {
		level := slog.LevelWarn
		if errors.Is(err, io.EOF) {
			level = slog.LevelDebug
		}
		h.log.Log(context.Background(), level, "grpc connection refused",
			"peer", raw.RemoteAddr().String(), "reason", err.Error())
	}
	return conn, info, err
}

// Clone returns a copy that logs to the same logger.
func (h *handshakeLogger) Clone() credentials.TransportCredentials {
	return &handshakeLogger{TransportCredentials: h.TransportCredentials.Clone(), log: h.log}
}

// tokenGuard checks the cluster token of every incoming call. It keeps only the token's
// SHA-256, so that comparisons take the same time whatever the length of the guess.
type tokenGuard struct {
	want [sha256.Size]byte
	log  *slog.Logger
}

func (g *tokenGuard) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo,
	handler grpc.UnaryHandler) (any, error) {
	if err := g.check(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (g *tokenGuard) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo,
	handler grpc.StreamHandler) error {
	if err := g.check(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
}

// check returns nil for a call with the right token; otherwise it logs the refusal and
// returns a codes.Unauthenticated status.
func (g *tokenGuard) check(ctx context.Context, method string) error {
	reason := g.refusal(ctx)
	if reason == "" {
		return nil
	}
	addr := "unknown"
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		addr = p.Addr.String()
	}
	g.log.Warn("grpc call refused", "peer", addr, "method", method, "reason", reason)
	return status.Errorf(codes.Unauthenticated, "skipgrid cluster token refused: %s", reason)
}

// refusal says what is wrong with the call's token, or "" when it is right.
func (g *tokenGuard) refusal(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(authorizationKey)
	switch {
	case len(vals) == 0:
		return "no cluster token (authorization metadata missing)"
	case len(vals) > 1:
		return "more than one authorization value"
	}
	const scheme = "bearer "
	v := vals[0]
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "authorization is not a bearer token"
	}
	got := sha256.Sum256([]byte(v[len(scheme):]))
	if subtle.ConstantTimeCompare(got[:], g.want[:]) != 1 {
		return "wrong cluster token"
	}
	return ""
}

// tokenCredentials puts the cluster token on every call. It asks gRPC for transport
// security when the node has TLS, so the token never leaves over a plaintext connection by
// mistake; without TLS (Security.AllowPlaintextToken) it goes in clear, the minimum for a
// trusted network.
type tokenCredentials struct {
	header     string
	requireTLS bool
}

// GetRequestMetadata returns the authorization metadata of every call.
func (c tokenCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string,
	error) {
	return map[string]string{authorizationKey: c.header}, nil
}

// RequireTransportSecurity reports whether the token may only travel over TLS.
func (c tokenCredentials) RequireTransportSecurity() bool { return c.requireTLS }
