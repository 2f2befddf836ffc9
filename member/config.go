package member

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/hashicorp/memberlist"
)

// Errors returned by this package; test for them with errors.Is.
var (
	// ErrInvalidConfig is wrapped by every error of Config.Validate.
	ErrInvalidConfig = errors.New("invalid membership config")
	// ErrMetaTooLarge means the JSON encoding of Meta does not fit in the
	// 512 bytes memberlist allows for node metadata.
	ErrMetaTooLarge = errors.New("node metadata too large")
	// ErrJoin means no seed could be joined within the join deadline.
	ErrJoin = errors.New("cannot join the gossip cluster")
	// ErrGossipKey is wrapped together with ErrJoin when the seeds refused
	// this node's gossip, or this node refused theirs, because the secret
	// keys differ (or one side has none).
	ErrGossipKey = errors.New("gossip encryption key does not match the cluster's")
	// ErrShutdown is returned by methods called after Node.Shutdown.
	ErrShutdown = errors.New("membership node is shut down")
)

// maxMetaBytes is memberlist's limit on node metadata.
const maxMetaBytes = memberlist.MetaMaxSize

// Meta is what a node gossips about itself. It is JSON-encoded into
// memberlist's node metadata; the encoding must fit in 512 bytes.
type Meta struct {
	// Role is the node's job in the cluster: coordinator, ps or worker.
	Role string `json:"role"`
	// Name is the node's unique name; Start fills it from Config.Name.
	Name string `json:"name"`
	// GRPCAddr is the host:port where the node serves gRPC, if it does.
	GRPCAddr string `json:"grpc"`
	// Shard is the parameter-server shard a ps node serves (0 for others).
	Shard int `json:"shard"`
}

// wireMeta is the JSON that a node gossips: Meta's fields plus, while the
// node is leaving, "leaving":true. A leaving node gossips the flag before
// it leaves, so that the others can tell a clean leave from a failure.
type wireMeta struct {
	Meta
	Leaving bool `json:"leaving,omitempty"`
}

// encodeMeta returns the JSON of w, or an error wrapping ErrMetaTooLarge
// when it does not fit in node metadata.
func encodeMeta(w wireMeta) ([]byte, error) {
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("encode node metadata: %w", err)
	}
	if len(b) > maxMetaBytes {
		return nil, fmt.Errorf("%w: %d bytes of JSON, limit %d; shorten the role, name or "+
			"gRPC address", ErrMetaTooLarge, len(b), maxMetaBytes)
	}
	return b, nil
}

// decodeMeta reads the metadata another node gossips. Unknown JSON fields
// are ignored so that newer nodes may add some.
func decodeMeta(b []byte) (wireMeta, error) {
	var w wireMeta
	if len(b) > maxMetaBytes {
		return w, fmt.Errorf("node metadata is %d bytes, limit %d", len(b), maxMetaBytes)
	}
	if len(b) == 0 {
		return w, errors.New("node metadata is empty")
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return wireMeta{}, fmt.Errorf("decode node metadata: %w", err)
	}
	return w, nil
}

// Profile names accepted in Config.Profile.
const (
	// ProfileLAN suits a data-centre network: memberlist's LAN timers.
	ProfileLAN = "lan"
	// ProfileLocal suits one machine (tests, loopback clusters): failures
	// are detected in a few seconds.
	ProfileLocal = "local"
)

// Config configures a Node. Build one from DefaultConfig.
type Config struct {
	// Name identifies the node in the cluster; it must be unique.
	Name string
	// BindAddr is the IP address to listen on for gossip (UDP and TCP).
	BindAddr string
	// BindPort is the gossip port; 0 lets the system pick one (read it back
	// with Node.LocalAddr). With 0 the advertised port is the bound one.
	BindPort int
	// AdvertiseAddr is the IP address other nodes use to reach this one;
	// empty means the bind address, or a private address of the host when
	// bound to 0.0.0.0.
	AdvertiseAddr string
	// AdvertisePort is the port other nodes use; 0 means BindPort.
	AdvertisePort int
	// Join lists seed addresses (host:port) of nodes already in the
	// cluster; empty means this node starts a new cluster.
	Join []string
	// SecretKey, 16, 24 or 32 bytes, encrypts all gossip (AES-128/192/256);
	// nil means no encryption. Every node of a cluster needs the same key.
	SecretKey []byte
	// Meta is gossiped to the other nodes. Meta.Name may be left empty; it
	// is then set to Name.
	Meta Meta
	// Profile picks the timers: ProfileLAN (the default when empty) or
	// ProfileLocal.
	Profile string
	// Logger receives this package's and memberlist's log lines; nil means
	// slog.Default().
	Logger *slog.Logger
	// OnJoin is called when another node joins (or comes back), OnLeave when
	// one leaves or is declared dead. They run in memberlist's event path
	// and must not block; nil means no call. The local node never appears.
	OnJoin, OnLeave func(Meta)
}

