package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skipgrid/skipgrid/coordinator"
	"github.com/skipgrid/skipgrid/member"
	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/ps"
	"github.com/skipgrid/skipgrid/rpc"
	"github.com/skipgrid/skipgrid/worker"
)

// addNodeFlags declares what every role of a multi-process cluster shares.
func addNodeFlags(fs *pflag.FlagSet, name string) {
	fs.String("config", "", "configuration file (YAML, TOML or JSON; keys as the flags)")
	fs.String("name", name, "node name, unique in the cluster")
	fs.String("gossip-addr", "0.0.0.0:7946", "memberlist bind address host:port")
	fs.String("gossip-advertise", "", "host:port other nodes reach this node's gossip at; "+
		"a host name resolves to this host's own address among the name's")
	fs.StringSlice("join", nil, "gossip seeds host:port (empty: start a new cluster)")
	fs.String("gossip-key", "", "base64 gossip encryption key (16, 24 or 32 bytes)")
	fs.String("gossip-profile", "lan", "memberlist timers: lan, or local for one machine")
	addSecurityFlags(fs)
}

// startMember joins the gossip cluster with the node flags.
func startMember(v *viper.Viper, log *slog.Logger, meta member.Meta,
	onLeave func(member.Meta)) (*member.Node, error) {
	cfg := member.DefaultConfig()
	cfg.Name, cfg.Meta, cfg.Logger, cfg.OnLeave = meta.Name, meta, log, onLeave
	cfg.Profile = v.GetString("gossip-profile")
	host, port, err := splitHostPort(v.GetString("gossip-addr"), "--gossip-addr")
	if err != nil {
		return nil, err
	}
	cfg.BindAddr, cfg.BindPort = host, port
	if adv := v.GetString("gossip-advertise"); adv != "" {
		if cfg.AdvertiseAddr, cfg.AdvertisePort, err = advertiseAddr(adv); err != nil {
			return nil, err
		}
	}
	cfg.Join = v.GetStringSlice("join")
	if k := v.GetString("gossip-key"); k != "" {
		if cfg.SecretKey, err = base64.StdEncoding.DecodeString(k); err != nil {
			return nil, fmt.Errorf("--gossip-key: not base64: %w", err)
		}
	}
	return member.Start(cfg)
}

// advertiseTimeout bounds the wait for a --gossip-advertise name to resolve.
const advertiseTimeout = time.Minute

// advertiseAddr reads --gossip-advertise: an IP or a host name (a compose or Swarm service
// name), resolved to this host's own address among the name's.
func advertiseAddr(adv string) (string, int, error) {
	host, port, err := splitHostPort(adv, "--gossip-advertise")
	if err != nil {
		return "", 0, err
	}
	local, err := member.LocalIPs()
	if err != nil {
		return "", 0, fmt.Errorf("--gossip-advertise: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), advertiseTimeout)
	defer cancel()
	ip, err := member.AdvertiseIP(ctx, net.DefaultResolver, host, local)
	if err != nil {
		return "", 0, fmt.Errorf("--gossip-advertise: %w", err)
	}
	return ip, port, nil
}

func splitHostPort(addr, flag string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%s %q: %w", flag, addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("%s %q: port: %w", flag, addr, err)
	}
	return host, port, nil
}

// serveGRPC listens on addr and serves srv until the process stops it.
func serveGRPC(srv *grpc.Server, addr string, log *slog.Logger) (net.Listener, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	go func() {
		if err := srv.Serve(lis); err != nil {
			log.Error("grpc server stopped", "err", err)
		}
	}()
	return lis, nil
}

// serveHTTP listens on addr and serves h until the returned stop is called. Listening
// happens at once, so that a busy port is an error of the command rather than a log line.
func serveHTTP(addr, what string, h http.Handler, log *slog.Logger) (stop func(), err error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listen %s: %w", what, addr, err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "serving", what, "err", err)
		}
	}()
	log.Info("serving http", "serving", what, "addr", lis.Addr().String())
	return func() { _ = hs.Close() }, nil
}

// metricsHandler serves reg's metrics at /metrics.
func metricsHandler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// newRegistry returns a metrics registry with the Go runtime's and the process's metrics.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(
		collectors.ProcessCollectorOpts{}))
	return reg
}

