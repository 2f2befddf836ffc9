package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/query"
	"github.com/skipgrid/skipgrid/rpc"
	"github.com/skipgrid/skipgrid/vectors"
)

// queryFlags are the flags the query commands share.
type queryFlags struct {
	vf       vectorsFlags
	parallel int
	asJSON   bool
}

func (f *queryFlags) add(cmd *cobra.Command) {
	f.vf.add(cmd)
	fs := cmd.Flags()
	fs.IntVar(&f.parallel, "parallel", 0, "goroutines one search splits the rows across; "+
		"0 for one per CPU")
	fs.BoolVar(&f.asJSON, "json", false, "print the answer as JSON")
}

// config returns the index configuration the flags ask for.
func (f *queryFlags) config() (query.Config, error) {
	cfg := query.DefaultConfig()
	switch {
	case f.parallel < 0:
		return cfg, fmt.Errorf("--parallel %d: give 0 for one per CPU, or a positive count",
			f.parallel)
	case f.parallel == 0:
		cfg.Parallel = runtime.GOMAXPROCS(0)
	default:
		cfg.Parallel = f.parallel
	}
	return cfg, cfg.Validate()
}

// readOptions returns how to read the vectors file.
func (f *vectorsFlags) readOptions(cmd *cobra.Command) (vectors.ReadOptions, error) {
	format, err := vectors.ParseFormat(f.format)
	if err != nil {
		return vectors.ReadOptions{}, fmt.Errorf("--format: %w", err)
	}
	log, err := newLogger(cmd)
	if err != nil {
		return vectors.ReadOptions{}, err
	}
	return vectors.ReadOptions{Format: format, ReplaceInvalidUTF8: f.replace, Logger: log}, nil
}

// load reads the vectors file into an index.
func (f *queryFlags) load(cmd *cobra.Command) (*query.Index, error) {
	cfg, err := f.config()
	if err != nil {
		return nil, err
	}
	opt, err := f.vf.readOptions(cmd)
	if err != nil {
		return nil, err
	}
	return query.LoadFile(f.vf.path, opt, cfg)
}

