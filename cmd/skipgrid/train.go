package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/skipgrid/skipgrid/coordinator"
	"github.com/skipgrid/skipgrid/embedded"
)

func newTrainCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "train --corpus PATH... --out DIR [flags]",
		Short: "Train word2vec on an embedded cluster in this process",
		Long: `Train runs a whole job in one process: a coordinator, --ps parameter-server shards
and --workers workers, talking through the same service interfaces as a distributed cluster
(in memory by default, gRPC on loopback with --transport grpc). It writes DIR/vectors.bin
(word2vec binary), DIR/vocab.txt and DIR/run.json.

While it trains, the shards write checkpoints to DIR/.checkpoints and the coordinator its
state to DIR/.state; a job stopped (Ctrl-C, SIGTERM, a crash) continues with
--resume DIR and the same job flags. Both are removed once the job ends.`,
		RunE: runTrain,
	}
	fs := cmd.Flags()
	addJobFlags(fs)
	fs.Int("workers", 2, "workers")
	fs.Int("threads", 1, "training goroutines per worker")
	fs.Int("ps", 2, "parameter-server shards")
	fs.String("transport", "inmem", "inmem or grpc (loopback)")
	fs.String("progress", "auto", "progress bar: auto (when stderr is a terminal), on, off")
	fs.String("config", "", "configuration file (YAML, TOML or JSON; keys as the flags)")
	fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	fs.String("http-addr", "", "status page, /status and /metrics listen address ('' for none)")
	fs.Duration("linger", 0, "with --http-addr, keep serving this long after the job ends")
	fs.String("resume", "", "continue the stopped job whose output directory this is "+
		"(give the same job flags)")
	fs.Duration("checkpoint-every", 0, "checkpoint this often as well as after every epoch")
	return cmd
}

func runTrain(cmd *cobra.Command, args []string) error {
	log, err := newLogger(cmd)
	if err != nil {
		return err
	}
	v, err := newViper(cmd)
	if err != nil {
		return err
	}
	if err := resumeOut(v); err != nil {
		return err
	}
	jc, err := jobConfig(v, v.GetInt("ps"), args)
	if err != nil {
		return err
	}
	cleanup := removeIfCreated(jc.OutDir)
	ckptDir, err := prepareCheckpoints(v, &jc)
	if err != nil {
		return err
	}
	jc.Logger = log
	httpAddr := v.GetString("http-addr")
	if httpAddr != "" {
		jc.Registerer = newRegistry()
	}
	cluster, err := embedded.New(embedded.Config{
		Coordinator: jc,
		Workers:     v.GetInt("workers"),
		Threads:     v.GetInt("threads"),
		Transport:   embedded.Transport(v.GetString("transport")),
		Logger:      log,

		CheckpointDir: ckptDir,
	})
	if err != nil {
		return err
	}

	if path := v.GetString("cpuprofile"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}

	if httpAddr != "" {
		stop, err := serveHTTP(httpAddr, "status page and metrics",
			cluster.Coordinator().Handler(), log)
		if err != nil {
			return err
		}
		defer stop()
	}

	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	showProgress := v.GetString("progress") == "on" ||
		(v.GetString("progress") == "auto" && term.IsTerminal(int(os.Stderr.Fd())))
	done := make(chan struct{})
	if showProgress {
		go progress(ctx, cluster.Coordinator(), done)
	} else {
		close(done)
	}

	res, err := cluster.Run(ctx)
	removeCheckpoints(ckptDir, cmd.Context().Err() != nil)
	if err != nil {
		cleanup()
	}
	cancel()
	<-done
	if d := v.GetDuration("linger"); httpAddr != "" && d > 0 {
		log.Info("job over; status page stays up", "linger", d)
		_ = sleepCtx(cmd.Context(), d)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "trained %d words in %.1fs (%.0f words/s); vectors in %s\n",
		res.TrainWords*uint64(len(res.Epochs)), res.PhaseSeconds.Training,
		res.TrainWordsPerSec, jc.OutDir)
	return nil
}

// progress draws a bar of the training words until ctx ends.
func progress(ctx context.Context, coord *coordinator.Coordinator, done chan<- struct{}) {
	defer close(done)
	var bar *progressbar.ProgressBar
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(os.Stderr)
			}
			return
		case <-tick.C:
		}
		st := coord.Status()
		if st.WordsPlanned == 0 {
			continue
		}
		if bar == nil {
			bar = progressbar.NewOptions64(int64(st.WordsPlanned),
				progressbar.OptionSetWriter(os.Stderr),
				progressbar.OptionSetWidth(30),
				progressbar.OptionShowIts(),
				progressbar.OptionSetItsString("words"),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionThrottle(250*time.Millisecond),
			)
		}
		bar.Describe(fmt.Sprintf("epoch %d/%d loss %.4f lr %.5f", st.Epoch+1, st.Epochs,
			st.LastLoss, st.LearningRate))
		_ = bar.Set64(int64(st.WordsDone))
	}
}

// removeIfCreated returns a function that removes dir if it did not exist before and is
// still empty, so that a job that fails early leaves no empty output directory behind.
func removeIfCreated(dir string) func() {
	if _, err := os.Stat(dir); err == nil {
		return func() {}
	}
	return func() { _ = os.Remove(dir) } // Remove refuses a directory that is not empty
}