// gossipMembers adapts the gossip node's member list for the coordinator's status page; it
// lists nothing until node is set.
func gossipMembers(node *atomic.Pointer[member.Node]) func() []coordinator.Member {
	return func() []coordinator.Member {
		n := node.Load()
		if n == nil {
			return nil
		}
		ms := n.Members()
		out := make([]coordinator.Member, 0, len(ms))
		for _, m := range ms {
			out = append(out, coordinator.Member{Name: m.Name, Role: m.Role, Addr: m.Addr,
				GRPCAddr: m.GRPCAddr, Shard: m.Shard, State: m.State})
		}
		return out
	}
}

// roleSetup is the common start of every role command: logger and layered config.
func roleSetup(cmd *cobra.Command) (*slog.Logger, *viper.Viper, error) {
	log, err := newLogger(cmd)
	if err != nil {
		return nil, nil, err
	}
	v, err := newViper(cmd)
	return log, v, err
}

func newCoordinatorCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "coordinator --corpus PATH... --out DIR --ps N [flags]",
		Short: "Run a job's coordinator in a multi-process cluster",
		RunE:  runCoordinator,
	}
	fs := cmd.Flags()
	addJobFlags(fs)
	addFinetuneFlags(fs)
	addNodeFlags(fs, "coordinator")
	fs.Int("ps", 1, "parameter-server shards to wait for")
	fs.String("grpc-addr", "0.0.0.0:7070", "gRPC listen address")
	fs.String("http-addr", "0.0.0.0:7080", "status and /metrics listen address ('' for none)")
	fs.Duration("linger", 5*time.Second, "keep serving this long after the job ends, "+
		"so that workers and shards hear the end")
	fs.Duration("checkpoint-every", 0, "ask the PS shards for a checkpoint this often "+
		"(0: at the end of every epoch only)")
	fs.Duration("shard-down-timeout", coordinator.DefaultConfig().ShardDownTimeout,
		"fail the job when a PS shard does not answer for this long and has no backup")
	fs.Int("replicas", 1, "copies of every PS shard (start each with ps --replica 0..N-1); "+
		"a push is acknowledged once every copy has it, and a backup takes over a lost primary")
	fs.Duration("failover-after", coordinator.DefaultConfig().FailoverAfter,
		"let a backup take over when its primary does not answer for this long")
	return cmd
}

// coordinatorJob reads the coordinator's job: pretraining on --corpus, or fine-tuning on
// --train, whose pretrained vectors it reads here.
func coordinatorJob(cmd *cobra.Command, v *viper.Viper, args []string,
	log *slog.Logger) (coordinator.Config, error) {
	jc, err := jobConfig(v, v.GetInt("ps"), args)
	if v.GetString("train") == "" || err != nil {
		return jc, err
	}
	if err := readPretrained(&jc, cmd.Flags().Changed("dim"), log); err != nil {
		return jc, err
	}
	return jc, jc.Validate()
}

func runCoordinator(cmd *cobra.Command, args []string) error {
	log, v, err := roleSetup(cmd)
	if err != nil {
		return err
	}
	jc, err := coordinatorJob(cmd, v, args, log)
	if err != nil {
		return err
	}
	serverOpts, dialOpts, err := grpcSecurity(v, log)
	if err != nil {
		return err
	}
	var gossip atomic.Pointer[member.Node]
	jc.Logger, jc.Registerer, jc.Members = log, newRegistry(), gossipMembers(&gossip)
	// A coordinator started again on the same --out resumes the job saved there.
	jc.Resume = true
	jc.CheckpointEvery = v.GetDuration("checkpoint-every")
	jc.ShardDownTimeout = v.GetDuration("shard-down-timeout")
	jc.Replicas = v.GetInt("replicas")
	jc.FailoverAfter = v.GetDuration("failover-after")
	if err := jc.Validate(); err != nil {
		return err
	}
	dial := rpc.PSDialer(dialOpts...)
	coord, err := coordinator.New(jc, dial)
	if err != nil {
		return err
	}

	srv := grpc.NewServer(rpc.ServerOptions(serverOpts...)...)
	skipgridpb.RegisterCoordinatorServer(srv, coord)
	lis, err := serveGRPC(srv, v.GetString("grpc-addr"), log)
	if err != nil {
		return err
	}
	defer srv.Stop()
	if addr := v.GetString("http-addr"); addr != "" {
		stop, err := serveHTTP(addr, "status page and metrics", coord.Handler(), log)
		if err != nil {
			return err
		}
		defer stop()
	}

	name := v.GetString("name")
	node, err := startMember(v, log, member.Meta{Role: "coordinator", Name: name,
		GRPCAddr: lis.Addr().String()}, func(m member.Meta) {
		if p := coord.Status().Phase; p == "done" || p == "failed" {
			log.Info("node left after the job ended", "node", m.Name, "role", m.Role)
			return
		}
		log.Warn("gossip reports a node gone", "node", m.Name, "role", m.Role)
		coord.NodeFailed(m.Name)
	})
	if err != nil {
		return err
	}
	defer node.Shutdown()
	gossip.Store(node)
	log.Info("coordinator serving", "grpc", lis.Addr().String(), "http", v.GetString("http-addr"))

	cleanup := removeIfCreated(jc.OutDir)
	res, runErr := coord.Run(cmd.Context())
	if runErr != nil {
		cleanup()
	}
	_ = sleepCtx(cmd.Context(), v.GetDuration("linger"))
	_ = node.Leave(time.Second)
	if runErr != nil {
		return runErr
	}
	fmt.Fprintf(cmd.OutOrStdout(), "trained %d words in %.1fs (%.0f words/s); vectors in %s\n",
		res.TrainWords*uint64(len(res.Epochs)), res.PhaseSeconds.Training,
		res.TrainWordsPerSec, jc.OutDir)
	return nil
}

func newPSCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ps --shard N --coordinator HOST:PORT [flags]",
		Short: "Run one parameter-server shard of a multi-process cluster",
		Args:  cobra.NoArgs,
		RunE:  runPS,
	}
	fs := cmd.Flags()
	addNodeFlags(fs, "")
	fs.Int("shard", 0, "shard index, 0..N-1")
	fs.Int("replica", 0, "which copy of the shard this node holds when the job keeps "+
		"replicas: 0 starts as primary, 1.. as backups")
	fs.String("coordinator", "127.0.0.1:7070", "coordinator gRPC address")
	fs.String("grpc-addr", "0.0.0.0:7071", "gRPC listen address")
	fs.String("advertise", "", "address workers dial (default: the listen address)")
	fs.Duration("orphan-timeout", 2*time.Minute,
		"exit when the coordinator cannot be reached for this long")
	fs.String("http-addr", "", "Prometheus /metrics listen address ('' for none)")
	fs.String("checkpoint-dir", "", "write checkpoints here when the coordinator asks, and "+
		"restore the newest at start ('' for none)")
	return cmd
}

func runPS(cmd *cobra.Command, _ []string) error {
	log, v, err := roleSetup(cmd)
	if err != nil {
		return err
	}
	shardNo, replica := v.GetInt("shard"), v.GetInt("replica")
	if replica < 0 {
		return fmt.Errorf("--replica %d: must be 0 or more", replica)
	}
	name := v.GetString("name")
	if name == "" {
		name = fmt.Sprintf("ps-%d", shardNo)
		if replica > 0 {
			name = fmt.Sprintf("ps-%d-r%d", shardNo, replica)
		}
	}
	log = log.With("node", name)
	reg := newRegistry()
	pcfg := ps.DefaultConfig()
	pcfg.Shard, pcfg.Name, pcfg.Logger, pcfg.Registerer = shardNo, name, log, reg
	pcfg.CheckpointDir = v.GetString("checkpoint-dir")
	serverOpts, dialOpts, err := grpcSecurity(v, log)
	if err != nil {
		return err
	}
	pcfg.Dial = rpc.PSDialer(dialOpts...)
	server, err := ps.New(pcfg)
	if err != nil {
		return err
	}
	if addr := v.GetString("http-addr"); addr != "" {
		stop, err := serveHTTP(addr, "metrics", metricsHandler(reg), log)
		if err != nil {
			return err
		}
		defer stop()
	}
	srv := grpc.NewServer(rpc.ServerOptions(serverOpts...)...)
	skipgridpb.RegisterParameterServerServer(srv, server)
	lis, err := serveGRPC(srv, v.GetString("grpc-addr"), log)
	if err != nil {
		return err
	}
	defer srv.Stop()
	advertise := v.GetString("advertise")
	if advertise == "" {
		advertise = lis.Addr().String()
	}

	node, err := startMember(v, log, member.Meta{Role: "ps", Name: name, GRPCAddr: advertise,
		Shard: shardNo}, nil)
	if err != nil {
		return err
	}
	defer node.Shutdown()

	conn, err := rpc.Dial(v.GetString("coordinator"), nil, dialOpts...)
	if err != nil {
		return err
	}
	defer conn.Close()
	coord := skipgridpb.NewCoordinatorClient(conn)
	err = servePS(cmd.Context(), coord, &skipgridpb.RegisterRequest{
		Role: skipgridpb.Role_ROLE_PS, Name: name, Shard: uint32(shardNo), Address: advertise,
		Replica: uint32(replica),
	}, v.GetDuration("orphan-timeout"), log)
	if st, serr := server.Stats(cmd.Context(), &skipgridpb.StatsRequest{}); serr == nil {
		log.Info("shard totals", "pushes_applied", st.GetPushes(),
			"rows_applied", st.GetRowsPushed(), "pushes_forwarded", st.GetPushesForwarded(),
			"pushes_duplicate", st.GetPushesDuplicate(), "pushes_rejected",
			st.GetPushesRejected(), "forward_failures", st.GetForwardFailures())
	}
	_ = node.Leave(time.Second) // so that the others see a departure, not a failure
	return err
}