func newNeighborsCmd() *cobra.Command {
	var (
		qf     queryFlags
		k      int
		metric string
		bench  benchFlags
	)
	cmd := &cobra.Command{
		Use:   "neighbors --vectors F WORD... [--k 10] [--metric cosine|dot|euclidean] [--json]",
		Short: "Print the nearest words of each WORD",
		Long: `Neighbors prints the --k nearest words of each WORD, leaving out the word itself:
the largest cosines or dot products, or the smallest Euclidean distances (scores are then
distances). Words are matched exactly, then ignoring case (the most frequent spelling wins).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := query.ParseMetric(metric)
			if err != nil {
				return fmt.Errorf("--metric: %w", err)
			}
			if bench.queries != "" {
				return runNeighborsBench(cmd, &qf, &bench, k, m)
			}
			if len(args) == 0 {
				return errors.New("give at least one WORD")
			}
			x, err := qf.load(cmd)
			if err != nil {
				return err
			}
			lists, err := x.NeighborsBatch(args, k, m)
			if err != nil {
				return err
			}
			reply := query.NeighborsReply{Metric: m.String(), K: k}
			for i, w := range args {
				r, _ := x.Lookup(w) // found: NeighborsBatch succeeded
				reply.Results = append(reply.Results,
					query.WordResult{Query: w, Word: x.Word(r), Neighbors: lists[i]})
			}
			if qf.asJSON {
				return printJSON(cmd.OutOrStdout(), reply)
			}
			return printNeighbors(cmd.OutOrStdout(), reply)
		},
	}
	qf.add(cmd)
	fs := cmd.Flags()
	fs.IntVar(&k, "k", query.DefaultK, "neighbours to print per word")
	fs.StringVar(&metric, "metric", "cosine", "cosine, dot or euclidean")
	bench.add(cmd)
	return cmd
}

// printNeighbors prints each word's neighbours as a table, a blank line
// between words.
func printNeighbors(w io.Writer, r query.NeighborsReply) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i, res := range r.Results {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		title := res.Query
		if res.Word != res.Query {
			title += " (as " + res.Word + ")"
		}
		fmt.Fprintf(tw, "%s, %s:\n", title, r.Metric)
		printList(tw, res.Neighbors)
	}
	return tw.Flush()
}

// printList prints one ranked list, "  word\tscore" per line, scores to six
// significant digits.
func printList(w io.Writer, ns []query.Neighbor) {
	for _, n := range ns {
		fmt.Fprintf(w, "  %s\t%.6g\n", n.Word, n.Score)
	}
}

func newAnalogyCmd() *cobra.Command {
	var (
		qf     queryFlags
		k      int
		method string
	)
	cmd := &cobra.Command{
		Use:   "analogy --vectors F A B C [--k 10] [--method 3cosadd|3cosmul] [--json]",
		Short: "Answer \"A is to B as C is to ?\"",
		Long: `Analogy prints the --k words x, other than A, B and C, that best complete "A is to
B as C is to x": by 3CosAdd, cos(x,B) - cos(x,A) + cos(x,C), or by 3CosMul,
cos'(x,B) cos'(x,C) / (cos'(x,A) + 0.001) with cos' = (1 + cos) / 2.`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			meth, err := query.ParseAnalogyMethod(method)
			if err != nil {
				return fmt.Errorf("--method: %w", err)
			}
			x, err := qf.load(cmd)
			if err != nil {
				return err
			}
			res, err := x.Analogy(args[0], args[1], args[2], k, meth)
			if err != nil {
				return err
			}
			reply := query.AnalogyReply{A: args[0], B: args[1], C: args[2],
				Method: meth.String(), K: k, Neighbors: res}
			if qf.asJSON {
				return printJSON(cmd.OutOrStdout(), reply)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "%s : %s :: %s : ?, %s:\n", args[0], args[1], args[2], meth)
			printList(tw, res)
			return tw.Flush()
		},
	}
	qf.add(cmd)
	fs := cmd.Flags()
	fs.IntVar(&k, "k", query.DefaultK, "answers to print")
	fs.StringVar(&method, "method", "3cosadd", "3cosadd or 3cosmul")
	return cmd
}

func newSimilarityCmd() *cobra.Command {
	var (
		qf     queryFlags
		metric string
	)
	cmd := &cobra.Command{
		Use:   "similarity --vectors F W1 W2 [--metric cosine|dot|euclidean] [--json]",
		Short: "Print the similarity (or distance) of two words",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := query.ParseMetric(metric)
			if err != nil {
				return fmt.Errorf("--metric: %w", err)
			}
			qf.parallel = 1 // one pair needs no help
			x, err := qf.load(cmd)
			if err != nil {
				return err
			}
			score, err := x.Similarity(args[0], args[1], m)
			if err != nil {
				return err
			}
			if qf.asJSON {
				return printJSON(cmd.OutOrStdout(), query.SimilarityReply{W1: args[0],
					W2: args[1], Metric: m.String(), Score: score})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%.6g\n", score)
			return err
		},
	}
	qf.add(cmd)
	cmd.Flags().StringVar(&metric, "metric", "cosine", "cosine, dot or euclidean")
	return cmd
}

// benchFlags are neighbors' hidden flags that time queries after one load.
type benchFlags struct {
	queries string
	batch   int
	rounds  int
}

func (f *benchFlags) add(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.queries, "bench-queries", "", "time the neighbours of the words of this "+
		"file (the first field of each line) after one load, and print the timings as JSON")
	fs.IntVar(&f.batch, "bench-batch", 1, "query words per call in --bench-queries mode")
	fs.IntVar(&f.rounds, "bench-rounds", 1, "times to ask every word in --bench-queries mode")
	for _, name := range []string{"bench-queries", "bench-batch", "bench-rounds"} {
		_ = fs.MarkHidden(name)
	}
}

// benchResult is what --bench-queries prints.
type benchResult struct {
	Words       int     `json:"words"`
	Dim         int     `json:"dim"`
	LoadSeconds float64 `json:"load_seconds"`
	Queries     int     `json:"queries"`
	Seconds     float64 `json:"query_seconds"`
	PerSecond   float64 `json:"queries_per_second"`
	K           int     `json:"k"`
	Metric      string  `json:"metric"`
	Batch       int     `json:"batch"`
	Parallel    int     `json:"parallel"`
	GOMAXPROCS  int     `json:"gomaxprocs"`
}

// runNeighborsBench loads the vectors once, then times the neighbours of
// every word of the query file, --bench-batch words a call.
func runNeighborsBench(cmd *cobra.Command, qf *queryFlags, bf *benchFlags, k int,
	m query.Metric) error {
	if bf.batch < 1 || bf.rounds < 1 {
		return fmt.Errorf("--bench-batch %d and --bench-rounds %d must be positive", bf.batch,
			bf.rounds)
	}
	words, err := readWordList(bf.queries)
	if err != nil {
		return err
	}
	start := time.Now()
	x, err := qf.load(cmd)
	if err != nil {
		return err
	}
	res := benchResult{Words: x.Len(), Dim: x.Dim(), LoadSeconds: time.Since(start).Seconds(),
		K: k, Metric: m.String(), Batch: bf.batch, GOMAXPROCS: runtime.GOMAXPROCS(0)}
	cfg, _ := qf.config()
	res.Parallel = cfg.Parallel

	start = time.Now()
	for range bf.rounds {
		for lo := 0; lo < len(words); lo += bf.batch {
			if _, err := x.NeighborsBatch(words[lo:min(lo+bf.batch, len(words))], k,
				m); err != nil {
				return fmt.Errorf("%s: %w", bf.queries, err)
			}
		}
	}
	res.Seconds = time.Since(start).Seconds()
	res.Queries = len(words) * bf.rounds
	res.PerSecond = float64(res.Queries) / res.Seconds
	return printJSON(cmd.OutOrStdout(), res)
}

// readWordList returns the first field of every non-blank line of path.
func readWordList(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var words []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 0 {
			words = append(words, fields[0])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("%s: no words; give one query word a line", path)
	}
	return words, nil
}

// serveFlags are the flags of serve.
type serveFlags struct {
	qf       queryFlags
	cluster  string
	addr     string
	grpcAddr string
	refresh  time.Duration
}

func newServeCmd() *cobra.Command {
	var sf serveFlags
	cmd := &cobra.Command{
		Use: "serve (--vectors F | --cluster COORDINATOR_ADDR) --addr HOST:PORT " +
			"[--grpc-addr HOST:PORT] [--refresh 10s]",
		Short: "Serve neighbours, analogies and similarities over HTTP (JSON) and gRPC",
		Long: `Serve answers GET /v1/neighbors?word=W&k=10&metric=cosine,
GET /v1/analogy?a=A&b=B&c=C&k=10&method=3cosadd and GET /v1/similarity?w1=W1&w2=W2&metric=cosine
with JSON on --addr, and the Query gRPC service on --grpc-addr when given.

With --vectors it serves a vectors file, loaded once (again every --refresh when that flag is
given). With --cluster it serves the input vectors of the job the coordinator at that address
runs, pulled from its parameter-server shards every --refresh, so that the answers follow the
training; until training starts requests get 503 (HTTP) or Unavailable (gRPC).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServe(cmd, &sf) },
	}
	fs := cmd.Flags()
	sf.qf.vf.addOptional(cmd)
	fs.IntVar(&sf.qf.parallel, "parallel", 0, "goroutines one search splits the rows "+
		"across; 0 for one per CPU")
	fs.StringVar(&sf.cluster, "cluster", "", "coordinator gRPC address of a running job")
	fs.StringVar(&sf.addr, "addr", "127.0.0.1:8080", "HTTP listen address")
	fs.StringVar(&sf.grpcAddr, "grpc-addr", "", "gRPC listen address ('' for none)")
	fs.DurationVar(&sf.refresh, "refresh", 10*time.Second, "reload period with --cluster "+
		"(with --vectors only when given)")
	return cmd
}

