package coordinator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
	"github.com/skipgrid/skipgrid/shard"
	"github.com/skipgrid/skipgrid/vocab"
)

// Files of the state directory.
const (
	// StateFile is the coordinator's saved state, rewritten as the job progresses.
	StateFile = "state.json"
	// StateVocabFile is the final vocabulary, written once when it is built.
	StateVocabFile = "vocab.json"
	// stateVersion is the layout of StateFile this build writes and reads.
	stateVersion = 1
	// saveEvery bounds how often progress is saved: completions that land closer together
	// are saved as one batch.
	saveEvery = 200 * time.Millisecond
	// leaseIDGap is added to the saved next lease id on resume: leases granted after the
	// last save were never recorded, and their ids must not be handed out again.
	leaseIDGap = 1 << 32
)

// ErrStateMismatch is wrapped by New's error when Config.Resume finds a saved state of a
// different job (other corpus or settings) in the state directory.
var ErrStateMismatch = errors.New("saved state is of another job")

// savedState is the JSON of StateFile: the core's plain data (the counting pass's counts and
// the vocabulary excepted; the vocabulary has a file of its own, or for a fine-tuning job is
// read again from the labelled file) and the phase times.
type savedState struct {
	Version    int                `json:"version"`
	Job        jobIdentity        `json:"job"`
	SavedAt    time.Time          `json:"saved_at"`
	Times      phaseTimes         `json:"times"`
	Phase      skipgridpb.Phase   `json:"phase"`
	FailReason string             `json:"fail_reason,omitempty"`
	PS         []psShard          `json:"ps"`
	Workers    map[string]*worker `json:"workers"`
	// HasVocab says the vocabulary is final: StateVocabFile holds it (a fine-tuning job's
	// Task says what it was instead). The rest below is saved only then, since a job without
	// it starts over from counting (a fine-tuning job: from reading its labelled file).
	HasVocab      bool              `json:"has_vocab"`
	Task          *savedTask        `json:"task,omitempty"`
	Chunks        []shard.Chunk     `json:"chunks,omitempty"`
	Pass          *pass             `json:"pass,omitempty"`
	Leases        map[uint64]*lease `json:"leases,omitempty"`
	NextLease     uint64            `json:"next_lease"`
	TrainWords    uint64            `json:"train_words"`
	Epoch         []epochStats      `json:"epoch,omitempty"`
	Counters      counters          `json:"counters"`
	TrainingStart time.Time         `json:"training_start"`
	Durable       durable           `json:"durable"`
	// vocabMsg is the GetVocab answer of a loaded vocabulary; not saved.
	vocabMsg *skipgridpb.Vocab
}

// vocabFile is the JSON of StateVocabFile.
type vocabFile struct {
	Words  []string `json:"words"`
	Counts []uint64 `json:"counts"`
}

// jobIdentity is what must not change between a job and its resumption.
type jobIdentity struct {
	JobID      string   `json:"job_id"`
	Corpus     []string `json:"corpus"`
	ChunkBytes int64    `json:"chunk_bytes"`
	NumPS      int      `json:"num_ps"`
	Settings   Settings `json:"settings"`
	// Finetune holds a fine-tuning job's own settings (nil for pretraining).
	Finetune *finetuneIdentity `json:"finetune,omitempty"`
}

// identity returns the job's identity; the lease timeout may change on resume.
func (c *Coordinator) identity() jobIdentity {
	st := c.settings()
	st.LeaseTimeoutSeconds = 0
	return jobIdentity{JobID: c.cfg.JobID, Corpus: c.cfg.Corpus, ChunkBytes: c.cfg.ChunkBytes,
		NumPS: c.cfg.NumPS, Settings: st, Finetune: c.finetuneIdentity()}
}

// stateKeeper saves and restores the coordinator's state.
type stateKeeper struct {
	dir string
	// resumed holds the vocabulary of a resumed job whose vocabulary was final; nil else.
	resumed *vocab.Vocab
	// task is the saved task of a resumed fine-tuning job that was training; nil else.
	task *savedTask

	// mu serialises saves; it is taken before the Coordinator's mutex, never after.
	mu        sync.Mutex
	lastKey   progressKey
	lastSave  time.Time
	vocabDone bool
	failing   bool
	// times are the phase times of the resumed job, for the phases before this start.
	times phaseTimes
	// outExisted says OutDir existed before this coordinator; one it created only for the
	// state is removed with the state.
	outExisted bool
}

