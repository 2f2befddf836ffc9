package rpc

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

const (
	goodToken  = "0123456789abcdef-right"
	wrongToken = "0123456789abcdef-wrong"
	// testTimeout bounds every call of these tests; none should come near it.
	testTimeout = 20 * time.Second
)

// okCoordinator answers Register and nothing else.
type okCoordinator struct {
	skipgridpb.UnimplementedCoordinatorServer
}

func (okCoordinator) Register(context.Context, *skipgridpb.RegisterRequest) (
	*skipgridpb.RegisterResponse, error) {
	return &skipgridpb.RegisterResponse{JobId: "job"}, nil
}

// pingService has one server-streaming method that ends at once, to exercise the stream
// interceptor: the skipgrid services are all unary today.
var pingService = grpc.ServiceDesc{
	ServiceName: "skipgrid.test.Ping",
	HandlerType: (*any)(nil),
	Streams: []grpc.StreamDesc{{
		StreamName:    "Ping",
		ServerStreams: true,
		Handler:       func(any, grpc.ServerStream) error { return nil },
	}},
}

// logBuffer collects JSON log records written from server goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// records returns the records logged so far.
func (l *logBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var recs []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(l.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// refusals returns the refusal records: their messages end in "refused".
func (l *logBuffer) refusals(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, r := range l.records(t) {
		if msg, _ := r["msg"].(string); strings.HasSuffix(msg, " refused") {
			out = append(out, r)
		}
	}
	return out
}

// waitRefusal waits for a refusal record whose reason holds reason and whose peer is a
// loopback address, failing the test at ctx's deadline. The server may log a refused
// handshake after the client has already seen its end of it, hence the wait.
func (l *logBuffer) waitRefusal(t *testing.T, ctx context.Context, msg, reason string) {
	t.Helper()
	for {
		for _, r := range l.refusals(t) {
			got, _ := r["reason"].(string)
			addr, _ := r["peer"].(string)
			if r["msg"] == msg && strings.Contains(got, reason) &&
				strings.HasPrefix(addr, "127.0.0.1:") && r["level"] == "WARN" {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no %q record with reason %q and a loopback peer; log:\n%s",
				msg, reason, l.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// startServer serves the coordinator and ping services with sec on a loopback port and
// returns the address and the server's log.
func startServer(t *testing.T, sec Security) (string, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	sec.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts, err := sec.ServerOptions()
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(ServerOptions(opts...)...)
	skipgridpb.RegisterCoordinatorServer(srv, okCoordinator{})
	srv.RegisterService(&pingService, struct{}{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), logs
}

// register dials addr with opts and calls Register once.
func register(t *testing.T, ctx context.Context, addr string, opts ...grpc.DialOption) error {
	t.Helper()
	conn, err := Dial(addr, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = skipgridpb.NewCoordinatorClient(conn).Register(ctx,
		&skipgridpb.RegisterRequest{Name: "w"})
	return err
}

// ping dials addr with opts and runs the streaming ping to its end.
func ping(t *testing.T, ctx context.Context, addr string, opts ...grpc.DialOption) error {
	t.Helper()
	conn, err := Dial(addr, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st, err := conn.NewStream(ctx, &pingService.Streams[0], "/skipgrid.test.Ping/Ping")
	if err != nil {
		return err
	}
	if err := st.SendMsg(&emptypb.Empty{}); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := st.CloseSend(); err != nil {
		return err
	}
	if err := st.RecvMsg(&emptypb.Empty{}); !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func dialOpts(t *testing.T, sec Security) []grpc.DialOption {
	t.Helper()
	opts, err := sec.DialOptions("")
	if err != nil {
		t.Fatal(err)
	}
	return opts
}

// writeTestCerts writes a CA with the given nodes into a new directory.
func writeTestCerts(t *testing.T, nodes ...string) string {
	t.Helper()
	c := DefaultCertConfig()
	c.Dir, c.Nodes = t.TempDir(), nodes
	if _, err := WriteCerts(c); err != nil {
		t.Fatal(err)
	}
	return c.Dir
}

func TestTLSRefusesPeersWithoutClusterCert(t *testing.T) {
	cluster := writeTestCerts(t, "coordinator", "worker-0")
	foreign := writeTestCerts(t, "worker-0")
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(filepath.Join(cluster, CACertFile))
	if err != nil || !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("cluster CA: %v", err)
	}
	foreignCert, foreignKey := NodeCertFiles(foreign, "worker-0")

	tests := []struct {
		name   string
		client []grpc.DialOption
		// reason is part of the server's logged reason; "" means the call succeeds.
		reason string
	}{
		{"cluster certificate", dialOpts(t, NodeSecurity(cluster, "worker-0")), ""},
		{"no client certificate", []grpc.DialOption{grpc.WithTransportCredentials(
			credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}))},
			"client didn't provide a certificate"},
		{"certificate of another CA", dialOpts(t, Security{
			CAFile: filepath.Join(cluster, CACertFile), CertFile: foreignCert,
			KeyFile: foreignKey}), "certificate signed by unknown authority"},
		{"plaintext", nil, "does not look like a TLS handshake"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			addr, logs := startServer(t, NodeSecurity(cluster, "coordinator"))
			err := register(t, ctx, addr, tc.client...)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("Register: %v", err)
				}
				if r := logs.refusals(t); len(r) != 0 {
					t.Errorf("refusals logged for a good client: %v", r)
				}
				return
			}

			// A refused handshake fails the connection, which gRPC reports as
			// Unavailable.
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("Register: %v, want code Unavailable", err)
			}
			logs.waitRefusal(t, ctx, "grpc connection refused", tc.reason)
		})
	}
}

func TestTLSClientChecksServerName(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cluster := writeTestCerts(t, "coordinator", "worker-0")
	addr, _ := startServer(t, NodeSecurity(cluster, "coordinator"))

	// The coordinator's certificate names coordinator, localhost and 127.0.0.1.
	for _, tc := range []struct {
		serverName string
		ok         bool
	}{{"", true}, {"coordinator", true}, {"ps-0", false}} {
		opts, err := NodeSecurity(cluster, "worker-0").DialOptions(tc.serverName)
		if err != nil {
			t.Fatal(err)
		}
		err = register(t, ctx, addr, opts...)
		if (err == nil) != tc.ok {
			t.Errorf("server name %q: Register error %v, want success %v", tc.serverName,
				err, tc.ok)
		}
	}
}

func TestTokenRefusesWrongOrMissingToken(t *testing.T) {
	plain := func(tok string) Security { return Security{Token: tok, AllowPlaintextToken: true} }
	tests := []struct {
		name   string
		client []grpc.DialOption
		md     []string // extra outgoing metadata
		// reason is part of the server's logged reason; "" means the call succeeds.
		reason string
	}{
		{"right token", dialOpts(t, plain(goodToken)), nil, ""},
		{"scheme in lower case", nil, []string{"authorization", "bearer " + goodToken}, ""},
		{"wrong token", dialOpts(t, plain(wrongToken)), nil, "wrong cluster token"},
		{"no token", nil, nil, "authorization metadata missing"},
		{"token as a prefix", nil, []string{"authorization", "Bearer " + goodToken[:16]},
			"wrong cluster token"},
		{"basic scheme", nil, []string{"authorization", "Basic " + goodToken},
			"not a bearer token"},
		{"two tokens", dialOpts(t, plain(goodToken)),
			[]string{"authorization", "Bearer " + goodToken}, "more than one"},
	}
	for _, tc := range tests {
		for _, call := range []struct {
			name string
			fn   func(*testing.T, context.Context, string, ...grpc.DialOption) error
		}{{"unary", register}, {"stream", ping}} {
			t.Run(tc.name+"/"+call.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
				defer cancel()
				addr, logs := startServer(t, plain(goodToken))
				if tc.md != nil {
					ctx = metadata.AppendToOutgoingContext(ctx, tc.md...)
				}
				err := call.fn(t, ctx, addr, tc.client...)
				if tc.reason == "" {
					if err != nil {
						t.Fatalf("call: %v", err)
					}
					if r := logs.refusals(t); len(r) != 0 {
						t.Errorf("refusals logged for a good client: %v", r)
					}
					return
				}
				if status.Code(err) != codes.Unauthenticated {
					t.Fatalf("call: %v, want code Unauthenticated", err)
				}
				logs.waitRefusal(t, ctx, "grpc call refused", tc.reason)
			})
		}
	}
}

func TestTLSAndToken(t *testing.T) {
	cluster := writeTestCerts(t, "coordinator", "worker-0")
	server := NodeSecurity(cluster, "coordinator")
	server.Token = goodToken

	for _, tc := range []struct {
		token string
		want  codes.Code
	}{{goodToken, codes.OK}, {wrongToken, codes.Unauthenticated}} {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		addr, logs := startServer(t, server)
		client := NodeSecurity(cluster, "worker-0")
		client.Token = tc.token
		err := register(t, ctx, addr, dialOpts(t, client)...)
		if status.Code(err) != tc.want {
			t.Errorf("token %q: Register: %v, want code %v", tc.token, err, tc.want)
		} else if tc.want != codes.OK {
			logs.waitRefusal(t, ctx, "grpc call refused", "wrong cluster token")
		}
		cancel()
	}
}

// TestTokenNeverSentInClearWithTLS checks that a node configured for TLS refuses to send its
// token when its transport is replaced by a plaintext one.
func TestTokenNeverSentInClearWithTLS(t *testing.T) {
	cluster := writeTestCerts(t, "worker-0")
	sec := NodeSecurity(cluster, "worker-0")
	sec.Token = goodToken
	opts := append(dialOpts(t, sec), grpc.WithTransportCredentials(insecure.NewCredentials()))
	conn, err := grpc.NewClient("127.0.0.1:1", opts...)
	if err == nil {
		conn.Close()
		t.Fatal("dialed plaintext with a token that requires TLS")
	}
	if !strings.Contains(err.Error(), "transport") {
		t.Errorf("error %q does not say transport security is required", err)
	}
}

func TestValidate(t *testing.T) {
	cluster := writeTestCerts(t, "worker-0")
	good := NodeSecurity(cluster, "worker-0")
	missing := filepath.Join(cluster, "absent.pem")

	tests := []struct {
		name string
		sec  Security
		want []error // every error expected, in any order
	}{
		{"zero", Security{}, nil},
		{"tls", good, nil},
		{"tls and token", Security{CAFile: good.CAFile, CertFile: good.CertFile,
			KeyFile: good.KeyFile, Token: goodToken}, nil},
		{"plaintext token allowed", Security{Token: goodToken, AllowPlaintextToken: true}, nil},
		{"plaintext token not allowed", Security{Token: goodToken},
			[]error{ErrPlaintextToken}},
		// 15 bytes: one short of MinTokenBytes.
		{"short token", Security{Token: goodToken[:15], AllowPlaintextToken: true},
			[]error{ErrBadToken}},
		{"token with space", Security{Token: "0123456789 abcdef", AllowPlaintextToken: true},
			[]error{ErrBadToken}},
		{"cert without key", Security{CAFile: good.CAFile, CertFile: good.CertFile},
			[]error{ErrCertKeyPair}},
		{"key without cert or CA", Security{KeyFile: good.KeyFile},
			[]error{ErrCertKeyPair, ErrCAMismatch}},
		{"CA alone", Security{CAFile: good.CAFile}, []error{ErrCAMismatch}},
		{"pair without CA", Security{CertFile: good.CertFile, KeyFile: good.KeyFile},
			[]error{ErrCAMismatch}},
		{"unreadable CA", Security{CAFile: missing, CertFile: good.CertFile,
			KeyFile: good.KeyFile}, []error{fs.ErrNotExist}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.sec.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("Validate: %v, want it to wrap %v", err, w)
				}
			}
			if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != len(tc.want) {
				t.Errorf("Validate: %d errors (%v), want %d", n, err, len(tc.want))
			}
		})
	}
}

func TestServerOptionsRejectsBadCA(t *testing.T) {
	cluster := writeTestCerts(t, "worker-0")
	sec := NodeSecurity(cluster, "worker-0")
	sec.CAFile = sec.KeyFile // readable, but holds a key, not a certificate
	if _, err := sec.ServerOptions(); err == nil || !strings.Contains(err.Error(),
		"no PEM certificate") {
		t.Errorf("ServerOptions with a key as CA: %v, want a no-PEM-certificate error", err)
	}
	if _, err := sec.DialOptions(""); err == nil {
		t.Error("DialOptions with a key as CA: no error")
	}
}

func TestZeroSecurityHasNoOptions(t *testing.T) {
	so, err := Security{}.ServerOptions()
	if err != nil || len(so) != 0 {
		t.Errorf("ServerOptions: %d options, %v; want none", len(so), err)
	}
	do, err := Security{}.DialOptions("")
	if err != nil || len(do) != 0 {
		t.Errorf("DialOptions: %d options, %v; want none", len(do), err)
	}
}
