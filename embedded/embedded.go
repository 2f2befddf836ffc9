// Package embedded runs a whole skipgrid job in one process: a coordinator, parameter-server
// shards and workers, talking through the same gRPC service interfaces as a distributed
// cluster. With TransportInMem the clients call the servers directly; with TransportGRPC every
// call crosses a real gRPC connection on loopback.
//
// Only wiring code (the skipgrid command and tests) imports this package: it is the one place
// where the roles meet.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/skipgrid/skipgrid/coordinator"
	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/ps"
	"github.com/skipgrid/skipgrid/rpc"
	"github.com/skipgrid/skipgrid/worker"
)

// Transport selects how the embedded nodes reach one another.
type Transport string

const (
	// TransportInMem calls servers directly: no serialisation, no sockets.
	TransportInMem Transport = "inmem"
	// TransportGRPC serves every node on a loopback port and calls it over gRPC.
	TransportGRPC Transport = "grpc"
)

// Config describes an embedded cluster.
type Config struct {
	// Coordinator is the job; its NumPS is the number of shards started.
	Coordinator coordinator.Config
	// Workers is the number of workers, each with Threads training goroutines.
	Workers int
	Threads int
	// Transport defaults to TransportInMem.
	Transport Transport
	// StopGrace is how long workers may take to stop once the coordinator is done.
	StopGrace time.Duration
	Logger    *slog.Logger
	// CheckpointDir is where the PS shards write their checkpoints (and restore the newest
	// at start, for a resumed job); empty means no checkpoints.
	CheckpointDir string
}

// Validate reports every invalid field at once.
func (c Config) Validate() error {
	var errs []error
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers: %d, want at least 1", c.Workers))
	}
	if c.Threads < 1 {
		errs = append(errs, fmt.Errorf("threads: %d, want at least 1", c.Threads))
	}
	if c.Transport != TransportInMem && c.Transport != TransportGRPC {
		errs = append(errs, fmt.Errorf("transport: %q, want inmem or grpc", c.Transport))
	}
	if err := c.Coordinator.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Cluster is a started embedded cluster.
type Cluster struct {
	cfg     Config
	log     *slog.Logger
	coord   *coordinator.Coordinator
	shards  []*ps.Server
	servers []*grpc.Server
	addrs   []string // PS addresses, by shard
	client  skipgridpb.CoordinatorClient
	dial    func(ctx context.Context, addr string) (skipgridpb.ParameterServerClient, error)
}

// New builds the nodes and, for TransportGRPC, starts their servers on loopback.
func New(cfg Config) (*Cluster, error) {
	if cfg.Transport == "" {
		cfg.Transport = TransportInMem
	}
	if cfg.StopGrace == 0 {
		cfg.StopGrace = 30 * time.Second
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("embedded cluster: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	c := &Cluster{cfg: cfg, log: log}

	for i := range cfg.Coordinator.NumPS {
		pcfg := ps.DefaultConfig()
		pcfg.Shard, pcfg.Name, pcfg.Logger = i, fmt.Sprintf("ps-%d", i), log
		pcfg.CheckpointDir = cfg.CheckpointDir
		s, err := ps.New(pcfg)
		if err != nil {
			return nil, err
		}
		c.shards = append(c.shards, s)
	}

	if err := c.wire(); err != nil {
		c.stopServers()
		return nil, err
	}
	return c, nil
}

// wire builds the coordinator and the clients of the chosen transport.
func (c *Cluster) wire() error {
	byAddr := map[string]skipgridpb.ParameterServerClient{}
	for i, s := range c.shards {
		addr := fmt.Sprintf("inmem:ps-%d", i)
		if c.cfg.Transport == TransportGRPC {
			srv := grpc.NewServer(rpc.ServerOptions()...)
			skipgridpb.RegisterParameterServerServer(srv, s)
			var err error
			if addr, err = c.serve(srv); err != nil {
				return err
			}
		}
		c.addrs = append(c.addrs, addr)
		byAddr[addr] = rpc.InMemPS{Server: s}
	}

	c.dial = rpc.PSDialer()
	if c.cfg.Transport == TransportInMem {
		c.dial = func(_ context.Context, addr string) (skipgridpb.ParameterServerClient, error) {
			cl, ok := byAddr[addr]
			if !ok {
				return nil, fmt.Errorf("no in-memory shard at %q", addr)
			}
			return cl, nil
		}
	}

	coord, err := coordinator.New(c.cfg.Coordinator, c.dial)
	if err != nil {
		return err
	}
	c.coord = coord
	c.client = rpc.InMemCoordinator{Server: coord}
	if c.cfg.Transport == TransportGRPC {
		srv := grpc.NewServer(rpc.ServerOptions()...)
		skipgridpb.RegisterCoordinatorServer(srv, coord)
		addr, err := c.serve(srv)
		if err != nil {
			return err
		}
		conn, err := rpc.Dial(addr, nil)
		if err != nil {
			return err
		}
		c.client = skipgridpb.NewCoordinatorClient(conn)
	}
	return nil
}

// serve starts srv on a free loopback port and returns its address.
func (c *Cluster) serve(srv *grpc.Server) (string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("listen on loopback: %w", err)
	}
	c.servers = append(c.servers, srv)
	go func() {
		if err := srv.Serve(lis); err != nil {
			c.log.Error("grpc server stopped", "addr", lis.Addr(), "err", err)
		}
	}()
	return lis.Addr().String(), nil
}

// Coordinator exposes the job's coordinator, for status and progress.
func (c *Cluster) Coordinator() *coordinator.Coordinator { return c.coord }

// Run registers the shards, runs the job to its end and stops every node.
func (c *Cluster) Run(ctx context.Context) (*coordinator.Result, error) {
	defer c.stopServers()
	for i, addr := range c.addrs {
		_, err := c.client.Register(ctx, &skipgridpb.RegisterRequest{
			Role: skipgridpb.Role_ROLE_PS, Name: fmt.Sprintf("ps-%d", i), Shard: uint32(i),
			Address: addr,
		})
		if err != nil {
			return nil, fmt.Errorf("register shard %d: %w", i, err)
		}
	}

	wctx, cancelWorkers := context.WithCancel(ctx)
	defer cancelWorkers()
	var workers errgroup.Group
	for i := range c.cfg.Workers {
		wcfg := worker.DefaultConfig(fmt.Sprintf("worker-%d", i))
		wcfg.Threads, wcfg.Logger = c.cfg.Threads, c.log
		w, err := worker.New(wcfg, c.client, c.dial)
		if err != nil {
			return nil, err
		}
		workers.Go(func() error { return w.Run(wctx) })
	}

	res, err := c.coord.Run(ctx)

	// Workers see TASK_STOP on their next lease; give them a bounded time to notice.
	done := make(chan error, 1)
	go func() { done <- workers.Wait() }()
	select {
	case werr := <-done:
		if err == nil && werr != nil {
			err = fmt.Errorf("worker: %w", werr)
		}
	case <-time.After(c.cfg.StopGrace):
		c.log.Warn("workers did not stop in time; cancelling them", "grace", c.cfg.StopGrace)
		cancelWorkers()
		<-done
	}
	return res, err
}

func (c *Cluster) stopServers() {
	for _, s := range c.servers {
		s.Stop()
	}
	c.servers = nil
}
