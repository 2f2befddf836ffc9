package rpc

import (
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"
)

// FuzzTokenCheck feeds arbitrary authorization values, the bytes a peer controls, to the
// token check. It must accept exactly "Bearer <token>" with the scheme in any case, refuse
// everything else with a reason, and never panic.
func FuzzTokenCheck(f *testing.F) {
	f.Add("Bearer " + goodToken)
	f.Add("bearer " + goodToken)
	f.Add("Bearer " + wrongToken)
	f.Add("Bearer")
	f.Add("Basic dXNlcjpwYXNz")
	f.Add("")
	f.Add("BEARER  " + goodToken)
	g := &tokenGuard{want: sha256.Sum256([]byte(goodToken)),
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	f.Fuzz(func(t *testing.T, value string) {
		ctx := metadata.NewIncomingContext(context.Background(),
			metadata.Pairs(authorizationKey, value))
		reason := g.refusal(ctx)
		ok := len(value) == len("Bearer ")+len(goodToken) &&
			strings.EqualFold(value[:7], "Bearer ") && value[7:] == goodToken
		if (reason == "") != ok {
			t.Fatalf("value %q: refusal %q, want accepted %v", value, reason, ok)
		}
		if err := g.check(ctx, "/m"); (err == nil) != ok {
			t.Fatalf("value %q: check %v, want accepted %v", value, err, ok)
		}
	})
}
