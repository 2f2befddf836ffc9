package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"google.golang.org/grpc"

	"github.com/skipgrid/skipgrid/rpc"
)

// addSecurityFlags declares how a node authenticates its gRPC peers. Through viper each has
// an environment twin: SKIPGRID_TLS_CA, SKIPGRID_TOKEN, SKIPGRID_TOKEN_FILE and so on.
func addSecurityFlags(fs *pflag.FlagSet) {
	fs.String("tls-ca", "", "cluster CA certificate (PEM); with --tls-cert and --tls-key, "+
		"gRPC uses TLS 1.3 with client certificates")
	fs.String("tls-cert", "", "this node's certificate (PEM), signed by --tls-ca")
	fs.String("tls-key", "", "this node's private key (PEM)")
	fs.String("token", "", "cluster token every gRPC call must carry (at least 16 bytes; "+
		"prefer SKIPGRID_TOKEN or --token-file, which other users cannot see)")
	fs.String("token-file", "", "file holding the cluster token (surrounding white space "+
		"is dropped)")
	fs.Bool("allow-plaintext-token", false, "allow --token without TLS: the token then "+
		"crosses the network in clear (trusted networks only)")
}

// securityFromViper reads the security flags; the result has passed Validate.
func securityFromViper(v *viper.Viper) (rpc.Security, error) {
	s := rpc.Security{
		CAFile:              v.GetString("tls-ca"),
		CertFile:            v.GetString("tls-cert"),
		KeyFile:             v.GetString("tls-key"),
		Token:               v.GetString("token"),
		AllowPlaintextToken: v.GetBool("allow-plaintext-token"),
	}
	if path := v.GetString("token-file"); path != "" {
		if s.Token != "" {
			return rpc.Security{}, errors.New("--token and --token-file: give one, not both")
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return rpc.Security{}, fmt.Errorf("--token-file: %w", err)
		}
		if s.Token = strings.TrimSpace(string(b)); s.Token == "" {
			return rpc.Security{}, fmt.Errorf("--token-file %s: file is empty; put the "+
				"cluster token in it", path)
		}
	}
	if err := s.Validate(); err != nil {
		return rpc.Security{}, fmt.Errorf("security flags (--tls-ca, --tls-cert, --tls-key, "+
			"--token, --token-file, --allow-plaintext-token): %w", err)
	}
	return s, nil
}

// grpcSecurity reads the security flags and returns the options of this node's gRPC server
// and of its connections to other nodes. Refusals are logged to log. A node without any
// security is allowed, with a warning: it accepts every peer.
func grpcSecurity(v *viper.Viper, log *slog.Logger) ([]grpc.ServerOption, []grpc.DialOption,
	error) {
	sec, err := securityFromViper(v)
	if err != nil {
		return nil, nil, err
	}
	sec.Logger = log
	if !sec.Enabled() {
		log.Warn("gRPC is unauthenticated: any peer that reaches this node is trusted; " +
			"give --tls-ca/--tls-cert/--tls-key or --token")
	}
	server, err := sec.ServerOptions()
	if err != nil {
		return nil, nil, err
	}
	dial, err := sec.DialOptions("")
	if err != nil {
		return nil, nil, err
	}
	return server, dial, nil
}

// maxCertDays bounds --days: a hundred years, far inside time.Duration's range.
const maxCertDays = 36500

func newCertsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs --out DIR --nodes NAME,... [--hosts HOST,...] [--days N]",
		Short: "Write a cluster CA and a TLS certificate for each node",
		Long: `Write a cluster CA (ca.pem, ca-key.pem) and, for each node, a certificate and key
(NAME.pem, NAME-key.pem) signed by it. A CA already in DIR is reused, so that nodes can be
added later. Node certificates are ECDSA P-256, serve as both server and client
certificates, and name the node and every --hosts entry: list whatever the nodes dial
each other by (IP addresses, DNS names). Give each node ca.pem and its own pair through
--tls-ca, --tls-cert and --tls-key; keep ca-key.pem off the nodes.`,
		Args: cobra.NoArgs,
		RunE: runCerts,
	}
	fs := cmd.Flags()
	d := rpc.DefaultCertConfig()
	fs.String("out", "", "directory for the CA and the node files (created 0700)")
	fs.StringSlice("nodes", nil, "node names, one certificate each (coordinator,ps-0,worker-0)")
	fs.StringSlice("hosts", d.Hosts, "IP addresses and DNS names every certificate holds")
	fs.Int("days", int(d.Validity.Hours()/24), "days the certificates are valid")
	return cmd
}

func runCerts(cmd *cobra.Command, _ []string) error {
	fs := cmd.Flags()
	c := rpc.DefaultCertConfig()
	c.Dir, _ = fs.GetString("out")
	c.Nodes, _ = fs.GetStringSlice("nodes")
	c.Hosts, _ = fs.GetStringSlice("hosts")
	days, _ := fs.GetInt("days")
	if days < 1 || days > maxCertDays {
		return fmt.Errorf("certs: --days %d: want 1 to %d", days, maxCertDays)
	}
	c.Validity = time.Duration(days) * 24 * time.Hour
	res, err := rpc.WriteCerts(c)
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}

	out := cmd.OutOrStdout()
	if res.CAReused {
		fmt.Fprintf(out, "reused the CA in %s\n", c.Dir)
	}
	for _, f := range res.Files {
		fmt.Fprintln(out, "wrote", f)
	}
	for _, n := range c.Nodes {
		cert, key := rpc.NodeCertFiles(c.Dir, n)
		fmt.Fprintf(out, "%s: --tls-ca %s --tls-cert %s --tls-key %s\n", n,
			filepath.Join(c.Dir, rpc.CACertFile), cert, key)
	}
	return nil
}
