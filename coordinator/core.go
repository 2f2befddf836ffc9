package coordinator

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/shard"
	"github.com/skipgrid/skipgrid/vocab"
)

// waitMs is how long a worker with nothing to do waits before asking again.
const waitMs = 100

// errBadRequest marks core errors caused by a malformed or inconsistent message; handlers
// answer them with InvalidArgument.
var errBadRequest = errors.New("bad request")

// coreSettings are the parts of the configuration the core needs.
type coreSettings struct {
	NumPS        int
	Epochs       int
	LeaseTimeout time.Duration
	MaxAttempts  int
	Alpha        float64
	MinAlpha     float64
	// Replicas is the copies of every shard; 0 means 1.
	Replicas int
}

// lease is one task handed to one worker.
type lease struct {
	ID     uint64              `json:"id"`
	Worker string              `json:"worker"`
	Kind   skipgridpb.TaskKind `json:"kind"`
	Task   int                 `json:"task"`
	// Deadline is LeaseTimeout after the grant or the last heartbeat.
	Deadline time.Time `json:"deadline"`
	// Words is the latest heartbeat's count of words done in this lease.
	Words uint64 `json:"words"`
	// LastBeat and Rate measure the lease's words per second between heartbeats.
	LastBeat time.Time `json:"last_beat"`
	Rate     float64   `json:"rate"`
}

// worker is what the core knows of one worker node.
type worker struct {
	Name          string    `json:"name"`
	Alive         bool      `json:"alive"`
	LastHeartbeat time.Time `json:"last_heartbeat"`
}

// psShard is what the core knows of one PS shard: the copy that serves it (its primary) and,
// when the job keeps replicas, its other copies.
type psShard struct {
	Name       string `json:"name"`
	Address    string `json:"address"`
	Registered bool   `json:"registered"`
	Alive      bool   `json:"alive"`
	// Replica is the serving copy's replica index (replicas.go).
	Replica int        `json:"replica"`
	Backups []psBackup `json:"backups,omitempty"`
}

// epochStats sums the accepted training results of one epoch.
type epochStats struct {
	Words     uint64  `json:"words"`
	LossSum   float64 `json:"loss_sum"`
	LossTerms uint64  `json:"loss_terms"`
}

// counters are the exact event counts reported in run.json and the metrics.
type counters struct {
	LeasesExpired  uint64 `json:"leases_expired"`
	LeasesReleased uint64 `json:"leases_released"`
	LateCompletes  uint64 `json:"late_completes"`
	Rejected       uint64 `json:"rejected"`
	CountChunks    uint64 `json:"count_chunks"`
	TrainChunks    uint64 `json:"train_chunks"`
	AcceptedWords  uint64 `json:"accepted_words"`
	BytesPulled    uint64 `json:"bytes_pulled"`
	BytesPushed    uint64 `json:"bytes_pushed"`
	Lines          uint64 `json:"lines"`
	EmptyLines     uint64 `json:"empty_lines"`
	SplitLines     uint64 `json:"split_lines"`
	Tokens         uint64 `json:"tokens"`
}

// core is the coordinator's deterministic state machine: phases, the chunk table, leases with
// deadlines, per-(epoch, chunk) completion and progress accounting. It does no I/O, starts no
// goroutine and never reads the clock: every method that depends on time takes now. It is not
// safe for concurrent use; the Coordinator serialises calls with its mutex.
//
// The exported fields are plain data: the Coordinator saves them (state.go) and a restarted
// coordinator restores them, Counts excepted (a job whose vocabulary was not final counts
// again) and Vocab saved once, in a file of its own.
type core struct {
	log *slog.Logger
	set coreSettings

	Phase      skipgridpb.Phase
	FailReason string

	PS      []psShard
	Workers map[string]*worker

	Chunks []shard.Chunk
	// Pass schedules the current pass (counting, then training); nil before counting.
	Pass *pass
	// Leases holds the live leases by id; NextLease is the id of the next one.
	Leases    map[uint64]*lease
	NextLease uint64

	Counts     *vocab.Counter
	Vocab      *vocab.Vocab
	TrainWords uint64
	Epoch      []epochStats
	Counters   counters

	TrainingStart time.Time
	// LastActivity is the time of the last call from a worker.
	LastActivity time.Time

	// Finetune marks a fine-tuning job: chunks are ranges of example positions and
	// TrainWords counts the examples of one epoch.
	Finetune bool

	// Durable is what checkpoints and recovery keep (checkpoint.go).
	Durable durable
}

func newCore(set coreSettings, log *slog.Logger, now time.Time) *core {
	ps := make([]psShard, set.NumPS)
	for i := range ps {
		for r := 1; r < set.Replicas; r++ {
			ps[i].Backups = append(ps[i].Backups, psBackup{Replica: r})
		}
	}
	return &core{
		log:          log,
		set:          set,
		Phase:        skipgridpb.Phase_PHASE_STARTING,
		PS:           ps,
		Workers:      make(map[string]*worker),
		Leases:       make(map[uint64]*lease),
		NextLease:    1,
		LastActivity: now,
	}
}

// terminal reports whether the job is over.
func (c *core) terminal() bool {
	return c.Phase == skipgridpb.Phase_PHASE_DONE || c.Phase == skipgridpb.Phase_PHASE_FAILED
}

// fail ends the job with reason; the first reason wins. Every live lease is dropped.
func (c *core) fail(reason string) {
	if c.terminal() {
		return
	}
	c.log.Error("job failed", "phase", phaseName(c.Phase), "reason", reason)
	c.Phase = skipgridpb.Phase_PHASE_FAILED
	c.FailReason = reason
	clear(c.Leases)
}

