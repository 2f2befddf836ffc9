package coordinator

import (
	"bytes"
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestHistorySeries(t *testing.T) {
	// Samples a second apart; words grow by 100, 200, ... 800 a second. With 5-sample
	// windows, point i spans from the latest sample at or before t-5 (sample 0 while
	// there is none): rates W[i]/T[i] = 100, 150, 200, 250, 300 for i = 1..5, then
	// (2100-100)/5 = 400, (2800-300)/5 = 500, (3600-600)/5 = 600.
	// Loss: none while no term was added (i = 1, 2); 5/10 at i = 3 and 4; 15/20 at i = 5,
	// 6 and 7; (15-5)/(20-10) = 1 at i = 8.
	h := History{IntervalSeconds: 1,
		T:         []float64{0, 1, 2, 3, 4, 5, 6, 7, 8},
		Words:     []uint64{0, 100, 300, 600, 1000, 1500, 2100, 2800, 3600},
		LossSum:   []float64{0, 0, 0, 5, 5, 15, 15, 15, 15},
		LossTerms: []uint64{0, 0, 0, 10, 10, 20, 20, 20, 20},
	}
	rate, loss := historySeries(h)
	wantRate := []point{{1, 100}, {2, 150}, {3, 200}, {4, 250}, {5, 300}, {6, 400}, {7, 500},
		{8, 600}}
	wantLoss := []point{{3, 0.5}, {4, 0.5}, {5, 0.75}, {6, 0.75}, {7, 0.75}, {8, 1}}
	opt := cmp.AllowUnexported(point{})
	if diff := cmp.Diff(wantRate, rate, opt); diff != "" {
		t.Errorf("rate (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantLoss, loss, opt); diff != "" {
		t.Errorf("loss (-want +got):\n%s", diff)
	}
}

func TestHistorySeriesEdges(t *testing.T) {
	// Words that step back (a lost lease) give a zero rate, not a negative one; samples at
	// the same time give no point; thinned samples 8 s apart span their gap.
	h := History{IntervalSeconds: 1, T: []float64{0, 0, 8, 16},
		Words: []uint64{10, 10, 5, 805}, LossSum: make([]float64, 4),
		LossTerms: make([]uint64, 4)}
	rate, loss := historySeries(h)
	want := []point{{8, 0}, {16, 100}} // (805-5)/8
	if diff := cmp.Diff(want, rate, cmp.AllowUnexported(point{})); diff != "" {
		t.Errorf("rate (-want +got):\n%s", diff)
	}
	if len(loss) != 0 {
		t.Errorf("loss = %v, want none: no loss term was added", loss)
	}
}

func TestNewPlot(t *testing.T) {
	// x runs 0..2 over the area's 562 units from x=64; y runs 0..157.5 (150 padded by 5%)
	// over 162 units from y=12, upwards:
	//   (1, 100): x = 64 + 562/2 = 345.0, y = 12 + 162*(1-100/157.5) = 71.14
	//   (2, 150): x = 626.0, y = 12 + 162*(7.5/157.5) = 19.71
	p := newPlot("rate", "Words per second", "", []point{{1, 100}, {2, 150}}, true, fmtCount)
	if want := "M345.0,71.1 L626.0,19.7"; p.Path != want {
		t.Errorf("path = %q, want %q", p.Path, want)
	}
	if p.Points != 2 || p.Last != "150" || p.Message != "" {
		t.Errorf("points %d, last %q, message %q; want 2, 150, none", p.Points, p.Last,
			p.Message)
	}
	// x ticks every 0.5 s (2/4), y ticks every 50 (157.5/4 = 39.4, rounded up to 50).
	var xs, ys []string
	for _, tk := range p.XTicks {
		xs = append(xs, tk.Label)
	}
	for _, tk := range p.YTicks {
		ys = append(ys, tk.Label)
	}
	if diff := cmp.Diff([]string{"0s", "0.5s", "1s", "1.5s", "2s"}, xs); diff != "" {
		t.Errorf("x ticks (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"0", "50", "100", "150"}, ys); diff != "" {
		t.Errorf("y ticks (-want +got):\n%s", diff)
	}

	if e := newPlot("loss", "Loss", "", nil, false, fmtNumber); e.Message == "" || e.Path != "" {
		t.Errorf("empty plot = %+v, want a message and no path", e)
	}
}

func TestNiceTicks(t *testing.T) {
	for _, tt := range []struct {
		lo, hi float64
		want   []float64
	}{
		// (hi-lo)/4 = 0.875, rounded up to 1.
		{0, 3.5, []float64{0, 1, 2, 3}},
		// 0.0275 rounds up to 0.05; multiples of it in [0.47, 0.58].
		{0.47, 0.58, []float64{0.5, 0.55}},
		// 32500 rounds up to 50000.
		{0, 130000, []float64{0, 50000, 100000}},
		// -1..1: 0.5 apart.
		{-1, 1, []float64{-1, -0.5, 0, 0.5, 1}},
		{1, 1, nil},
	} {
		got := niceTicks(tt.lo, tt.hi, 4)
		if diff := cmp.Diff(tt.want, got, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
			t.Errorf("niceTicks(%v, %v) (-want +got):\n%s", tt.lo, tt.hi, diff)
		}
	}
}

func TestFormats(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{fmtSeconds(0), "0s"},
		{fmtSeconds(2.5), "2.5s"},
		{fmtSeconds(42), "42s"},
		{fmtSeconds(185), "3m05s"},    // 3*60 + 5
		{fmtSeconds(7620), "2h07m"},   // 2*3600 + 7*60
		{fmtSeconds(math.NaN()), "-"}, // unknown
		{fmtCount(950), "950"},
		{fmtCount(12345), "12.3k"},
		{fmtCount(4560000), "4.56M"},
		{fmtBytes(512), "512 B"},
		{fmtBytes(1536), "1.5 KiB"},    // 1536/1024
		{fmtBytes(1606400), "1.5 MiB"}, // 1606400/1024/1024 = 1.53
		{fmtBytes(3 << 40), "3.0 TiB"}, // 3 * 2^40
		{fmtNumber(0.45132), "0.451"},  // three significant digits
		{fmtNumber(2.5e-6), "2.5e-06"}, // small learning rates stay readable
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// pageStatus is a job in training with a member list, shard stats, a worker and history.
func pageStatus() Status {
	return Status{
		JobID: "page", Phase: "training", Epoch: 1, Epochs: 3, Chunks: 4, ChunksDone: 6,
		ChunkTasks: 12, VocabSize: 4041, WordsDone: 500, WordsPlanned: 1000, Fraction: 0.5,
		WordsPerSec: 125, ETASeconds: 4, LastLoss: 0.5, LearningRate: 0.0125,
		ElapsedSeconds: 4,
		Workers: []WorkerStatus{{Name: "worker-0", Alive: true, WordsPerSec: 125,
			LastHeartbeat: t0, Leases: []LeaseStatus{{ID: 9, Kind: "train", Epoch: 1,
				Chunk: 2, Words: 40}}}},
		PS: []PSStatus{{Shard: 0, Name: "ps-0", Address: "10.0.0.2:7071", Registered: true,
			Alive: true, StatsAt: t0, LocalRows: 4041, Dim: 100, TableBytes: 3232800}},
		Members: []Member{
			{Name: "coord", Role: "coordinator", Addr: "10.0.0.1:7946", State: "alive"},
			{Name: "ps-0", Role: "ps", Addr: "10.0.0.2:7946", GRPCAddr: "10.0.0.2:7071",
				State: "alive"},
			{Name: "worker-0", Role: "worker", Addr: "10.0.0.3:7946", State: "dead"},
		},
		MembersSource: "gossip",
		History: History{IntervalSeconds: 1, T: []float64{0, 1, 2, 3, 4},
			Words: []uint64{0, 100, 250, 400, 500}, LossSum: []float64{0, 3, 5, 6, 7},
			LossTerms: []uint64{0, 4, 8, 10, 12}},
	}
}

func renderPage(t *testing.T, st Status, refresh int) string {
	t.Helper()
	var b bytes.Buffer
	v := newPageView(st, refresh, t0.Add(3*time.Second))
	if err := pageTemplate.Execute(&b, v); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestPageShowsTheJob(t *testing.T) {
	page := renderPage(t, pageStatus(), 2)
	for _, want := range []string{
		`<meta http-equiv="refresh" content="2">`,
		`<span id="percent">50.0%</span>`,
		`style="width: 50.0%"`,
		`<dd>2 of 3</dd>`,                    // epoch 1 is the second
		`<dd>500 of 1.0k</dd>`,               // words
		`<dd id="eta">4s</dd>`,               // 500 words left at 125 a second
		`<dd>0.0125</dd>`,                    // learning rate
		`(3, from gossip)`,                   // members
		`<td>10.0.0.2:7071</td>`,             // PS address
		`<td class="num">3.1 MiB</td>`,       // 3232800 / 2^20 = 3.08
		`<td>epoch 2 chunk 2, 40 words</td>`, // the worker's lease
		`<td class="state-dead">dead</td>`,   // worker-0 as gossip sees it
		`<td>3s ago</td>`,                    // last heartbeat at t0, page at t0+3s
		`id="plot-loss"`, `id="plot-rate"`,
		// Rates 100, 125, 133.3, 125 (W[i]/T[i], all windows reach sample 0) and losses
		// 3/4, 5/8, 6/10, 7/12: four points each.
		`<path class="series" data-points="4"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if n := strings.Count(page, `data-points="4"`); n != 2 {
		t.Errorf("page has %d plots of 4 points, want 2", n)
	}
	if n := strings.Count(page, `<tr class="member">`); n != 3 {
		t.Errorf("page lists %d members, want 3", n)
	}
}

func TestPageIsSelfContained(t *testing.T) {
	page := renderPage(t, pageStatus(), 2)
	// The SVG namespace is a name, never fetched; nothing else may point outside.
	rest := strings.ReplaceAll(page, `xmlns="http://www.w3.org/2000/svg"`, "")
	for _, bad := range []string{"http:", "https:", "<script", "src=", "@import", "url(",
		"<link"} {
		if strings.Contains(rest, bad) {
			t.Errorf("page contains %q; it must load nothing from elsewhere", bad)
		}
	}
}

func TestPageStopsReloadingWhenDone(t *testing.T) {
	st := pageStatus()
	st.Phase, st.Fraction, st.Error = "failed", 0.5, "a <b>bad</b> chunk"
	page := renderPage(t, st, 2)
	if strings.Contains(page, "http-equiv") {
		t.Error("a failed job's page still reloads")
	}
	// The failure is shown, escaped.
	if !strings.Contains(page, `<p id="error" class="error">a &lt;b&gt;bad&lt;/b&gt; chunk</p>`) {
		t.Error("page lacks the escaped failure reason")
	}
}

func TestPageBeforeAnyData(t *testing.T) {
	st := Status{JobID: "j", Phase: "starting", Epochs: 3, PS: []PSStatus{{Shard: 0}},
		Members: []Member{}}
	page := renderPage(t, st, 5)
	for _, want := range []string{`content="5"`, "no data yet", "no worker has called in yet",
		`<td class="state-missing">missing</td>`, `<dd id="eta">unknown</dd>`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<path") {
		t.Error("page draws a series without data")
	}
}

func TestHandlerServesPage(t *testing.T) {
	cfg := e2eConfig(t, tinyCorpus(t))
	cfg.Registerer = prometheus.NewRegistry()
	fc := newFakeCluster(t, cfg)
	fc.registerPS(t)
	srv := httptest.NewServer(fc.c.Handler())
	defer srv.Close()

	for _, tt := range []struct {
		path, contains string
		code           int
	}{
		{"/", `content="2"`, http.StatusOK},
		{"/?refresh=0", "not reloading", http.StatusOK},
		{"/?refresh=x", "want whole seconds", http.StatusBadRequest},
		{"/?refresh=-1", "want whole seconds", http.StatusBadRequest},
		{"/nothing", "not found", http.StatusNotFound},
	} {
		resp, err := http.Get(srv.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.code || !strings.Contains(string(b), tt.contains) {
			t.Errorf("GET %s: %s, body %.200q; want %d containing %q", tt.path, resp.Status,
				b, tt.code, tt.contains)
		}
		ct := resp.Header.Get("Content-Type")
		if tt.code == http.StatusOK && ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: content type %q", tt.path, ct)
		}
	}
}

func TestMembers(t *testing.T) {
	// Without Config.Members the list is the coordinator and the nodes that registered.
	fc := newFakeCluster(t, e2eConfig(t, tinyCorpus(t)))
	fc.registerPS(t)
	newFakeWorker(t, fc.c, "w", nil)
	fc.c.NodeFailed("w")
	st := fc.c.Status()
	want := []Member{
		{Name: "coordinator", Role: "coordinator", State: "alive"},
		{Name: "ps0", Role: "ps", GRPCAddr: psAddr(0), Shard: 0, State: "alive"},
		{Name: "ps1", Role: "ps", GRPCAddr: psAddr(1), Shard: 1, State: "alive"},
		{Name: "w", Role: "worker", State: "dead"},
	}
	if diff := cmp.Diff(want, st.Members); diff != "" || st.MembersSource != "registrations" {
		t.Errorf("members from %q (-want +got):\n%s", st.MembersSource, diff)
	}

	// With it, the list is what it returns.
	cfg := e2eConfig(t, tinyCorpus(t))
	gossip := []Member{{Name: "n", Role: "worker", Addr: "1.2.3.4:7946", State: "left"}}
	cfg.Members = func() []Member { return gossip }
	st = newFakeCluster(t, cfg).c.Status()
	if diff := cmp.Diff(gossip, st.Members); diff != "" || st.MembersSource != "gossip" {
		t.Errorf("members from %q (-want +got):\n%s", st.MembersSource, diff)
	}
}

func TestMetricsLint(t *testing.T) {
	cfg := e2eConfig(t, tinyCorpus(t))
	cfg.Registerer = prometheus.NewRegistry()
	fc := newFakeCluster(t, cfg)
	srv := httptest.NewServer(fc.c.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)

	// Every metric the collector describes is exposed, and promlint finds nothing.
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	var names []string
	for name := range mfs {
		names = append(names, name)
	}
	want := []string{"skipgrid_coordinator_chunks_completed_total",
		"skipgrid_coordinator_leases_expired_total", "skipgrid_coordinator_learning_rate",
		"skipgrid_coordinator_loss", "skipgrid_coordinator_progress_ratio",
		"skipgrid_coordinator_words_trained_total"}
	if diff := cmp.Diff(want, names, cmpopts.SortSlices(func(a, b string) bool {
		return a < b
	})); diff != "" {
		t.Errorf("metric names (-want +got):\n%s", diff)
	}
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v, %v", problems, err)
	}
}

// TestRunRecordsHistory runs a whole job and checks that the history starts at Run's start
// and ends at the finished job.
func TestRunRecordsHistory(t *testing.T) {
	corpus := tinyCorpus(t)
	cfg := e2eConfig(t, corpus)
	cfg.HistoryEvery = time.Millisecond
	fc := newFakeCluster(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	wait := fc.start(ctx)
	fc.registerPS(t)
	w := newFakeWorker(t, fc.c, "w", corpus)
	if err := w.run(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := wait(); err != nil {
		t.Fatal(err)
	}

	// 61 train words a epoch for 3 epochs (see TestEndToEnd); the fake worker reports a
	// loss sum of a quarter of its loss terms.
	h := fc.c.Status().History
	n := len(h.T)
	if n < 2 || h.T[0] != 0 || h.Words[n-1] != 183 {
		t.Fatalf("history = %+v; want samples from 0 to 183 words", h)
	}
	if got := h.LossSum[n-1] / float64(h.LossTerms[n-1]); h.LossTerms[n-1] == 0 || got != 0.25 {
		t.Errorf("final mean loss = %v over %d terms, want 0.25", got, h.LossTerms[n-1])
	}
}

// tagRE finds svg elements, for a quick look that the page's markup holds two plots.
var tagRE = regexp.MustCompile(`<svg [^>]*id="plot-(\w+)"`)

func TestPageHasBothPlots(t *testing.T) {
	var ids []string
	for _, m := range tagRE.FindAllStringSubmatch(renderPage(t, pageStatus(), 2), -1) {
		ids = append(ids, m[1])
	}
	if diff := cmp.Diff([]string{"loss", "rate"}, ids); diff != "" {
		t.Errorf("plots (-want +got):\n%s", diff)
	}
}
