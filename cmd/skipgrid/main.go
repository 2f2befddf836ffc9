// Command skipgrid trains word embeddings on a parameter-server cluster: as one process
// (train), or as separate coordinator, ps and worker processes; it also evaluates, converts
// and exports vectors.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "skipgrid:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "skipgrid",
		Short:         "Distributed parameter-server trainer for word2vec embeddings",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().String("log-format", "text", "log format: text or json")
	root.AddCommand(
		newTrainCmd(),
		newCoordinatorCmd(),
		newPSCmd(),
		newWorkerCmd(),
		newTokenizeCmd(),
		newEvalCmd(),
		newExportCmd(),
		newConvertCmd(),
		newCertsCmd(),
		newFinetuneCmd(),
		newPredictCmd(),
		newNeighborsCmd(),
		newAnalogyCmd(),
		newSimilarityCmd(),
		newServeCmd(),
	)
	return root
}

// newLogger builds the process logger from --log-level and --log-format (or their
// SKIPGRID_* variables or config-file keys); logs go to stderr.
func newLogger(cmd *cobra.Command) (*slog.Logger, error) {
	v, err := newViper(cmd)
	if err != nil {
		return nil, err
	}
	level, format := v.GetString("log-level"), v.GetString("log-format")
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// newViper layers configuration for one command: flags over SKIPGRID_* environment variables
// over the --config file (YAML, TOML or JSON, keys named like the flags).
func newViper(cmd *cobra.Command) (*viper.Viper, error) {
	v := viper.New()
	v.SetEnvPrefix("SKIPGRID")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	var bindErr error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err := v.BindPFlag(f.Name, f); err != nil && bindErr == nil {
			bindErr = err
		}
	})
	if bindErr != nil {
		return nil, bindErr
	}
	if path := v.GetString("config"); path != "" {
		v.SetConfigFile(path)
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	return v, nil
}