// registerPS records PS shard index idx at addr.
func (c *core) registerPS(name string, idx uint32, addr string) error {
	if int64(idx) >= int64(len(c.PS)) {
		return fmt.Errorf("%w: PS %q gives shard %d, but the job has %d shards (0..%d)",
			errBadRequest, name, idx, len(c.PS), len(c.PS)-1)
	}
	if addr == "" {
		return fmt.Errorf("%w: PS %q (shard %d) gives no address", errBadRequest, name, idx)
	}

	p := &c.PS[idx]
	if p.Registered {
		// Run looks at it at once: a new incarnation means a restart to recover from.
		c.noteReregistered(int(idx))
	}
	if p.Registered && (p.Name != name || p.Address != addr) {
		c.log.Warn("PS shard re-registered", "shard", idx, "name", name, "address", addr,
			"was_name", p.Name, "was_address", p.Address, "phase", phaseName(c.Phase))
	} else if !p.Registered {
		c.log.Info("PS shard registered", "shard", idx, "name", name, "address", addr)
	}
	// The copy index and the backups stay: they are the shard's, not this copy's.
	p.Name, p.Address, p.Registered, p.Alive = name, addr, true, true
	return nil
}

// registerWorker records a worker; it reports whether the name was new.
func (c *core) registerWorker(name string, now time.Time) bool {
	c.LastActivity = now
	w, ok := c.Workers[name]
	if !ok {
		c.Workers[name] = &worker{Name: name, Alive: true, LastHeartbeat: now}
		return true
	}
	w.Alive = true
	return false
}

// missingPS returns the shards that have not registered, ascending.
func (c *core) missingPS() []int {
	var missing []int
	for i, p := range c.PS {
		if !p.Registered || p.missingBackup() {
			missing = append(missing, i)
		}
	}
	return missing
}

// psAddresses returns the registered addresses by shard ("" where missing).
func (c *core) psAddresses() []string {
	addrs := make([]string, len(c.PS))
	for i, p := range c.PS {
		addrs[i] = p.Address
	}
	return addrs
}

// startCounting enters PHASE_COUNTING over chunks.
func (c *core) startCounting(chunks []shard.Chunk, now time.Time) {
	c.Chunks = chunks
	c.Pass = newPass(skipgridpb.TaskKind_TASK_COUNT, 1, len(chunks))
	c.Counts = vocab.NewCounter()
	c.Phase = skipgridpb.Phase_PHASE_COUNTING
	c.LastActivity = now
	c.log.Info("counting", "chunks", len(chunks))
}

// passComplete reports whether every task of the current pass is done.
func (c *core) passComplete() bool { return c.Pass != nil && c.Pass.complete() }

// setVocab records the final vocabulary; GetVocab answers from now on. Leases keep
// answering TASK_WAIT until startTraining.
func (c *core) setVocab(v *vocab.Vocab) {
	c.Vocab = v
	c.TrainWords = v.TrainWords()
}

// startTraining enters PHASE_TRAINING: one round of all chunks per epoch.
func (c *core) startTraining(now time.Time) {
	c.Pass = newPass(skipgridpb.TaskKind_TASK_TRAIN, c.set.Epochs, len(c.Chunks))
	c.Epoch = make([]epochStats, c.set.Epochs)
	c.Phase = skipgridpb.Phase_PHASE_TRAINING
	c.TrainingStart = now
	c.LastActivity = now
	c.log.Info("training", "epochs", c.set.Epochs, "chunks", len(c.Chunks),
		"train_words", c.TrainWords, "words_planned", c.wordsPlanned())
}

// startGathering enters PHASE_GATHERING; leases answer TASK_STOP from now on.
func (c *core) startGathering() {
	c.Phase = skipgridpb.Phase_PHASE_GATHERING
}

// finish enters PHASE_DONE.
func (c *core) finish() {
	if !c.terminal() {
		c.Phase = skipgridpb.Phase_PHASE_DONE
	}
}

// wordsPlanned is the words all epochs train.
func (c *core) wordsPlanned() uint64 {
	hi, lo := bits.Mul64(uint64(c.set.Epochs), c.TrainWords)
	if hi != 0 {
		return math.MaxUint64
	}
	return lo
}

// wordsDone is the words of accepted train completes plus the latest heartbeat words of the
// live train leases, capped at wordsPlanned.
func (c *core) wordsDone() uint64 {
	done := c.Counters.AcceptedWords
	for _, l := range c.Leases {
		if l.Kind == skipgridpb.TaskKind_TASK_TRAIN {
			done += l.Words
		}
	}
	return min(done, c.wordsPlanned())
}

// learningRate is alpha decayed linearly with global progress, floored at min alpha, as
// word2vec computes it.
func (c *core) learningRate() float64 {
	planned := c.wordsPlanned()
	if planned == 0 {
		return c.set.Alpha
	}
	lr := c.set.Alpha * (1 - float64(c.wordsDone())/float64(planned))
	return max(lr, c.set.MinAlpha)
}

func phaseName(p skipgridpb.Phase) string {
	return strings.ToLower(strings.TrimPrefix(p.String(), "PHASE_"))
}

func kindName(k skipgridpb.TaskKind) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "TASK_"))
}

// sortedLeaseIDs returns the ids of the live leases that keep returns true for, ascending,
// so that the core acts on them in a deterministic order.
func (c *core) sortedLeaseIDs(keep func(*lease) bool) []uint64 {
	var ids []uint64
	for id, l := range c.Leases {
		if keep(l) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}
