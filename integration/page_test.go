package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// chromiumInstall is what CI runs so that TestStatusPage can load the page.
const chromiumInstall = "apt-get install -y --no-install-recommends chromium fonts-dejavu-core"

// chromium returns the headless browser's path: $SKIPGRID_CHROMIUM, or chromium on the PATH.
// Without one the test is skipped, unless $CI is set: there a missing browser fails it.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SKIPGRID_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no chromium on the PATH (nor $SKIPGRID_CHROMIUM); on Debian: " + chromiumInstall
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// browse runs headless chromium on url with args (--dump-dom, --screenshot=...) and returns
// its standard output.
func browse(t *testing.T, ctx context.Context, browser, url string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--hide-scrollbars", "--user-data-dir=" + t.TempDir(),
		"--window-size=1280,1000"}
	cmd := exec.CommandContext(ctx, browser, append(append(base, args...), url)...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, tail(stderr.Bytes(), 3000))
	}
	return stdout.Bytes()
}

// getJSON decodes the JSON at url into v.
func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// pageStatus is the part of /status the page test reads.
type pageStatus struct {
	Phase   string `json:"phase"`
	History struct {
		T []float64 `json:"t"`
	} `json:"history"`
	MembersSource string `json:"members_source"`
	Members       []struct {
		Name string `json:"name"`
		Role string `json:"role"`
	} `json:"members"`
}

