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
(word2vec binary), DIR/vocab.txt and DIR/run.json.`,
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
	jc, err := jobConfig(v, v.GetInt("ps"), args)
	if err != nil {
		return err
	}
	jc.Logger = log
	cluster, err := embedded.New(embedded.Config{
		Coordinator: jc,
		Workers:     v.GetInt("workers"),
		Threads:     v.GetInt("threads"),
		Transport:   embedded.Transport(v.GetString("transport")),
		Logger:      log,
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
	cancel()
	<-done
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "trained %d words in %.1fs (%.0f words/s); vectors in %s\n",
		res.TrainWords*uint64(len(res.Epochs)), res.PhaseSeconds.Training, res.TrainWordsPerSec, jc.OutDir)
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
