package coordinator

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// Status is a snapshot of the job for people and dashboards, served as JSON at /status.
type Status struct {
	// JobID names the job.
	JobID string `json:"job_id"`
	// Phase is starting, counting, training, gathering, done or failed.
	Phase string `json:"phase"`
	// Error is the reason the job failed; empty otherwise.
	Error string `json:"error,omitempty"`
	// Epoch is the epoch being trained (0-based): the lowest with chunks not yet trained,
	// the last once all are; 0 before training.
	Epoch  int `json:"epoch"`
	Epochs int `json:"epochs"`
	// Chunks is the number of corpus chunks; ChunksDone the tasks of the current pass that
	// are done and ChunkTasks all tasks of the pass (chunks for counting, epochs x chunks
	// for training).
	Chunks     int `json:"chunks"`
	ChunksDone int `json:"chunks_done"`
	ChunkTasks int `json:"chunk_tasks"`
	// VocabSize is the number of vocabulary words, once built.
	VocabSize int `json:"vocab_size"`
	// WordsDone is the training progress, as in LeaseResponse.words_done; WordsPlanned is
	// epochs x train words; Fraction is their ratio.
	WordsDone    uint64  `json:"words_done"`
	WordsPlanned uint64  `json:"words_planned"`
	Fraction     float64 `json:"fraction"`
	// WordsPerSec is WordsDone over the time spent training (up to now, or to the end of
	// training once it ended).
	WordsPerSec float64 `json:"words_per_sec"`
	// ETASeconds is the remaining words at WordsPerSec (0 when unknown).
	ETASeconds float64 `json:"eta_seconds"`
	// LastLoss is the mean loss of the latest epoch with accepted chunks (0 before any).
	LastLoss float64 `json:"last_loss"`
	// LearningRate is the learning rate at WordsDone.
	LearningRate float64 `json:"learning_rate"`
	// ElapsedSeconds is the time since Run started, up to the job's end once it ended.
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	// Workers lists the workers by name.
	Workers []WorkerStatus `json:"workers"`
	// PS lists the shards by index.
	PS []PSStatus `json:"ps"`
	// Members lists the cluster's nodes; MembersSource says where the list comes from:
	// "gossip" (Config.Members) or "registrations" (the nodes that called the
	// coordinator, when Config.Members is nil).
	Members       []Member `json:"members"`
	MembersSource string   `json:"members_source"`
	// History is the progress and loss over time, for plots.
	History History `json:"history"`
}

// Member is one node of the cluster as the membership layer sees it.
type Member struct {
	// Name is the node's unique name.
	Name string `json:"name"`
	// Role is coordinator, ps or worker.
	Role string `json:"role"`
	// Addr is the node's gossip address; empty when the list comes from registrations.
	Addr string `json:"addr,omitempty"`
	// GRPCAddr is where the node serves gRPC, if it does.
	GRPCAddr string `json:"grpc_addr,omitempty"`
	// Shard is a PS node's shard index (0 for other roles).
	Shard int `json:"shard"`
	// State is alive, dead or left, as gossip reports it (registrations know alive and
	// dead only).
	State string `json:"state"`
}

// WorkerStatus describes one worker.
type WorkerStatus struct {
	Name string `json:"name"`
	// Alive is false once the worker was reported dead, until it calls in again.
	Alive bool `json:"alive"`
	// Leases lists the tasks the worker holds now.
	Leases []LeaseStatus `json:"leases"`
	// LastHeartbeat is the time of its last heartbeat or completed lease.
	LastHeartbeat time.Time `json:"last_heartbeat"`
	// WordsPerSec sums its leases' rates between their last two heartbeats.
	WordsPerSec float64 `json:"words_per_sec"`
}

// LeaseStatus describes one live lease.
type LeaseStatus struct {
	ID    uint64 `json:"id"`
	Kind  string `json:"kind"`
	Epoch int    `json:"epoch"`
	Chunk int    `json:"chunk"`
	// Words is the lease's words as of its last heartbeat.
	Words uint64 `json:"words"`
}

// PSStatus describes one PS shard.
type PSStatus struct {
	Shard      int    `json:"shard"`
	Name       string `json:"name"`
	Address    string `json:"address"`
	Registered bool   `json:"registered"`
	// Alive is false once the shard was reported dead, until it registers again.
	Alive bool `json:"alive"`
	// Replica is the serving copy's replica index; Backups lists the shard's other copies
	// when the job keeps replicas.
	Replica int          `json:"replica"`
	Backups []BackupCopy `json:"backups,omitempty"`

	// The shard's latest answer to Stats, which Run asks every Config.StatsEvery once
	// the shards are configured, and once more at the end of training. All zero before
	// the first answer.

	// StatsAt is the time of that answer (zero before the first).
	StatsAt time.Time `json:"stats_at"`
	// StatsError is the error of the latest call when it failed; the other fields then
	// keep the last answer.
	StatsError string `json:"stats_error,omitempty"`
	// LocalRows is the rows the shard holds per table; Dim their length.
	LocalRows uint64 `json:"local_rows"`
	Dim       int    `json:"dim"`
	// TableBytes is the bytes of row values the shard holds, all tables.
	TableBytes uint64 `json:"table_bytes"`
	// Pulls and Pushes count the requests served; RowsPulled and RowsPushed their rows;
	// PushesRejected the pushes refused.
	Pulls          uint64 `json:"pulls"`
	Pushes         uint64 `json:"pushes"`
	RowsPulled     uint64 `json:"rows_pulled"`
	RowsPushed     uint64 `json:"rows_pushed"`
	PushesRejected uint64 `json:"pushes_rejected"`
}