// awaitDone polls /status at base until the job is done.
func awaitDone(t *testing.T, ctx context.Context, base string) pageStatus {
	t.Helper()
	for {
		var st pageStatus
		err := getJSON(base+"/status", &st)
		if err == nil && (st.Phase == "done" || st.Phase == "failed") {
			if st.Phase == "failed" {
				t.Fatalf("the job failed: %+v", st)
			}
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the job was not done before the deadline (last status %+v, err %v)",
				st, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// plotRE matches one plot of the page and the points of its series.
var plotRE = regexp.MustCompile(`(?s)<svg [^>]*id="plot-(\w+)".*?</svg>`)
var pointsRE = regexp.MustCompile(`<path class="series" data-points="(\d+)"`)

// TestStatusPage trains a small job with the status page served, loads the page in headless
// Chromium once the job is done, checks the plots, the member list and the progress in the
// DOM the browser built, and saves a screenshot (also to $SKIPGRID_PAGE_SCREENSHOT when it
// names a file).
func TestStatusPage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a job and a browser; skipped with -short")
	}
	browser := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	addr := freeAddr(t)
	base := "http://" + addr
	c := newCluster(t)
	c.start("train", "train", "--corpus", "../data/lee_background.cor", "--out", t.TempDir(),
		"--epochs", "6", "--min-count", "2", "--chunk-bytes", "32768", "--workers", "2",
		"--ps", "2", "--http-addr", addr, "--linger", "2m", "--log-level", "warn")
	st := awaitDone(t, ctx, base)

	dom := string(browse(t, ctx, browser, base+"/", "--dump-dom"))
	checkPageDOM(t, dom, len(st.History.T))

	shot := filepath.Join(t.TempDir(), "status.png")
	browse(t, ctx, browser, base+"/", "--screenshot="+shot)
	png, err := os.ReadFile(shot)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot %s: %d bytes, %v; want a PNG", shot, len(png), err)
	}
	if dst := os.Getenv("SKIPGRID_PAGE_SCREENSHOT"); dst != "" {
		if err := os.WriteFile(dst, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// checkPageDOM checks the page of a finished job of two shards and two workers whose
// history holds n samples.
func checkPageDOM(t *testing.T, dom string, n int) {
	t.Helper()

	// The history holds the first and the final sample at least; the rate plot has a point
	// per sample after the first (their times all differ), the loss plot at least one.
	if n < 2 {
		t.Fatalf("history of %d samples, want at least 2", n)
	}
	points := map[string]int{}
	for _, m := range plotRE.FindAllStringSubmatch(dom, -1) {
		if p := pointsRE.FindStringSubmatch(m[0]); p != nil {
			points[m[1]], _ = strconv.Atoi(p[1])
		}
	}
	if points["rate"] != n-1 || points["loss"] < 1 {
		t.Errorf("plots have %v points; want rate %d (the samples but the first), loss > 0",
			points, n-1)
	}

	// Five members: the coordinator, two shards and two workers; the job at 100%.
	for _, want := range []string{`<span id="phase" class="phase phase-done">done</span>`,
		`<span id="percent">100.0%</span>`, `<td>ps-0</td>`, `<td>ps-1</td>`,
		`<td>worker-0</td>`, `<td>worker-1</td>`, `<td>coordinator</td>`} {
		if !strings.Contains(dom, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if got := strings.Count(dom, `<tr class="member">`); got != 5 {
		t.Errorf("page lists %d members, want 5", got)
	}
	if t.Failed() {
		t.Logf("page:\n%s", dom)
	}
}

// scraper fetches a node's /metrics until stopped, keeping the last good answer.
type scraper struct {
	url  string
	mu   sync.Mutex
	last []byte
}

func (s *scraper) run(ctx context.Context) {
	for ctx.Err() == nil {
		if resp, err := http.Get(s.url); err == nil {
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK {
				s.mu.Lock()
				s.last = b
				s.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// metricValue returns the value of the first sample of a counter or gauge family.
func metricValue(mfs map[string]*dto.MetricFamily, name string) float64 {
	mf, ok := mfs[name]
	if !ok || len(mf.GetMetric()) == 0 {
		return -1
	}
	m := mf.GetMetric()[0]
	if m.Counter != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

// TestNodeMetrics runs a coordinator, a PS shard and a worker as processes, each serving
// /metrics, scrapes them while the job runs, and checks that the last scrape of each parses,
// passes promlint and shows the node's work. It also checks that the coordinator's status
// lists the members gossip knows.
func TestNodeMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	out := t.TempDir()
	coord, web := startMetricsCluster(t, out)

	sctx, stopScraping := context.WithCancel(ctx)
	scrapers := map[string]*scraper{}
	var wg sync.WaitGroup
	for node, addr := range web {
		s := &scraper{url: "http://" + addr + "/metrics"}
		scrapers[node] = s
		wg.Go(func() { s.run(sctx) })
	}

	// While the coordinator lingers, read its member list.
	st := awaitDone(t, ctx, "http://"+web["coordinator"])
	var members []string
	for _, m := range st.Members {
		members = append(members, m.Role+":"+m.Name)
	}
	slices.Sort(members)
	want := []string{"coordinator:coordinator", "ps:ps-0", "worker:worker-0"}
	if st.MembersSource != "gossip" || !slices.Equal(members, want) {
		t.Errorf("members from %q: %v, want gossip's %v", st.MembersSource, members, want)
	}
	if err := coord.wait(t, ctx); err != nil {
		t.Fatalf("coordinator failed: %v", err)
	}
	stopScraping()
	wg.Wait()
	res := checkOutputs(t, out, 3)

	checks := nodeChecks(res)
	for node, s := range scrapers {
		checkScrape(t, node, s.last, checks[node])
	}
}

// startMetricsCluster starts a coordinator, a shard and a worker, each serving /metrics; it
// returns the coordinator's process and each role's HTTP address.
func startMetricsCluster(t *testing.T, out string) (*proc, map[string]string) {
	t.Helper()
	c := newCluster(t)
	coordRPC, gossip := freeAddr(t), freeAddr(t)
	web := map[string]string{"coordinator": freeAddr(t), "ps": freeAddr(t),
		"worker": freeAddr(t)}
	coord := c.start("coordinator", "coordinator",
		"--corpus", "../data/lee_background.cor", "--out", out, "--ps", "1",
		"--epochs", "3", "--min-count", "2", "--chunk-bytes", "32768",
		"--grpc-addr", coordRPC, "--http-addr", web["coordinator"], "--gossip-addr", gossip,
		"--gossip-profile", "local", "--linger", "3s")
	c.start("ps-0", "ps", "--shard", "0", "--grpc-addr", freeAddr(t),
		"--coordinator", coordRPC, "--http-addr", web["ps"],
		"--gossip-addr", freeAddr(t), "--join", gossip, "--gossip-profile", "local")
	c.start("worker-0", "worker", "--name", "worker-0", "--coordinator", coordRPC,
		"--http-addr", web["worker"], "--gossip-addr", freeAddr(t), "--join", gossip,
		"--gossip-profile", "local")
	return coord, web
}

// nodeChecks says what each node's last scrape must show: the coordinator's is final; the
// shard and the worker may have been scraped a moment before their last request.
func nodeChecks(res runResult) map[string]func(map[string]*dto.MetricFamily) string {
	return map[string]func(map[string]*dto.MetricFamily) string{
		"coordinator": func(mfs map[string]*dto.MetricFamily) string {
			got := metricValue(mfs, "skipgrid_coordinator_words_trained_total")
			if want := float64(3 * res.TrainWords); got != want {
				return fmt.Sprintf("words trained %v, want 3 epochs of %d", got, res.TrainWords)
			}
			return ""
		},
		"ps": func(mfs map[string]*dto.MetricFamily) string {
			if metricValue(mfs, "skipgrid_ps_pulls_total") <= 0 ||
				metricValue(mfs, "skipgrid_ps_table_bytes") <= 0 {
				return "no pulls or no table bytes"
			}
			return ""
		},
		"worker": func(mfs map[string]*dto.MetricFamily) string {
			if metricValue(mfs, "skipgrid_worker_words_trained_total") <= 0 ||
				metricValue(mfs, "skipgrid_worker_bytes_pulled_total") <= 0 {
				return "no words trained or no bytes pulled"
			}
			return ""
		},
	}
}

// checkScrape parses a node's /metrics text, lints it and runs check on it.
func checkScrape(t *testing.T, node string, body []byte,
	check func(map[string]*dto.MetricFamily) string) {
	t.Helper()
	if len(body) == 0 {
		t.Errorf("%s: /metrics was never scraped", node)
		return
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Errorf("%s: parse /metrics: %v", node, err)
		return
	}
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil || len(problems) > 0 {
		t.Errorf("%s: promlint: %v, %v", node, problems, err)
	}
	if msg := check(mfs); msg != "" {
		t.Errorf("%s /metrics: %s", node, msg)
	}
}
