package member

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Node is this process's membership in the gossip cluster. Its methods are
// safe for concurrent use.
type Node struct {
	ml     *memberlist.Memberlist
	events *events
	meta   Meta // as gossiped, Name filled in
	roster *roster
	log    *slog.Logger
	addr   string // advertised gossip address, fixed at Start

	// mu orders Leave and Shutdown: memberlist panics on a Leave after
	// Shutdown.
	mu   sync.Mutex
	down bool // guarded by mu
}

// Start validates cfg, starts gossip on the bind address and, when cfg.Join
// is not empty, joins the cluster through those seeds. The seeds are tried
// a few times with growing pauses, within a deadline set by the profile
// (5 s for "local", a minute for "lan"); a refusal over the secret key is
// not retried. On failure nothing is left running and the error names the
// seeds; it wraps ErrJoin, and ErrGossipKey when keys differ.
func Start(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Profile == "" {
		cfg.Profile = ProfileLAN
	}
	if cfg.Meta.Name == "" {
		cfg.Meta.Name = cfg.Name
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}

	n, err := create(cfg, logger)
	if err != nil {
		return nil, err
	}
	if len(cfg.Join) == 0 {
		n.log.Info("gossip started a new cluster", "node", cfg.Name, "addr", n.addr)
		return n, nil
	}

	if err := n.join(cfg.Join, profiles[cfg.Profile]); err != nil {
		if serr := n.Shutdown(); serr != nil {
			err = errors.Join(err, fmt.Errorf("shut down after failed join: %w", serr))
		}
		return nil, err
	}
	return n, nil
}

// create builds the memberlist configuration and starts its listeners.
// base is the caller's logger, before any component attribute.
func create(cfg Config, base *slog.Logger) (*Node, error) {
	meta, err := encodeMeta(wireMeta{Meta: cfg.Meta})
	if err != nil {
		return nil, err
	}
	logger := base.With("component", "member")
	ev := &events{
		self:    cfg.Name,
		roster:  newRoster(),
		log:     logger,
		onJoin:  cfg.OnJoin,
		onLeave: cfg.OnLeave,
		now:     time.Now,
	}
	ev.meta.Store(&meta)

	mc := profiles[cfg.Profile].memberlist()
	mc.Name = cfg.Name
	mc.BindAddr = cfg.BindAddr
	mc.BindPort = cfg.BindPort
	mc.AdvertiseAddr = cfg.AdvertiseAddr
	mc.AdvertisePort = cfg.AdvertisePort
	if cfg.AdvertisePort == 0 {
		mc.AdvertisePort = cfg.BindPort
	}
	if len(cfg.SecretKey) > 0 {
		// Copied so that a caller reusing its slice cannot change the key.
		mc.SecretKey = append([]byte(nil), cfg.SecretKey...)
	}
	mc.Delegate = ev
	mc.Events = ev
	mc.Logger = newMemberlistLogger(base)
	mc.LogOutput = nil

	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("start gossip on %s:%d: %w", cfg.BindAddr, cfg.BindPort, err)
	}
	return &Node{
		ml:     ml,
		events: ev,
		meta:   cfg.Meta,
		roster: ev.roster,
		log:    logger,
		addr:   ml.LocalNode().Address(),
	}, nil
}

// join contacts the seeds until one answers, the attempts run out or the
// profile's deadline passes.
func (n *Node) join(seeds []string, p profile) error {
	deadline := time.Now().Add(p.joinDeadline)
	pause := p.joinBackoff
	var err error

	for attempt := 1; attempt <= p.joinAttempts; attempt++ {
		var contacted int
		contacted, err = n.ml.Join(seeds)
		if err == nil {
			n.log.Info("gossip joined the cluster", "seeds", seeds, "contacted", contacted,
				"attempt", attempt, "addr", n.addr)
			return nil
		}

		if isKeyError(err) {
			return fmt.Errorf("%w: %w: seeds %s refused the gossip (attempt %d): %v; give "+
				"every node the same secret key, or none to all", ErrJoin, ErrGossipKey,
				strings.Join(seeds, ", "), attempt, err)
		}
		if attempt == p.joinAttempts || time.Now().Add(pause).After(deadline) {
			return fmt.Errorf("%w: seeds %s did not answer after %d attempts: %v; check that "+
				"a seed is running and that its gossip port is reachable", ErrJoin,
				strings.Join(seeds, ", "), attempt, err)
		}

		n.log.Warn("gossip join failed; retrying", "seeds", seeds, "attempt", attempt,
			"pause", pause, "err", err)
		time.Sleep(pause)
		pause *= 2
	}
	return fmt.Errorf("%w: seeds %s: %v", ErrJoin, strings.Join(seeds, ", "), err)
}