// keepTimes puts the resumed job's start, counting and training times back into t (Run
// marks them anew as it goes). k may be nil.
func (k *stateKeeper) keepTimes(t *phaseTimes) {
	if k == nil || k.times.Start.IsZero() {
		return
	}
	t.Start, t.Counting, t.Training = k.times.Start, k.times.Counting, k.times.Training
}

// progressKey changes whenever the state holds something a resumed job would miss: a new
// lease, a completion, a rollback, a checkpoint, a phase.
type progressKey struct {
	phase          skipgridpb.Phase
	kind           skipgridpb.TaskKind
	nextLease      uint64
	done           int
	expired        uint64
	released       uint64
	lastCheckpoint uint64
	restarts       int
}

func (c *core) progressKey() progressKey {
	k := progressKey{phase: c.Phase, nextLease: c.NextLease, expired: c.Counters.LeasesExpired,
		released: c.Counters.LeasesReleased, lastCheckpoint: c.Durable.LastCheckpoint,
		restarts: c.Durable.Recovery.ShardRestarts}
	if c.Pass != nil {
		k.kind, k.done = c.Pass.Kind, c.Pass.DoneTotal
	}
	return k
}

// stateDir is Config.StateDir, or OutDir/.state.
func (c Config) stateDir() string {
	if c.StateDir != "" {
		return c.StateDir
	}
	return filepath.Join(c.OutDir, ".state")
}

// openState prepares persistence and, with Config.Resume, loads a saved state into the core.
func (c *Coordinator) openState() error {
	c.st = &stateKeeper{dir: c.cfg.stateDir()}
	if _, err := os.Stat(c.cfg.OutDir); err == nil {
		c.st.outExisted = true
	}
	path := filepath.Join(c.st.dir, StateFile)
	raw, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if c.cfg.Resume {
			c.log.Info("no saved state; starting a new job", "state_dir", c.st.dir)
		}
		return nil
	case err != nil:
		return fmt.Errorf("coordinator state: %w", err)
	case !c.cfg.Resume:
		// CheckNoStoppedJob has made sure that the saved job had ended.
		c.log.Info("the saved state of an earlier job that ended is replaced by this one",
			"path", path)
		return nil
	}

	var st savedState
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("coordinator state %s: %w; remove the file to start the job afresh",
			path, err)
	}
	if err := c.checkSaved(path, &st); err != nil {
		return err
	}
	if st.Phase == skipgridpb.Phase_PHASE_DONE || st.Phase == skipgridpb.Phase_PHASE_FAILED {
		c.log.Info("the saved job had ended; starting a new one", "path", path,
			"phase", phaseName(st.Phase), "reason", st.FailReason)
		return nil
	}
	switch {
	case st.HasVocab && c.cfg.finetune():
		if err := c.loadTask(path, &st); err != nil {
			return err
		}
	case st.HasVocab:
		if err := c.loadVocab(&st); err != nil {
			return err
		}
	}
	c.restore(&st)
	return nil
}

// checkSaved checks a saved state's version and that it is of this job.
func (c *Coordinator) checkSaved(path string, st *savedState) error {
	if st.Version != stateVersion {
		return fmt.Errorf("coordinator state %s: version %d; this build reads version %d",
			path, st.Version, stateVersion)
	}
	if diffs := identityDiff(st.Job, c.identity()); len(diffs) > 0 {
		return fmt.Errorf("%w: %s differs from this job in %s; resume with the same "+
			"settings, or use another output directory (or state directory) for a new job",
			ErrStateMismatch, path, strings.Join(diffs, ", "))
	}
	if len(st.PS) != c.cfg.NumPS {
		return fmt.Errorf("coordinator state %s: %d PS shards saved, the job has %d", path,
			len(st.PS), c.cfg.NumPS)
	}
	return nil
}

// identityDiff names the fields in which two identities differ, with both values.
func identityDiff(saved, now jobIdentity) []string {
	flat := func(id jobIdentity) map[string]string {
		b, _ := json.Marshal(id)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		out := map[string]string{}
		var walk func(prefix string, v any)
		walk = func(prefix string, v any) {
			if sub, ok := v.(map[string]any); ok {
				for k, x := range sub {
					walk(prefix+k+".", x)
				}
				return
			}
			j, _ := json.Marshal(v)
			out[strings.TrimSuffix(prefix, ".")] = string(j)
		}
		walk("", m)
		return out
	}
	a, b := flat(saved), flat(now)
	var diffs []string
	for k, av := range a {
		if bv := b[k]; av != bv {
			diffs = append(diffs, fmt.Sprintf("%s (saved %s, now %s)", k, av, bv))
		}
	}
	sort.Strings(diffs)
	return diffs
}