// addOptional registers the vectors flags without making --vectors
// required.
func (f *vectorsFlags) addOptional(cmd *cobra.Command) {
	f.add(cmd)
	delete(cmd.Flags().Lookup("vectors").Annotations, cobra.BashCompOneRequiredFlag)
}

func runServe(cmd *cobra.Command, sf *serveFlags) error {
	log, err := newLogger(cmd)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	src, period, closeSrc, err := sf.source(cmd, log)
	if err != nil {
		return err
	}
	defer closeSrc()

	live := query.NewLive(src, log)
	if sf.cluster == "" {
		// A file that does not load is the user's to fix now.
		if err := live.Refresh(ctx); err != nil {
			return err
		}
	}
	if period > 0 {
		go func() { _ = live.Run(ctx, period) }() // ends with ctx; failures are logged
	}

	stop, err := sf.listen(live, log)
	if err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("query server stopping")
	stop()
	return nil
}

// source builds the source the flags name, its refresh period (0: load
// once) and what closes its connections.
func (sf *serveFlags) source(cmd *cobra.Command, log *slog.Logger) (query.Source,
	time.Duration, func(), error) {
	cfg, err := sf.qf.config()
	if err != nil {
		return nil, 0, nil, err
	}
	if sf.refresh < 0 {
		return nil, 0, nil, fmt.Errorf("--refresh %v: give a positive period", sf.refresh)
	}
	switch {
	case (sf.qf.vf.path == "") == (sf.cluster == ""):
		return nil, 0, nil, errors.New("give either --vectors F or --cluster " +
			"COORDINATOR_ADDR")
	case sf.qf.vf.path != "":
		opt, err := sf.qf.vf.readOptions(cmd)
		if err != nil {
			return nil, 0, nil, err
		}
		period := time.Duration(0)
		if cmd.Flags().Changed("refresh") {
			period = sf.refresh
		}
		return &query.FileSource{Path: sf.qf.vf.path, Read: opt, Index: cfg}, period,
			func() {}, nil
	}
	return clusterSource(sf.cluster, cfg, sf.refresh, log)
}