// servePS registers the shard and serves until the job ends or the coordinator is gone for
// longer than orphan.
func servePS(ctx context.Context, coord skipgridpb.CoordinatorClient,
	reg *skipgridpb.RegisterRequest, orphan time.Duration, log *slog.Logger) error {
	registered := false
	lastSeen := time.Now()
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var err error
		if !registered {
			_, err = coord.Register(cctx, reg)
			if err == nil {
				registered = true
				log.Info("registered with coordinator", "shard", reg.GetShard(),
					"replica", reg.GetReplica(), "address", reg.GetAddress())
			}
			if status.Code(err) == codes.InvalidArgument {
				cancel()
				return fmt.Errorf("the coordinator refused this shard: %s",
					status.Convert(err).Message())
			}
		}
		var job *skipgridpb.JobSpec
		if err == nil {
			job, err = coord.GetJob(cctx, &skipgridpb.GetJobRequest{Name: reg.GetName()})
		}
		cancel()
		switch {
		case err == nil:
			lastSeen = time.Now()
			if p := job.GetPhase(); p == skipgridpb.Phase_PHASE_DONE ||
				p == skipgridpb.Phase_PHASE_FAILED {
				log.Info("job over; shard stopping", "phase", p)
				return nil
			}
		case time.Since(lastSeen) > orphan:
			return fmt.Errorf("coordinator unreachable for %v: %w", orphan, err)
		default:
			log.Warn("coordinator call failed", "err", err)
		}
		if err := sleepCtx(ctx, time.Second); err != nil {
			return nil
		}
	}
}

func newWorkerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "worker --coordinator HOST:PORT [flags]",
		Short: "Run one worker of a multi-process cluster",
		Args:  cobra.NoArgs,
		RunE:  runWorker,
	}
	fs := cmd.Flags()
	addNodeFlags(fs, "")
	fs.String("coordinator", "127.0.0.1:7070", "coordinator gRPC address")
	fs.Int("threads", 1, "training goroutines")
	fs.Duration("retry-for", 2*time.Minute, "give up on an unreachable node after this long")
	fs.String("http-addr", "", "Prometheus /metrics listen address ('' for none)")
	return cmd
}

func runWorker(cmd *cobra.Command, _ []string) error {
	log, v, err := roleSetup(cmd)
	if err != nil {
		return err
	}
	name := v.GetString("name")
	if name == "" {
		return errors.New("--name: give the worker a name unique in the cluster")
	}
	reg := newRegistry()
	if addr := v.GetString("http-addr"); addr != "" {
		stop, err := serveHTTP(addr, "metrics", metricsHandler(reg), log)
		if err != nil {
			return err
		}
		defer stop()
	}
	_, dialOpts, err := grpcSecurity(v, log)
	if err != nil {
		return err
	}
	node, err := startMember(v, log, member.Meta{Role: "worker", Name: name}, nil)
	if err != nil {
		return err
	}
	defer node.Shutdown()

	conn, err := rpc.Dial(v.GetString("coordinator"), nil, dialOpts...)
	if err != nil {
		return err
	}
	defer conn.Close()
	wcfg := worker.DefaultConfig(name)
	wcfg.Threads, wcfg.Logger, wcfg.RetryFor = v.GetInt("threads"), log, v.GetDuration("retry-for")
	wcfg.Registerer = reg
	dial := rpc.PSDialer(dialOpts...)
	w, err := worker.New(wcfg, skipgridpb.NewCoordinatorClient(conn), dial)
	if err != nil {
		return err
	}
	err = w.Run(cmd.Context())
	_ = node.Leave(time.Second)
	return err
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
