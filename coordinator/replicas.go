package coordinator

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// Replication. With Config.Replicas above 1 every shard has that many copies, each a PS
// node registered with the shard index and its replica index. The coordinator configures
// every copy identically (rows start from the seed and the row id, so the copies start
// equal) and names the backups to the serving copy, the primary, which forwards every push
// and acknowledges it only once each backup applied it. Workers talk to primaries only.
//
// The train loop watches the backups as it watches primaries. A backup that stops
// answering for FailoverAfter, or comes back as a new process (its rows are behind), is
// lost: the primary is told to stop forwarding to it. A primary that stops answering for
// FailoverAfter is replaced by its first live backup, which holds every update the primary
// acknowledged; workers learn the new address from GetJob when their next call fails.
//
// TODO(skipgrid): a shard that lost a copy runs with fewer until the job ends, because a
// new or restarted copy would need the primary's rows streamed to it while pushes go on
// (re-replication), which the PS protocol has no call for yet.
// TODO(skipgrid): a primary cut off from the coordinator but not from the workers keeps
// answering their pulls with rows that miss the new primary's pushes until their next
// failed call, because nothing fences the old primary; updates are not lost, reads are
// stale for that while.
// TODO(skipgrid): only primaries write checkpoints, because the checkpoint record keeps one
// acknowledgement per shard; a backup that takes over writes its own from then on.

// psBackup is a copy of a shard that does not serve it.
type psBackup struct {
	Replica    int    `json:"replica"`
	Name       string `json:"name"`
	Address    string `json:"address"`
	Registered bool   `json:"registered"`
	// Lost is set once the copy stopped answering, restarted, or served the shard before a
	// failover: its rows are behind and this job does not use it again.
	Lost bool `json:"lost"`
	// Incarnation, FailingSince and Pushes are from its Stats answers, as for a primary.
	Incarnation  uint64    `json:"incarnation"`
	FailingSince time.Time `json:"failing_since"`
	Pushes       uint64    `json:"pushes"`
}

// missingBackup reports whether a copy of the shard has yet to register.
func (p *psShard) missingBackup() bool {
	for _, b := range p.Backups {
		if !b.Registered && !b.Lost {
			return true
		}
	}
	return false
}

// missingCopies names the copies that have yet to register, as "shard 0 (replica 0),
// shard 1 (replica 1)".
func (c *core) missingCopies() string {
	var names []string
	for s, p := range c.PS {
		if !p.Registered {
			names = append(names, fmt.Sprintf("shard %d (replica %d)", s, p.Replica))
		}
		for _, b := range p.Backups {
			if !b.Registered && !b.Lost {
				names = append(names, fmt.Sprintf("shard %d (replica %d)", s, b.Replica))
			}
		}
	}
	return strings.Join(names, ", ")
}

// live returns the indexes in p.Backups of the registered copies that are not lost.
func (p *psShard) live() []int {
	var idx []int
	for i, b := range p.Backups {
		if b.Registered && !b.Lost {
			idx = append(idx, i)
		}
	}
	return idx
}

// backupAddrs returns the addresses of the live backups, in replica order.
func (p *psShard) backupAddrs() []string {
	var addrs []string
	for _, i := range p.live() {
		addrs = append(addrs, p.Backups[i].Address)
	}
	return addrs
}

// registerCopy records copy replica of PS shard idx at addr: the serving copy goes through
// registerPS, a backup is recorded here.
func (c *core) registerCopy(name string, idx, replica uint32, addr string) error {
	copies := max(c.set.Replicas, 1)
	if int64(idx) < int64(len(c.PS)) && int64(replica) >= int64(copies) {
		return fmt.Errorf("%w: PS %q gives replica %d of shard %d, but the job keeps %d "+
			"copies of each shard (replicas 0..%d)", errBadRequest, name, replica, idx, copies,
			copies-1)
	}
	if int64(idx) >= int64(len(c.PS)) || int(replica) == c.PS[idx].Replica {
		return c.registerPS(name, idx, addr)
	}
	if addr == "" {
		return fmt.Errorf("%w: PS %q (shard %d, replica %d) gives no address", errBadRequest,
			name, idx, replica)
	}

	p := &c.PS[idx]
	i := slices.IndexFunc(p.Backups, func(b psBackup) bool { return b.Replica == int(replica) })
	b := &p.Backups[i]
	configured := c.Phase >= skipgridpb.Phase_PHASE_TRAINING
	switch {
	case b.Lost:
		c.log.Warn("lost copy of PS shard registered again; its rows are behind, so this "+
			"job does not use it", "shard", idx, "replica", replica, "name", name,
			"address", addr)
	case b.Registered && configured:
		b.Lost = true
		c.log.Warn("backup of PS shard restarted; its rows are behind, so it is dropped and "+
			"the shard keeps fewer copies", "shard", idx, "replica", replica, "name", name,
			"address", addr, "copies_left", 1+len(p.live()))
	default:
		if !b.Registered {
			c.log.Info("PS backup registered", "shard", idx, "replica", replica,
				"name", name, "address", addr)
		}
		b.Name, b.Address, b.Registered = name, addr, true
	}
	return nil
}