// loadVocab reads the saved vocabulary and checks it against the state.
func (c *Coordinator) loadVocab(st *savedState) error {
	path := filepath.Join(c.st.dir, StateVocabFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("coordinator state: the vocabulary: %w", err)
	}
	var msg vocabFile
	if err := json.Unmarshal(raw, &msg); err != nil {
		return fmt.Errorf("coordinator state %s: %w", path, err)
	}
	v, err := vocab.New(msg.Words, msg.Counts)
	if err != nil {
		return fmt.Errorf("coordinator state %s: %w", path, err)
	}
	if v.TrainWords() != st.TrainWords {
		return fmt.Errorf("coordinator state %s: the vocabulary counts %d train words, the "+
			"state %d; the files are of different jobs", path, v.TrainWords(), st.TrainWords)
	}
	c.st.resumed, c.st.vocabDone = v, true
	st.vocabMsg = &skipgridpb.Vocab{Words: v.Words, Counts: v.Counts}
	return nil
}

// restore puts a saved state into the core. A job whose vocabulary was not final keeps only
// its shards' registrations and starts over from counting. Restored leases get a fresh
// deadline, since their workers could not heartbeat while the coordinator was down.
func (c *Coordinator) restore(st *savedState) {
	now := c.now()
	co := c.mu.core
	co.PS = st.PS
	for i := range co.PS {
		co.PS[i].Alive = co.PS[i].Registered
	}
	if st.Workers != nil {
		co.Workers = st.Workers
	}
	co.Durable = st.Durable
	co.Durable.Recovery.CoordinatorResumes++
	for i := range co.Durable.Shards {
		co.Durable.Shards[i].FailingSince = time.Time{} // a fresh ShardDownTimeout
	}
	if !st.HasVocab {
		c.log.Info("resuming a job whose vocabulary was not final: counting starts over",
			"phase", phaseName(st.Phase))
		return
	}

	co.Chunks, co.Pass, co.TrainWords, co.Epoch = st.Chunks, st.Pass, st.TrainWords, st.Epoch
	co.Counters, co.TrainingStart = st.Counters, st.TrainingStart
	co.Vocab = c.st.resumed
	co.NextLease = st.NextLease + leaseIDGap
	co.Leases = make(map[uint64]*lease)
	for id, l := range st.Leases {
		l.Deadline = now.Add(c.cfg.LeaseTimeout)
		l.LastBeat = now
		co.Leases[id] = l
	}
	co.Phase = skipgridpb.Phase_PHASE_COUNTING
	if co.Pass != nil && co.Pass.Kind == skipgridpb.TaskKind_TASK_TRAIN {
		co.Phase = skipgridpb.Phase_PHASE_TRAINING
	}
	if st.Task != nil {
		// Leases wait until runFinetune has read the task again and has the shards back.
		co.Finetune, co.set.Epochs = true, st.Task.Passes
		co.Phase = skipgridpb.Phase_PHASE_STARTING
	}
	co.LastActivity = now
	c.mu.vocabMsg = st.vocabMsg
	c.st.times = st.Times
	done := 0
	if co.Pass != nil {
		done = co.Pass.DoneTotal
	}
	c.log.Info("resumed the saved job", "phase", phaseName(co.Phase), "tasks_done", done,
		"leases", len(co.Leases), "accepted_words", co.Counters.AcceptedWords,
		"learning_rate", co.learningRate(), "last_checkpoint", co.Durable.LastCheckpoint)
}