// clusterSource dials the coordinator and returns a ClusterSource that
// dials shards as it needs them; the returned func closes every connection.
func clusterSource(addr string, cfg query.Config, period time.Duration, log *slog.Logger) (
	query.Source, time.Duration, func(), error) {
	if period <= 0 {
		return nil, 0, nil, fmt.Errorf("--refresh %v: --cluster needs a positive period",
			period)
	}
	var (
		mu    sync.Mutex
		conns []*grpc.ClientConn
	)
	dial := func(addr string) (*grpc.ClientConn, error) {
		conn, err := rpc.Dial(addr, nil)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		conns = append(conns, conn)
		return conn, nil
	}
	closeAll := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	}

	coord, err := dial(addr)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("--cluster: %w", err)
	}
	ccfg := query.DefaultClusterConfig()
	ccfg.Coordinator = skipgridpb.NewCoordinatorClient(coord)
	ccfg.Dial = func(_ context.Context, addr string) (skipgridpb.ParameterServerClient, error) {
		conn, err := dial(addr)
		if err != nil {
			return nil, err
		}
		return skipgridpb.NewParameterServerClient(conn), nil
	}
	ccfg.Index, ccfg.Logger = cfg, log
	src, err := query.NewClusterSource(ccfg)
	if err != nil {
		closeAll()
		return nil, 0, nil, err
	}
	return src, period, closeAll, nil
}

// listen starts the HTTP server and, when asked for, the gRPC server; the
// returned func stops both.
func (sf *serveFlags) listen(live *query.Live, log *slog.Logger) (func(), error) {
	lis, err := net.Listen("tcp", sf.addr)
	if err != nil {
		return nil, fmt.Errorf("--addr: listen %s: %w", sf.addr, err)
	}
	hs := &http.Server{Handler: query.NewHandler(live, log), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	go func() {
		if err := hs.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("query HTTP server stopped", "err", err)
		}
	}()
	log.Info("query server listening", "http", lis.Addr().String())

	var gs *grpc.Server
	if sf.grpcAddr != "" {
		gs = grpc.NewServer(rpc.ServerOptions()...)
		skipgridpb.RegisterQueryServer(gs, query.NewServer(live))
		glis, err := serveGRPC(gs, sf.grpcAddr, log)
		if err != nil {
			_ = hs.Close()
			return nil, fmt.Errorf("--grpc-addr: %w", err)
		}
		log.Info("query server listening", "grpc", glis.Addr().String())
	}

	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		if gs != nil {
			gs.GracefulStop()
		}
	}, nil
}
