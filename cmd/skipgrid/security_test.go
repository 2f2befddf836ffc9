package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/spf13/cobra"

	"github.com/skipgrid/skipgrid/rpc"
)

const testToken = "0123456789abcdef0123" // 20 bytes, above rpc.MinTokenBytes

// securityFromArgs parses args as a role command would and reads the security flags.
func securityFromArgs(t *testing.T, args ...string) (rpc.Security, error) {
	t.Helper()
	cmd := &cobra.Command{Use: "node"}
	cmd.Flags().String("config", "", "")
	addSecurityFlags(cmd.Flags())
	if err := cmd.Flags().Parse(args); err != nil {
		t.Fatal(err)
	}
	v, err := newViper(cmd)
	if err != nil {
		t.Fatal(err)
	}
	return securityFromViper(v)
}

func TestSecurityFromViper(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, "certs", "--out", dir, "--nodes", "worker-0"); err != nil {
		t.Fatal(err)
	}
	certs := rpc.NodeSecurity(dir, "worker-0")

	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    rpc.Security
		wantErr string // part of the error; "" means none
	}{
		{"nothing", nil, nil, rpc.Security{}, ""},
		{"tls flags", []string{"--tls-ca", certs.CAFile, "--tls-cert", certs.CertFile,
			"--tls-key", certs.KeyFile}, nil, certs, ""},
		{"token flag", []string{"--token", testToken, "--allow-plaintext-token"}, nil,
			rpc.Security{Token: testToken, AllowPlaintextToken: true}, ""},
		{"token from the environment", nil, map[string]string{"SKIPGRID_TOKEN": testToken,
			"SKIPGRID_ALLOW_PLAINTEXT_TOKEN": "true"},
			rpc.Security{Token: testToken, AllowPlaintextToken: true}, ""},
		{"token file, newline dropped", []string{"--token-file", tokenFile,
			"--allow-plaintext-token"}, nil,
			rpc.Security{Token: testToken, AllowPlaintextToken: true}, ""},
		{"token and token file", []string{"--token", testToken, "--token-file", tokenFile},
			nil, rpc.Security{}, "give one, not both"},
		{"empty token file", []string{"--token-file", empty}, nil, rpc.Security{},
			"file is empty"},
		{"missing token file", []string{"--token-file", filepath.Join(dir, "nope")}, nil,
			rpc.Security{}, "--token-file"},
		{"token without tls", []string{"--token", testToken}, nil, rpc.Security{},
			"without tls"},
		{"short token", []string{"--token", "short", "--allow-plaintext-token"}, nil,
			rpc.Security{}, "5 bytes"},
		{"key without certificate", []string{"--tls-ca", certs.CAFile, "--tls-key",
			certs.KeyFile}, nil, rpc.Security{}, "must be given together"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			got, err := securityFromArgs(t, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreFields(rpc.Security{},
				"Logger")); diff != "" {
				t.Errorf("security (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCertsCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	out, err := runCLI(t, "certs", "--out", dir, "--nodes", "coordinator,ps-0",
		"--hosts", "127.0.0.1,node.example", "--days", "30")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"wrote " + filepath.Join(dir, "ca.pem"),
		"wrote " + filepath.Join(dir, "ps-0-key.pem"),
		"coordinator: --tls-ca " + filepath.Join(dir, "ca.pem") + " --tls-cert " +
			filepath.Join(dir, "coordinator.pem") + " --tls-key " +
			filepath.Join(dir, "coordinator-key.pem"),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if err := rpc.NodeSecurity(dir, "ps-0").Validate(); err != nil {
		t.Errorf("ps-0's files: %v", err)
	}

	// A second run adds a node under the same CA.
	out, err = runCLI(t, "certs", "--out", dir, "--nodes", "worker-0")
	if err != nil || !strings.Contains(out, "reused the CA") {
		t.Errorf("second run: %v, output %q; want the CA reused", err, out)
	}

	for _, bad := range [][]string{
		{"certs", "--out", dir},
		{"certs", "--out", dir, "--nodes", "w", "--days", "0"},
		{"certs", "--nodes", "w"},
	} {
		if _, err := runCLI(t, bad...); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