// failover makes the first live backup of shard s its primary and records the event; the
// old primary becomes a lost copy. It returns the new primary's address.
func (c *core) failover(s int, now time.Time) string {
	p, w := &c.PS[s], c.watch(s)
	i := p.live()[0]
	b := p.Backups[i]
	old := psBackup{Replica: p.Replica, Name: p.Name, Address: p.Address, Registered: true,
		Lost: true, Incarnation: w.Incarnation, Pushes: w.LastPushes}
	p.Backups = append(slices.Delete(p.Backups, i, i+1), old)
	p.Name, p.Address, p.Replica = b.Name, b.Address, b.Replica

	down := w.FailingSince
	*w = shardWatch{Incarnation: b.Incarnation, LastAt: now, LastPushes: b.Pushes}
	ev := RecoveryEvent{Shard: s, At: now, Failover: true, FailoverFrom: old.Address,
		FailoverTo: b.Address, PrimaryPushesLastPoll: old.Pushes, BackupPushes: b.Pushes,
		DownSince: down, RecoverySeconds: now.Sub(down).Seconds()}
	r := &c.Durable.Recovery
	r.Failovers++
	r.Events = append(r.Events, ev)
	c.log.Warn("PS shard failed over to its backup; no acknowledged update is lost",
		"shard", s, "from", old.Address, "to", b.Address, "replica", b.Replica,
		"primary_pushes_last_poll", old.Pushes, "backup_pushes", b.Pushes,
		"copies_left", 1+len(p.live()), "recovery_seconds", ev.RecoverySeconds)
	return b.Address
}

// copyLinks are the coordinator's clients for backups and the backup lists it last sent to
// each primary.
type copyLinks struct {
	mu      sync.Mutex
	clients map[string]skipgridpb.ParameterServerClient
	sent    map[int][]string
}

// told records the backups shard s's primary was last told of.
func (l *copyLinks) told(s int, addrs []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sent == nil {
		l.sent = make(map[int][]string)
	}
	l.sent[s] = addrs
}

// link returns a client for addr, dialling it on first use.
func (c *Coordinator) link(ctx context.Context, set *shardSet, addr string) (
	skipgridpb.ParameterServerClient, error) {
	set.copies.mu.Lock()
	defer set.copies.mu.Unlock()
	if cl, ok := set.copies.clients[addr]; ok {
		return cl, nil
	}
	cl, err := c.dial(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("dial PS copy at %s: %w", addr, err)
	}
	if set.copies.clients == nil {
		set.copies.clients = make(map[string]skipgridpb.ParameterServerClient)
	}
	set.copies.clients[addr] = cl
	return cl, nil
}

// configureBackups configures every registered backup of shard s with req, the request
// its primary was configured with, and names them to the primary.
func (c *Coordinator) configureBackups(ctx context.Context, set *shardSet, s int,
	req *skipgridpb.ConfigureRequest) error {
	var backups []psBackup
	c.locked(func(co *core, _ time.Time) {
		for _, i := range co.PS[s].live() {
			backups = append(backups, co.PS[s].Backups[i])
		}
	})
	for _, b := range backups {
		cl, err := c.link(ctx, set, b.Address)
		if err != nil {
			return err
		}
		what := fmt.Sprintf("configure backup %d of PS shard %d at %s", b.Replica, s,
			b.Address)
		if _, err := c.configureCopy(ctx, cl, what, req, len(set.rows[s])); err != nil {
			return err
		}
	}
	return c.sendBackups(ctx, set, s)
}

