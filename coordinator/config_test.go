package coordinator

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skipgrid/skipgrid/proto/payload"
	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/shard"
)

func validConfig() Config {
	cfg := DefaultConfig()
	cfg.Corpus = []string{"corpus.txt"}
	cfg.OutDir = "out"
	return cfg
}

func TestDefaultConfigIsValid(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("default config with corpus and out dir: %v", err)
	}
	// Without them, both are reported.
	err := DefaultConfig().Validate()
	for _, s := range []string{"corpus: no file given", "out dir: empty"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("Validate() = %v, want it to mention %q", err, s)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	cfg := validConfig()
	cfg.JobID = ""
	cfg.Corpus = []string{"a", ""}
	cfg.ChunkBytes = -1
	cfg.NumPS = 0
	cfg.Model = skipgridpb.Model_MODEL_UNSPECIFIED
	cfg.Dim = 0
	cfg.Window = -1
	cfg.Negative = 0
	cfg.Epochs = 0
	cfg.Sample = -1
	cfg.Alpha = -0.1
	cfg.MaxVocab = -2
	cfg.Tokenizer = skipgridpb.Tokenizer_TOKENIZER_UNSPECIFIED
	cfg.MaxSentenceLen = 0
	cfg.BatchWords = 0
	cfg.ValueCodec = payload.ValueCodec(7)
	cfg.LeaseTimeout = 0
	cfg.StartTimeout = -time.Second
	cfg.StallTimeout = 0
	cfg.RPCTimeout = 0
	cfg.MaxAttempts = 0

	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate accepted a config with every field wrong")
	}
	for _, s := range []string{"job id", "corpus: path 1", "chunk bytes", "num ps", "model",
		"dim", "window", "negative", "epochs", "sample", "alpha", "max vocab", "tokenizer",
		"max sentence len", "batch words", "value codec 7", "lease timeout", "start timeout",
		"stall timeout", "rpc timeout", "max attempts"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Validate() does not mention %q:\n%v", s, err)
		}
	}
}

func TestEffectiveAlpha(t *testing.T) {
	tests := []struct {
		name            string
		kind            skipgridpb.JobKind
		model           skipgridpb.Model
		alpha, minAlpha float64
		want, wantMin   float64
	}{
		// word2vec's defaults: 0.025 for skip-gram, 0.05 for CBOW; floor alpha * 1e-4.
		{"sg default", 0, skipgridpb.Model_MODEL_SKIPGRAM, 0, 0, 0.025, 0.025 * 1e-4},
		{"cbow default", 0, skipgridpb.Model_MODEL_CBOW, 0, 0, 0.05, 0.05 * 1e-4},
		{"explicit", 0, skipgridpb.Model_MODEL_CBOW, 0.1, 0, 0.1, 0.1 * 1e-4},
		{"explicit floor", 0, skipgridpb.Model_MODEL_SKIPGRAM, 0.1, 0.01, 0.1, 0.01},
		// fastText's supervised default, whatever the model field says.
		{"fine-tuning default", skipgridpb.JobKind_JOB_KIND_FINETUNE,
			skipgridpb.Model_MODEL_SKIPGRAM, 0, 0, 0.1, 0.1 * 1e-4},
		{"fine-tuning explicit", skipgridpb.JobKind_JOB_KIND_FINETUNE,
			skipgridpb.Model_MODEL_CBOW, 0.5, 0, 0.5, 0.5 * 1e-4},
	}
	for _, tt := range tests {
		cfg := validConfig()
		cfg.Model, cfg.Alpha, cfg.MinAlpha = tt.model, tt.alpha, tt.minAlpha
		if tt.kind != 0 {
			cfg.Kind = tt.kind
		}
		a, m := cfg.EffectiveAlpha()
		if a != tt.want || m != tt.wantMin {
			t.Errorf("%s: EffectiveAlpha() = %v, %v; want %v, %v", tt.name, a, m, tt.want,
				tt.wantMin)
		}
	}

	cfg := validConfig()
	cfg.Alpha, cfg.MinAlpha = 0.01, 0.02
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "min alpha") {
		t.Errorf("Validate with min alpha above alpha = %v, want a min alpha error", err)
	}

	// A bad alpha is reported alone, not also as a floor above it.
	cfg = validConfig()
	cfg.Alpha = -0.1
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "alpha: -0.1 must be") ||
		strings.Contains(err.Error(), "min alpha") {
		t.Errorf("Validate with alpha -0.1 = %v, want an alpha error and no min alpha one", err)
	}
}

func TestHandlerErrorCodes(t *testing.T) {
	fc := newFakeCluster(t, e2eConfig(t, tinyCorpus(t)))
	ctx := context.Background()
	c := fc.c

	_, err := c.Register(ctx, &skipgridpb.RegisterRequest{Role: skipgridpb.Role_ROLE_COORDINATOR,
		Name: "x"})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("register as coordinator = %v, want InvalidArgument", err)
	}
	_, err = c.Register(ctx, &skipgridpb.RegisterRequest{Role: skipgridpb.Role_ROLE_PS,
		Name: "ps9", Shard: 9, Address: "a:1"})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "shard 9") {
		t.Errorf("register shard 9 of 2 = %v, want InvalidArgument naming the shard", err)
	}
	_, err = c.Lease(ctx, &skipgridpb.LeaseRequest{})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("lease without a name = %v, want InvalidArgument", err)
	}

	// A malformed count result is InvalidArgument; the lease needs counting to have started.
	c.mu.Lock()
	c.mu.core.startCounting([]shard.Chunk{{ID: 0, Path: "c.txt", End: 10}}, t0)
	c.mu.Unlock()
	r, err := c.Lease(ctx, &skipgridpb.LeaseRequest{Name: "w"})
	if err != nil || r.GetKind() != kCount {
		t.Fatalf("lease = %v, %v; want a count task", r, err)
	}
	_, err = c.Complete(ctx, &skipgridpb.CompleteRequest{Name: "w", LeaseId: r.GetLeaseId(),
		Words: []string{"a"}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("complete with 1 word and 0 counts = %v, want InvalidArgument", err)
	}
}

// TestAutoChunkBytes checks the automatic chunk size: the corpus over 64, clamped to
// [256 KiB, 16 MiB].
func TestAutoChunkBytes(t *testing.T) {
	for _, c := range []struct{ total, want int64 }{
		{1 << 20, 256 << 10},   // 16 KiB a chunk would be too small
		{230 << 20, 230 << 14}, // 230 MiB / 64 = 3.59 MiB
		{64 << 30, 16 << 20},   // 1 GiB a chunk would be too big
	} {
		if got := AutoChunkBytes(c.total); got != c.want {
			t.Errorf("AutoChunkBytes(%d) = %d, want %d", c.total, got, c.want)
		}
	}
}
