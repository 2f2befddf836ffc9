package member

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// fakeResolver answers from a table; a name missing from it fails the first misses times.
type fakeResolver struct {
	table  map[string][]string
	misses int
	calls  int
}

func (f *fakeResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	f.calls++
	if f.calls <= f.misses {
		return nil, errors.New("no such host")
	}
	var out []net.IPAddr
	for _, a := range f.table[host] {
		out = append(out, net.IPAddr{IP: net.ParseIP(a)})
	}
	return out, nil
}

func TestAdvertiseIP(t *testing.T) {
	local := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.1.7")}
	r := &fakeResolver{table: map[string][]string{
		"ps-0":   {"10.0.1.5", "10.0.1.7", "10.0.1.9"},
		"remote": {"10.0.2.3", "10.0.2.4"},
	}}
	ctx := context.Background()
	for _, tc := range []struct{ host, want string }{
		{"192.168.1.2", "192.168.1.2"}, // an IP is kept, not resolved
		{"ps-0", "10.0.1.7"},           // the address of a local interface wins
		{"remote", "10.0.2.3"},         // none local: the first
	} {
		got, err := AdvertiseIP(ctx, r, tc.host, local)
		if err != nil || got != tc.want {
			t.Errorf("AdvertiseIP(%q) = %q, %v; want %q", tc.host, got, err, tc.want)
		}
	}
	if r.calls != 2 {
		t.Errorf("%d lookups; want 2 (the IP is not looked up)", r.calls)
	}
}

// TestAdvertiseIPWaitsForName: a name that resolves only on the third try is found; one that
// never resolves fails when the context ends, naming the host.
func TestAdvertiseIPWaitsForName(t *testing.T) {
	r := &fakeResolver{table: map[string][]string{"late": {"10.0.0.2"}}, misses: 2}
	got, err := AdvertiseIP(context.Background(), r, "late", nil)
	if err != nil || got != "10.0.0.2" || r.calls != 3 {
		t.Fatalf("got %q, %v after %d lookups; want 10.0.0.2 after 3", got, err, r.calls)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	never := &fakeResolver{misses: 1 << 30}
	if _, err := AdvertiseIP(ctx, never, "gone", nil); err == nil {
		t.Fatal("a name that never resolves gave no error")
	}
}
