package ps

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skipgrid/skipgrid/proto/payload"
)

// maxShard matches the shard package's limit of 65536 shards.
const maxShard = 1<<16 - 1

// Config configures a Server.
type Config struct {
	// Shard is this server's shard index; Configure must name the same one.
	Shard int
	// Name is the node's name, used in logs.
	Name string
	// Limits bound the payloads of pulls and pushes, and the dimension Configure accepts.
	Limits payload.Limits
	// Logger receives the server's logs; nil means slog.Default().
	Logger *slog.Logger
	// Registerer receives the server's metrics; nil means no metrics.
	Registerer prometheus.Registerer
	// CheckpointDir is where Checkpoint writes this shard's files (shard-<n>-<id>.ckpt) and
	// where New looks for one to restore; empty means the shard keeps no checkpoints.
	CheckpointDir string
	// Dial reaches the backups SetBackups names; nil refuses backups.
	Dial Dialer
}

// DefaultConfig returns the configuration of shard 0 named "ps-0" with payload.DefaultLimits
// (1<<20 rows, dim 4096, 256 MiB a payload), the default logger and no metrics.
func DefaultConfig() Config {
	return Config{Shard: 0, Name: "ps-0", Limits: payload.DefaultLimits()}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Shard < 0 || c.Shard > maxShard {
		errs = append(errs, fmt.Errorf("ps config: Shard is %d, must be in [0, %d]", c.Shard,
			maxShard))
	}
	if c.Name == "" {
		errs = append(errs, errors.New("ps config: Name is empty; give the node's name"))
	}
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("ps config: %w", err))
	}
	return errors.Join(errs...)
}