// sendBackups names shard s's live backups to its primary, unless it was told the same
// list already.
func (c *Coordinator) sendBackups(ctx context.Context, set *shardSet, s int) error {
	var want []string
	c.locked(func(co *core, _ time.Time) { want = co.PS[s].backupAddrs() })
	set.copies.mu.Lock()
	sent, ok := set.copies.sent[s]
	set.copies.mu.Unlock()
	if ok && slices.Equal(sent, want) {
		return nil
	}
	if !ok && len(want) == 0 && c.cfg.Replicas <= 1 {
		return nil
	}

	what := fmt.Sprintf("name backups %v to PS shard %d at %s", want, s, set.addrs[s])
	err := c.retry(ctx, what, func(ctx context.Context) error {
		_, err := set.clients[s].SetBackups(ctx, &skipgridpb.SetBackupsRequest{
			JobId: c.cfg.JobID, Addresses: want})
		return err
	})
	if err != nil {
		return err
	}
	set.copies.told(s, want)
	c.log.Info("PS shard forwards its pushes to its backups", "shard", s,
		"primary", set.addrs[s], "backups", want)
	return nil
}

// watchBackups asks every live backup for its Stats and drops those silent for
// FailoverAfter or restarted, then brings the primaries' backup lists up to date.
func (c *Coordinator) watchBackups(ctx context.Context, set *shardSet) error {
	if c.cfg.Replicas <= 1 {
		return nil
	}
	type probe struct {
		s, i int
		addr string
	}
	var probes []probe
	c.locked(func(co *core, _ time.Time) {
		for s := range co.PS {
			for _, i := range co.PS[s].live() {
				probes = append(probes, probe{s, i, co.PS[s].Backups[i].Address})
			}
		}
	})
	resps := make([]*skipgridpb.StatsResponse, len(probes))
	errs := make([]error, len(probes))
	var wg sync.WaitGroup
	for k, p := range probes {
		wg.Go(func() {
			cl, err := c.link(ctx, set, p.addr)
			if err != nil {
				errs[k] = err
				return
			}
			cctx, cancel := context.WithTimeout(ctx, watchTimeout)
			defer cancel()
			resps[k], errs[k] = cl.Stats(cctx, &skipgridpb.StatsRequest{})
		})
	}
	wg.Wait()

	c.locked(func(co *core, now time.Time) {
		for k, p := range probes {
			b := &co.PS[p.s].Backups[p.i]
			if b.Address != p.addr || b.Lost {
				continue
			}
			c.judgeBackup(co, p.s, b, resps[k], errs[k], now)
		}
	})
	for s := range set.clients {
		if err := c.sendBackups(ctx, set, s); err != nil {
			c.log.Warn("PS shard not told of its backups; trying again", "shard", s,
				"err", err)
		}
	}
	return nil
}

// judgeBackup acts on one Stats call to backup b of shard s; c.mu is held.
func (c *Coordinator) judgeBackup(co *core, s int, b *psBackup,
	resp *skipgridpb.StatsResponse, err error, now time.Time) {
	switch {
	case err != nil:
		if b.FailingSince.IsZero() {
			b.FailingSince = now
			c.log.Warn("PS backup does not answer", "shard", s, "replica", b.Replica,
				"address", b.Address, "err", err, "dropped_after", c.cfg.FailoverAfter)
		}
		if now.Sub(b.FailingSince) > c.cfg.FailoverAfter {
			b.Lost = true
			c.log.Warn("PS backup lost; the shard keeps fewer copies", "shard", s,
				"replica", b.Replica, "address", b.Address,
				"copies_left", 1+len(co.PS[s].live()))
		}
	case b.Incarnation != 0 && resp.GetIncarnation() != b.Incarnation:
		b.Lost = true
		c.log.Warn("backup of PS shard restarted; its rows are behind, so it is dropped",
			"shard", s, "replica", b.Replica, "address", b.Address)
	default:
		b.Incarnation, b.Pushes, b.FailingSince = resp.GetIncarnation(), resp.GetPushes(),
			time.Time{}
	}
}

// promote replaces silent shard s's primary with its first live backup: the backup is told
// its own backups first, then the core records the move, which workers follow.
func (c *Coordinator) promote(ctx context.Context, set *shardSet, s int) error {
	var next psBackup
	var rest []string
	c.locked(func(co *core, _ time.Time) {
		p := &co.PS[s]
		live := p.live()
		next = p.Backups[live[0]]
		for _, i := range live[1:] {
			rest = append(rest, p.Backups[i].Address)
		}
	})
	cl, err := c.link(ctx, set, next.Address)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("name backups %v to PS shard %d's new primary at %s", rest, s,
		next.Address)
	err = c.retry(ctx, what, func(ctx context.Context) error {
		_, err := cl.SetBackups(ctx, &skipgridpb.SetBackupsRequest{JobId: c.cfg.JobID,
			Addresses: rest})
		return err
	})
	if err != nil {
		return err
	}

	c.locked(func(co *core, now time.Time) { co.failover(s, now) })
	set.addrs[s], set.clients[s] = next.Address, cl
	set.copies.told(s, rest)
	return c.saveState(true)
}