// resumedVocab returns the vocabulary and chunks of a resumed job whose vocabulary was
// final, with the phase times saved (the start of the job is the first run's); nil when the
// job must count.
func (c *Coordinator) resumedVocab() (*vocab.Vocab, []shard.Chunk) {
	if c.st == nil || c.st.resumed == nil {
		return nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.resumed, c.mu.core.Chunks
}

// snapshotLocked returns the state to save; c.mu is held.
func (c *Coordinator) snapshotLocked(hasVocab bool) *savedState {
	co := c.mu.core
	st := &savedState{Version: stateVersion, Job: c.identity(), SavedAt: c.now(),
		Times: c.mu.times, Phase: co.Phase, FailReason: co.FailReason, PS: co.PS,
		Workers: co.Workers, Durable: co.Durable}
	// A resumed fine-tuning job has its pass before runFinetune has its vocabulary again.
	if !hasVocab || (co.Vocab == nil && !co.Finetune) {
		return st
	}
	st.HasVocab = true
	st.Chunks, st.Pass, st.Leases, st.NextLease = co.Chunks, co.Pass, co.Leases, co.NextLease
	st.TrainWords, st.Epoch, st.Counters = co.TrainWords, co.Epoch, co.Counters
	st.TrainingStart = co.TrainingStart
	st.Task = c.savedTaskLocked()
	return st
}

// saveState writes the state when it changed since the last save and saveEvery has passed,
// or at once with force. A failure is logged (once per run of failures) and returned.
func (c *Coordinator) saveState(force bool) error {
	if c.st == nil {
		return nil
	}
	k := c.st
	k.mu.Lock()
	defer k.mu.Unlock()

	c.mu.Lock()
	key := c.mu.core.progressKey()
	if !force && (key == k.lastKey || time.Since(k.lastSave) < saveEvery) {
		c.mu.Unlock()
		return nil
	}
	raw, err := json.MarshalIndent(c.snapshotLocked(k.vocabDone), "", " ")
	c.mu.Unlock()

	if err == nil {
		err = os.MkdirAll(k.dir, 0o755)
	}
	if err == nil {
		err = writeFileAtomic(filepath.Join(k.dir, StateFile), func(w io.Writer) error {
			_, err := w.Write(raw)
			return err
		})
	}
	if err != nil {
		if !k.failing {
			c.log.Error("could not save the coordinator's state; a restart would lose the "+
				"progress since the last save", "dir", k.dir, "err", err)
		}
		k.failing = true
		return fmt.Errorf("save coordinator state: %w", err)
	}
	if k.failing {
		c.log.Info("coordinator state saved again", "dir", k.dir)
	}
	k.failing, k.lastKey, k.lastSave = false, key, time.Now()
	return nil
}

// saveVocab writes the final vocabulary to the state directory once, before any state that
// claims it.
func (c *Coordinator) saveVocab(v *vocab.Vocab) error {
	if c.st == nil {
		return nil
	}
	k := c.st
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.vocabDone {
		return nil
	}
	if err := os.MkdirAll(k.dir, 0o755); err != nil {
		return fmt.Errorf("save vocabulary: %w", err)
	}
	msg := vocabFile{Words: v.Words, Counts: v.Counts}
	err := writeFileAtomic(filepath.Join(k.dir, StateVocabFile), func(w io.Writer) error {
		return json.NewEncoder(w).Encode(msg)
	})
	if err != nil {
		return fmt.Errorf("save vocabulary: %w", err)
	}
	k.vocabDone = true
	return nil
}

// saveFinal ends the state's life when Run ends with err: a job that is done or failed is
// never resumed, so its state files are removed (and OutDir with them when the coordinator
// created it for them alone: a failed job leaves nothing behind). A run stopped by its
// context (the process was asked to stop, to resume later), failed because a shard was
// down (ErrShardDown), or refused to resume because its files changed (ErrStateMismatch),
// keeps the last state saved during training.
func (c *Coordinator) saveFinal(err error, stopped bool) {
	if stopped || errors.Is(err, ErrShardDown) || errors.Is(err, ErrStateMismatch) ||
		c.st == nil {
		return
	}
	k := c.st
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, name := range []string{StateFile, StateVocabFile} {
		if err := os.Remove(filepath.Join(k.dir, name)); err != nil &&
			!errors.Is(err, os.ErrNotExist) {
			c.log.Warn("could not remove a state file of the ended job", "err", err)
		}
	}
	left, _ := filepath.Glob(filepath.Join(k.dir, ".*.tmp-*"))
	for _, p := range left {
		_ = os.Remove(p)
	}
	_ = os.Remove(k.dir) // only when empty
	if !k.outExisted {
		_ = os.Remove(c.cfg.OutDir) // only when empty
	}
}

// bitset is a set of task indexes, saved compactly.
type bitset []uint64

func newBitset(done []bool) bitset {
	b := make(bitset, (len(done)+63)/64)
	for i, d := range done {
		if d {
			b[i/64] |= 1 << (i % 64)
		}
	}
	return b
}

func (b bitset) has(i int) bool { return i/64 < len(b) && b[i/64]&(1<<(i%64)) != 0 }

// count returns the number of members.
func (b bitset) count() int {
	n := 0
	for i := range len(b) * 64 {
		if b.has(i) {
			n++
		}
	}
	return n
}