// BackupCopy is one copy of a shard other than the serving one. Lost copies (silent,
// restarted, or the primary before a failover) are behind and not used again by the job.
type BackupCopy struct {
	Replica    int    `json:"replica"`
	Name       string `json:"name"`
	Address    string `json:"address"`
	Registered bool   `json:"registered"`
	Lost       bool   `json:"lost"`
	// Pushes is the pushes the copy had applied at its latest Stats answer.
	Pushes uint64 `json:"pushes"`
}

// Status returns a snapshot of the job. Safe for concurrent use; it calls Config.Members.
func (c *Coordinator) Status() Status {
	c.mu.Lock()
	now := c.now()
	st := c.mu.core.status(now)
	times := c.mu.times
	c.mu.Unlock()

	// Once training is over, the mean rate is over the training time, not up to now.
	if el := times.Gathering.Sub(times.Training).Seconds(); !times.Gathering.IsZero() &&
		!times.Training.IsZero() && el > 0 {
		st.WordsPerSec, st.ETASeconds = float64(st.WordsDone)/el, 0
	}

	st.JobID = c.cfg.JobID
	c.mon.fill(&st, now, c.cfg.HistoryEvery)
	if c.cfg.Members != nil {
		st.Members, st.MembersSource = c.cfg.Members(), "gossip"
	} else {
		st.Members, st.MembersSource = registered(st), "registrations"
	}
	if st.Members == nil {
		st.Members = []Member{}
	}
	return st
}

// fill adds the shards' stats, the history and the elapsed time to st.
func (m *monitor) fill(st *Status, now time.Time, every time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range st.PS {
		p, ps := &st.PS[i], m.mu.stats[i]
		p.StatsError = ps.err
		if r := ps.resp; r != nil {
			p.StatsAt, p.LocalRows, p.Dim, p.TableBytes = ps.at, r.GetLocalRows(),
				int(r.GetDim()), r.GetTableBytes()
			p.Pulls, p.Pushes, p.RowsPulled, p.RowsPushed, p.PushesRejected = r.GetPulls(),
				r.GetPushes(), r.GetRowsPulled(), r.GetRowsPushed(), r.GetPushesRejected()
		}
	}
	st.History = m.mu.hist.snapshot(every)
	if !m.mu.start.IsZero() {
		end := now
		if !m.mu.end.IsZero() {
			end = m.mu.end
		}
		st.ElapsedSeconds = end.Sub(m.mu.start).Seconds()
	}
}

// registered lists the nodes of st that called the coordinator: the coordinator itself,
// the registered shards by index, then the workers by name.
func registered(st Status) []Member {
	state := func(alive bool) string {
		if alive {
			return "alive"
		}
		return "dead"
	}
	out := []Member{{Name: senderName, Role: "coordinator", State: "alive"}}
	for _, p := range st.PS {
		if p.Registered {
			out = append(out, Member{Name: p.Name, Role: "ps", GRPCAddr: p.Address,
				Shard: p.Shard, State: state(p.Alive)})
		}
	}
	for _, w := range st.Workers {
		out = append(out, Member{Name: w.Name, Role: "worker", State: state(w.Alive)})
	}
	return out
}

// status builds the snapshot at now.
func (c *core) status(now time.Time) Status {
	st := Status{
		Phase:        phaseName(c.Phase),
		Error:        c.FailReason,
		Epochs:       c.set.Epochs,
		Chunks:       len(c.Chunks),
		WordsDone:    c.wordsDone(),
		WordsPlanned: c.wordsPlanned(),
		LearningRate: c.learningRate(),
	}
	if c.Vocab != nil {
		st.VocabSize = c.Vocab.Len()
	}
	if c.Pass != nil {
		st.ChunksDone, st.ChunkTasks = c.Pass.DoneTotal, c.Pass.total()
		if c.Pass.Kind == skipgridpb.TaskKind_TASK_TRAIN {
			st.Epoch = min(c.Pass.openRound(), c.set.Epochs-1)
		}
	}
	if st.WordsPlanned > 0 {
		st.Fraction = float64(st.WordsDone) / float64(st.WordsPlanned)
	}
	if el := now.Sub(c.TrainingStart).Seconds(); !c.TrainingStart.IsZero() && el > 0 {
		st.WordsPerSec = float64(st.WordsDone) / el
		if st.WordsPerSec > 0 {
			st.ETASeconds = float64(st.WordsPlanned-st.WordsDone) / st.WordsPerSec
		}
	}
	for i := len(c.Epoch) - 1; i >= 0; i-- {
		if c.Epoch[i].LossTerms > 0 {
			st.LastLoss = c.Epoch[i].loss()
			break
		}
	}
	st.Workers = c.workerStatus()
	for i, p := range c.PS {
		ps := PSStatus{Shard: i, Name: p.Name, Address: p.Address,
			Registered: p.Registered, Alive: p.Alive, Replica: p.Replica}
		for _, b := range p.Backups {
			ps.Backups = append(ps.Backups, BackupCopy{Replica: b.Replica, Name: b.Name,
				Address: b.Address, Registered: b.Registered, Lost: b.Lost,
				Pushes: b.Pushes})
		}
		st.PS = append(st.PS, ps)
	}
	return st
}