// DefaultConfig returns a Config that binds gossip to 0.0.0.0:7946 with the
// LAN profile and names the node after the host. Meta.Role still has to be
// set.
func DefaultConfig() Config {
	name, err := os.Hostname()
	if err != nil {
		name = ""
	}
	return Config{
		Name:     name,
		BindAddr: "0.0.0.0",
		BindPort: 7946,
		Profile:  ProfileLAN,
	}
}

// Validate reports every problem of c at once, each naming its field. The
// error wraps ErrInvalidConfig, and ErrMetaTooLarge when Meta is too large.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}

	if c.Name == "" {
		bad("name is empty: give every node a unique name")
	}
	if net.ParseIP(c.BindAddr) == nil {
		bad("bind address %q is not an IP address (use 0.0.0.0 for all interfaces)", c.BindAddr)
	}
	if c.BindPort < 0 || c.BindPort > 65535 {
		bad("bind port %d is outside 0..65535", c.BindPort)
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		bad("advertise address %q is not an IP address", c.AdvertiseAddr)
	}
	if c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		bad("advertise port %d is outside 0..65535", c.AdvertisePort)
	}
	for i, seed := range c.Join {
		if _, _, err := net.SplitHostPort(seed); err != nil {
			bad("join entry %d %q is not host:port: %v", i, seed, err)
		}
	}
	switch len(c.SecretKey) {
	case 0, 16, 24, 32:
	default:
		bad("secret key is %d bytes: it must be 16, 24 or 32 bytes (or none)", len(c.SecretKey))
	}
	if _, ok := profiles[c.Profile]; !ok && c.Profile != "" {
		bad("profile %q is unknown: use %q or %q", c.Profile, ProfileLAN, ProfileLocal)
	}
	errs = append(errs, c.validateMeta()...)

	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
}

// validateMeta checks the Meta fields and the size of their encoding.
func (c Config) validateMeta() []error {
	var errs []error
	m := c.Meta
	if m.Role == "" {
		errs = append(errs, errors.New("meta role is empty: set coordinator, ps or worker"))
	}
	if m.Name != "" && m.Name != c.Name {
		errs = append(errs, fmt.Errorf("meta name %q differs from node name %q: leave it "+
			"empty or make them equal", m.Name, c.Name))
	}
	if m.GRPCAddr != "" {
		if _, _, err := net.SplitHostPort(m.GRPCAddr); err != nil {
			errs = append(errs, fmt.Errorf("meta gRPC address %q is not host:port: %w",
				m.GRPCAddr, err))
		}
	}
	if m.Shard < 0 {
		errs = append(errs, fmt.Errorf("meta shard %d is negative", m.Shard))
	}
	if m.Name == "" {
		m.Name = c.Name
	}
	if _, err := encodeMeta(wireMeta{Meta: m}); err != nil {
		errs = append(errs, fmt.Errorf("meta: %w", err))
	}
	return errs
}

// profile holds the memberlist timers and the join policy of one profile.
type profile struct {
	// memberlist returns the base memberlist configuration.
	memberlist func() *memberlist.Config
	// joinAttempts is how many times the seeds are tried in all.
	joinAttempts int
	// joinBackoff is the first pause between attempts; it doubles each time.
	joinBackoff time.Duration
	// joinDeadline bounds all attempts together.
	joinDeadline time.Duration
}

var profiles = map[string]profile{
	ProfileLAN: {
		memberlist: func() *memberlist.Config {
			c := memberlist.DefaultLANConfig()
			// A restarted node keeps its name but may get a new address
			// (a rescheduled container): let it take its name back.
			c.DeadNodeReclaimTime = 30 * time.Second
			return c
		},
		joinAttempts: 5,
		joinBackoff:  time.Second,
		joinDeadline: time.Minute,
	},
	ProfileLocal: {
		memberlist:   localMemberlistConfig,
		joinAttempts: 4,
		joinBackoff:  100 * time.Millisecond,
		joinDeadline: 5 * time.Second,
	},
}

// localMemberlistConfig tightens memberlist's local timers further: on
// loopback a probe answers in microseconds, so a dead node is declared
// after about SuspicionMult * ProbeInterval = 1.5 s once a peer confirms
// the suspicion (at most six times that without confirmation).
func localMemberlistConfig() *memberlist.Config {
	c := memberlist.DefaultLocalConfig()
	c.ProbeInterval = 500 * time.Millisecond
	c.ProbeTimeout = 200 * time.Millisecond
	c.GossipInterval = 50 * time.Millisecond
	c.SuspicionMult = 3
	c.PushPullInterval = 5 * time.Second
	c.GossipToTheDeadTime = 5 * time.Second
	c.DeadNodeReclaimTime = time.Second
	return c
}