// keyErrorPhrases are the words that memberlist's errors use when gossip
// encryption does not match ("No installed keys could decrypt the
// message", "remote state is encrypted and encryption is not configured",
// "encryption is configured but remote state is not encrypted").
var keyErrorPhrases = []string{"decrypt", "encrypt"}

// isKeyError tells whether a join error comes from mismatched keys.
//
// TODO(skipgrid): match a typed error instead of text once memberlist
// exports one, because a rewording there would silently drop the hint.
func isKeyError(err error) bool {
	msg := strings.ToLower(err.Error())
	for _, p := range keyErrorPhrases {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// Members returns every node this node knows, itself included, sorted by
// name: alive nodes, and dead or left ones for ten minutes after they went.
//
// TODO(skipgrid): report "suspect" too, because a node under suspicion is
// listed as alive; memberlist shows suspicion only through node pointers
// that it keeps writing after it unlocks, which cannot be read safely.
func (n *Node) Members() []Member {
	return n.roster.list()
}

// LocalAddr returns the gossip address (host:port) that other nodes use to
// reach this one; it is the one to give as a seed.
func (n *Node) LocalAddr() string {
	return n.addr
}

// Leave tells the cluster that this node is going, so that the others see
// it as left rather than failed. It first gossips a leaving flag in its
// metadata (up to half of timeout), then the leave itself, waiting up to
// the rest of timeout for it to reach a peer. The node keeps answering
// gossip until Shutdown, which the caller must still call. timeout must be
// positive.
func (n *Node) Leave(timeout time.Duration) error {
	n.mu.Lock()
	defer n.mu.Unlock()

	if n.down {
		return fmt.Errorf("leave: %w", ErrShutdown)
	}
	if timeout <= 0 {
		return fmt.Errorf("leave: timeout %v is not positive", timeout)
	}
	deadline := time.Now().Add(timeout)

	// A peer that misses the flag still sees the node go, as failed.
	if err := n.announceLeaving(timeout / 2); err != nil {
		n.log.Warn("gossip of the leaving flag incomplete; peers may report a failure",
			"err", err)
	}
	if err := n.ml.Leave(max(time.Until(deadline), time.Millisecond)); err != nil {
		return fmt.Errorf("leave the gossip cluster within %v: %w", timeout, err)
	}
	n.log.Info("gossip left the cluster", "addr", n.addr)
	return nil
}

// announceLeaving gossips the local metadata with the leaving flag set.
func (n *Node) announceLeaving(timeout time.Duration) error {
	b, err := encodeMeta(wireMeta{Meta: n.meta, Leaving: true})
	if err != nil {
		return fmt.Errorf("metadata with the leaving flag: %w", err)
	}
	n.events.meta.Store(&b)
	if err := n.ml.UpdateNode(timeout); err != nil {
		return fmt.Errorf("gossip the leaving flag within %v: %w", timeout, err)
	}
	return nil
}

// Shutdown stops gossip and closes the listeners without telling the
// cluster (call Leave first for a clean exit). Calling it again does
// nothing.
func (n *Node) Shutdown() error {
	n.mu.Lock()
	defer n.mu.Unlock()

	if n.down {
		return nil
	}
	n.down = true
	if err := n.ml.Shutdown(); err != nil {
		return fmt.Errorf("shut down gossip: %w", err)
	}
	n.log.Debug("gossip shut down", "addr", n.addr)
	return nil
}