// workerStatus lists the workers by name with their live leases.
func (c *core) workerStatus() []WorkerStatus {
	byName := make(map[string]*WorkerStatus, len(c.Workers))
	out := make([]WorkerStatus, 0, len(c.Workers))
	names := make([]string, 0, len(c.Workers))
	for name := range c.Workers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		w := c.Workers[name]
		out = append(out, WorkerStatus{Name: name, Alive: w.Alive, LastHeartbeat: w.LastHeartbeat,
			Leases: []LeaseStatus{}})
	}
	for i := range out {
		byName[out[i].Name] = &out[i]
	}
	for _, id := range c.sortedLeaseIDs(func(*lease) bool { return true }) {
		l := c.Leases[id]
		ws, ok := byName[l.Worker]
		if !ok {
			continue
		}
		t := c.Pass.task(l.Task)
		ws.Leases = append(ws.Leases, LeaseStatus{ID: id, Kind: kindName(l.Kind),
			Epoch: t.Round, Chunk: t.Chunk, Words: l.Words})
		ws.WordsPerSec += l.Rate
	}
	return out
}

// Handler serves GET / (the status page: an HTML page without outside resources that
// reloads itself every 2 seconds while the job runs), GET /status (the JSON of Status) and
// /metrics (the Prometheus metrics of Config.Registerer when it is also a
// prometheus.Gatherer; 404 otherwise).
func (c *Coordinator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", c.servePage)
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(c.Status()); err != nil {
			c.log.Warn("write status", "err", err)
		}
	})
	if g, ok := c.cfg.Registerer.(prometheus.Gatherer); ok {
		mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	}
	return mux
}

// collector exports the core's counters as Prometheus metrics, read at scrape time so that
// they never disagree with the core.
type collector struct{ c *Coordinator }

var (
	descWords = prometheus.NewDesc("skipgrid_coordinator_words_trained_total",
		"Words of accepted train results (in-vocabulary tokens before subsampling).", nil, nil)
	descChunks = prometheus.NewDesc("skipgrid_coordinator_chunks_completed_total",
		"Chunk tasks completed and accepted, by kind (count, train).", []string{"kind"}, nil)
	descExpired = prometheus.NewDesc("skipgrid_coordinator_leases_expired_total",
		"Leases that passed their deadline and went back to the pool.", nil, nil)
	descProgress = prometheus.NewDesc("skipgrid_coordinator_progress_ratio",
		"Training progress: words done over words planned, 0 to 1.", nil, nil)
	descLR = prometheus.NewDesc("skipgrid_coordinator_learning_rate",
		"Learning rate at the current progress.", nil, nil)
	descLoss = prometheus.NewDesc("skipgrid_coordinator_loss",
		"Mean loss of the latest epoch with accepted chunks.", nil, nil)
)

// Describe sends the metrics' descriptors.
func (m *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWords, descChunks, descExpired, descProgress,
		descLR, descLoss} {
		ch <- d
	}
}

// Collect sends the metrics' current values.
func (m *collector) Collect(ch chan<- prometheus.Metric) {
	m.c.mu.Lock()
	co := m.c.mu.core
	ct := co.Counters
	st := co.status(m.c.now())
	m.c.mu.Unlock()

	counter, gauge := prometheus.CounterValue, prometheus.GaugeValue
	ch <- prometheus.MustNewConstMetric(descWords, counter, float64(ct.AcceptedWords))
	ch <- prometheus.MustNewConstMetric(descChunks, counter, float64(ct.CountChunks), "count")
	ch <- prometheus.MustNewConstMetric(descChunks, counter, float64(ct.TrainChunks), "train")
	ch <- prometheus.MustNewConstMetric(descExpired, counter, float64(ct.LeasesExpired))
	ch <- prometheus.MustNewConstMetric(descProgress, gauge, st.Fraction)
	ch <- prometheus.MustNewConstMetric(descLR, gauge, st.LearningRate)
	ch <- prometheus.MustNewConstMetric(descLoss, gauge, st.LastLoss)
}
