package member

import (
	"context"
	"fmt"
	"net"
	"slices"
	"time"
)

// Resolver looks up a host name's addresses; net.DefaultResolver is one.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// AdvertiseIP turns an advertise host into the IP address other nodes reach this node at. An
// IP address is returned as it is. A name (a compose or Swarm service name, a pod's DNS
// name) is resolved, retrying every second until ctx ends, since the name of a container
// that is starting may not resolve yet; of its addresses the one that belongs to an
// interface of this host (local) is taken, so that a name that resolves to several tasks
// still gives this node's own. With no local address among them, the first is taken.
func AdvertiseIP(ctx context.Context, r Resolver, host string, local []net.IP) (string,
	error) {
	if ip := net.ParseIP(host); ip != nil {
		return host, nil
	}
	var last error
	for {
		addrs, err := r.LookupIPAddr(ctx, host)
		if err == nil && len(addrs) > 0 {
			for _, a := range addrs {
				if slices.ContainsFunc(local, a.IP.Equal) {
					return a.IP.String(), nil
				}
			}
			return addrs[0].IP.String(), nil
		}
		last = err
		if last == nil {
			last = fmt.Errorf("no addresses")
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("advertise host %q does not resolve: %w", host, last)
		case <-time.After(time.Second):
		}
	}
}

// LocalIPs returns the IP addresses of this host's interfaces.
func LocalIPs() ([]net.IP, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("listing interface addresses: %w", err)
	}
	var ips []net.IP
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			ips = append(ips, n.IP)
		}
	}
	return ips, nil
}
