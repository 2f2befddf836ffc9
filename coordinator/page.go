package coordinator

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The status page is rendered on the server, plots included (inline SVG), so that it needs
// no script and nothing from outside the cluster. It reloads itself while the job runs.

// pageRefresh is the status page's reload interval; ?refresh=N overrides it, 0 turns it off.
const pageRefresh = 2

// Plot geometry, in SVG user units: the plot area lies inside the margins.
const (
	plotW, plotH     = 640, 200
	marginL, marginR = 64, 14
	marginT, marginB = 12, 26
	areaW, areaH     = plotW - marginL - marginR, plotH - marginT - marginB
	plotTicks        = 4
)

// windowSamples is the span, in sample intervals, that the plotted values average over.
const windowSamples = 5

// maxRefresh bounds ?refresh=N.
const maxRefresh = 3600

// pageView is what the page template renders.
type pageView struct {
	S       Status
	Refresh int
	Percent string
	Epoch   string
	Elapsed string
	ETA     string
	Rate    string
	Words   string
	Plots   []plot
	PS      []psRow
	Workers []workerRow
}

// psRow is one shard's line of the page.
type psRow struct {
	PSStatus
	State, Memory, Stats string
}

// workerRow is one worker's line of the page.
type workerRow struct {
	WorkerStatus
	State, Chunks, Rate, Beat string
}

// plot is one rendered chart.
type plot struct {
	ID, Title, Note string
	W, H            int
	// X0, Y0, X1, Y1 are the plot area's corners, AW and AH its size, CX and CY its
	// centre; LabelX is where y labels end, LabelY where x labels stand.
	X0, Y0, X1, Y1 int
	AW, AH, CX, CY int
	LabelX, LabelY int
	// Path draws the series of Points points; Last is its last value, formatted.
	Path    string
	Points  int
	Last    string
	Message string
	XTicks  []tick
	YTicks  []tick
}

// tick is one axis label at Pos (SVG units along its axis).
type tick struct {
	Pos   float64
	Label string
}

// point is one datum of a series.
type point struct{ x, y float64 }

// servePage renders the status page.
func (c *Coordinator) servePage(w http.ResponseWriter, r *http.Request) {
	refresh := pageRefresh
	if q := r.URL.Query().Get("refresh"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 0 || n > maxRefresh {
			http.Error(w, fmt.Sprintf("refresh %q: want whole seconds in [0, %d]", q,
				maxRefresh), http.StatusBadRequest)
			return
		}
		refresh = n
	}

	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, newPageView(c.Status(), refresh, c.now())); err != nil {
		c.log.Warn("render status page", "err", err)
		http.Error(w, "rendering the status page failed: "+err.Error(),
			http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

// newPageView prepares st for the template. The page stops reloading once the job ended.
func newPageView(st Status, refresh int, now time.Time) pageView {
	if st.Phase == "done" || st.Phase == "failed" {
		refresh = 0
	}
	v := pageView{S: st, Refresh: refresh,
		Percent: strconv.FormatFloat(100*clamp01(st.Fraction), 'f', 1, 64),
		Epoch:   "-", Elapsed: fmtSeconds(st.ElapsedSeconds), ETA: "unknown",
		Rate: fmtCount(st.WordsPerSec),
		Words: fmt.Sprintf("%s of %s", fmtCount(float64(st.WordsDone)),
			fmtCount(float64(st.WordsPlanned)))}
	if st.WordsPlanned > 0 {
		v.Epoch = fmt.Sprintf("%d of %d", st.Epoch+1, st.Epochs)
	}
	switch {
	case st.Phase == "done":
		v.ETA = "finished"
	case st.ETASeconds > 0:
		v.ETA = fmtSeconds(st.ETASeconds)
	}

	rate, loss := historySeries(st.History)
	win := fmtSeconds(windowSamples * st.History.IntervalSeconds)
	v.Plots = []plot{
		newPlot("loss", "Training loss", "mean over the chunks accepted in the last "+win,
			loss, false, fmtNumber),
		newPlot("rate", "Words per second", "over the last "+win, rate, true, fmtCount),
	}
	for _, p := range st.PS {
		v.PS = append(v.PS, newPSRow(p, now))
	}
	for _, w := range st.Workers {
		v.Workers = append(v.Workers, newWorkerRow(w, now))
	}
	return v
}

func newPSRow(p PSStatus, now time.Time) psRow {
	r := psRow{PSStatus: p, State: "alive", Memory: "-", Stats: "not polled yet"}
	switch {
	case !p.Registered:
		r.State = "missing"
	case !p.Alive:
		r.State = "dead"
	}
	if !p.StatsAt.IsZero() {
		r.Memory = fmtBytes(p.TableBytes)
		r.Stats = fmtSeconds(now.Sub(p.StatsAt).Seconds()) + " ago"
	}
	if p.StatsError != "" {
		r.Stats = "error: " + p.StatsError
	}
	return r
}

func newWorkerRow(w WorkerStatus, now time.Time) workerRow {
	r := workerRow{WorkerStatus: w, State: "alive", Chunks: "idle",
		Rate: fmtCount(w.WordsPerSec)}
	if !w.Alive {
		r.State = "dead"
	}
	var chunks []string
	for _, l := range w.Leases {
		s := fmt.Sprintf("%s chunk %d", l.Kind, l.Chunk)
		if l.Kind == "train" {
			s = fmt.Sprintf("epoch %d chunk %d, %s words", l.Epoch+1, l.Chunk, fmtCount(
				float64(l.Words)))
		}
		chunks = append(chunks, s)
	}
	if len(chunks) > 0 {
		r.Chunks = strings.Join(chunks, "; ")
	}
	r.Beat = "never"
	if !w.LastHeartbeat.IsZero() {
		r.Beat = fmtSeconds(max(now.Sub(w.LastHeartbeat).Seconds(), 0)) + " ago"
	}
	return r
}

// historySeries derives the words per second and the mean loss at each sample of h after
// the first, over the span back to the latest sample at least windowSamples intervals older
// (the first sample while there is none; the previous one where thinned samples are further
// apart). A span in which no chunk was accepted has no loss point; words per second below
// zero (a lost lease's heartbeat words) are shown as zero.
func historySeries(h History) (rate, loss []point) {
	win := windowSamples * h.IntervalSeconds
	j := 0
	for i := 1; i < len(h.T); i++ {
		for j+1 < i && h.T[j+1] <= h.T[i]-win {
			j++
		}
		dt := h.T[i] - h.T[j]
		if dt <= 0 {
			continue
		}
		dw := max(float64(h.Words[i])-float64(h.Words[j]), 0)
		rate = append(rate, point{h.T[i], dw / dt})
		if h.LossTerms[i] > h.LossTerms[j] {
			dn := float64(h.LossTerms[i] - h.LossTerms[j])
			loss = append(loss, point{h.T[i], (h.LossSum[i] - h.LossSum[j]) / dn})
		}
	}
	return rate, loss
}

// newPlot scales pts into the plot area. fromZero starts the y axis at zero; label formats
// the y values.
func newPlot(id, title, note string, pts []point, fromZero bool,
	label func(float64) string) plot {
	p := plot{ID: id, Title: title, Note: note, W: plotW, H: plotH, X0: marginL, Y0: marginT,
		X1: marginL + areaW, Y1: marginT + areaH, AW: areaW, AH: areaH,
		CX: marginL + areaW/2, CY: marginT + areaH/2, LabelX: marginL - 6,
		LabelY: marginT + areaH + 17, Last: "-"}
	if len(pts) == 0 {
		p.Message = "no data yet"
		return p
	}

	xhi, ylo, yhi := pts[len(pts)-1].x, math.Inf(1), math.Inf(-1)
	for _, q := range pts {
		ylo, yhi = min(ylo, q.y), max(yhi, q.y)
	}
	if fromZero {
		ylo = 0
	}
	ylo, yhi = padRange(ylo, yhi)
	xhi = max(xhi, 1)
	sx := func(x float64) float64 { return marginL + areaW*x/xhi }
	sy := func(y float64) float64 { return marginT + areaH*(1-(y-ylo)/(yhi-ylo)) }

	var b strings.Builder
	for i, q := range pts {
		cmd := 'L'
		if i == 0 {
			cmd = 'M'
		}
		fmt.Fprintf(&b, "%c%.1f,%.1f ", cmd, sx(q.x), sy(q.y))
	}
	p.Path, p.Points = strings.TrimSpace(b.String()), len(pts)
	p.Last = label(pts[len(pts)-1].y)
	for _, v := range niceTicks(0, xhi, plotTicks) {
		p.XTicks = append(p.XTicks, tick{Pos: sx(v), Label: fmtSeconds(v)})
	}
	for _, v := range niceTicks(ylo, yhi, plotTicks) {
		p.YTicks = append(p.YTicks, tick{Pos: sy(v), Label: label(v)})
	}
	return p
}

// padRange widens [lo, hi] by 5% each way, or to a unit around a single value, so that the
// line never lies on the frame.
func padRange(lo, hi float64) (float64, float64) {
	if hi <= lo {
		d := max(math.Abs(lo)/10, 1)
		return lo - d, hi + d
	}
	d := (hi - lo) / 20
	if lo >= 0 && lo-d < 0 {
		return 0, hi + d
	}
	return lo - d, hi + d
}

// niceTicks returns about n round values (1, 2 or 5 times a power of ten apart) in [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	if !(hi > lo) || n < 1 {
		return nil
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * mag
	for _, m := range []float64{1, 2, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for k := math.Ceil(lo / step); k*step <= hi+step*1e-9; k++ {
		out = append(out, k*step+0) // +0 turns -0 into 0
	}
	return out
}

func clamp01(f float64) float64 { return min(max(f, 0), 1) }

// fmtSeconds writes a duration the way people read it: 42s, 3m05s, 2h07m.
func fmtSeconds(s float64) string {
	if math.IsNaN(s) || s < 0 {
		return "-"
	}
	switch d := time.Duration(math.Round(s)) * time.Second; {
	case s < 10 && s != math.Trunc(s):
		return strconv.FormatFloat(s, 'f', 1, 64) + "s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}

// fmtCount writes a count or a rate with an SI suffix: 950, 12.3k, 4.56M.
func fmtCount(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e9:
		return strconv.FormatFloat(v/1e9, 'f', 2, 64) + "G"
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + "M"
	case a >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	default:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
}

// fmtNumber writes v with three significant digits.
func fmtNumber(v float64) string { return strconv.FormatFloat(v, 'g', 3, 64) }

// fmtBytes writes a size in binary units: 512 B, 1.5 KiB, 380.0 MiB.
func fmtBytes(n uint64) string {
	if n < 1<<10 {
		return fmt.Sprintf("%d B", n)
	}
	v, unit := float64(n)/(1<<10), "KiB"
	for _, u := range []string{"MiB", "GiB", "TiB"} {
		if v < 1<<10 {
			break
		}
		v, unit = v/(1<<10), u
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}

var pageTemplate = template.Must(template.New("page").Parse(pageHTML))

// pageHTML is the status page. It loads nothing from elsewhere: styles are inline, plots are
// inline SVG, fonts are the system's.
const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{{- if .Refresh}}
<meta http-equiv="refresh" content="{{.Refresh}}">
{{- end}}
<title>skipgrid {{.S.JobID}}: {{.S.Phase}}, {{.Percent}}%</title>
<style>
body { font-family: system-ui, "Segoe UI", "DejaVu Sans", sans-serif; margin: 1.2em 2em;
  color: #1d2329; background: #f6f7f9; font-size: 14px; }
h1 { font-size: 1.5em; margin: 0 0 .4em; }
h2 { font-size: 1.1em; margin: 1.2em 0 .4em; }
h2 small, .note { color: #66707a; font-weight: normal; }
.phase { font-size: .7em; padding: .15em .6em; border-radius: 1em; background: #dde3ea;
  vertical-align: middle; }
.phase-training, .phase-counting { background: #d3e6fb; }
.phase-done { background: #cfeccf; }
.phase-failed { background: #f6cccc; }
.error { color: #a01818; font-weight: bold; }
.bar { position: relative; height: 1.6em; background: #dde3ea; border-radius: .3em;
  overflow: hidden; max-width: 1300px; }
.fill { height: 100%; background: #3b82c4; }
.bar span { position: absolute; left: .6em; top: .2em; font-weight: bold; }
.facts { display: flex; flex-wrap: wrap; gap: .3em 2.2em; margin: .8em 0; }
.facts dt { color: #66707a; font-size: .85em; }
.facts dd { margin: 0; font-size: 1.15em; font-variant-numeric: tabular-nums; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; background: #fff; border: 1px solid #d5dbe1; border-radius: .3em;
  padding: .5em; }
figcaption { font-weight: bold; margin-bottom: .2em; }
svg .area { fill: #fbfcfd; stroke: #c3cbd3; }
svg .grid { stroke: #e6eaee; }
svg text { font-size: 11px; fill: #4b555f; }
svg .series { fill: none; stroke-width: 2; stroke-linejoin: round; }
#plot-loss .series { stroke: #c4572f; }
#plot-rate .series { stroke: #3b82c4; }
table { border-collapse: collapse; background: #fff; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d5dbe1; padding: .25em .7em; text-align: left; }
th { background: #eef1f4; font-weight: 600; }
td.num { text-align: right; }
.state-alive { color: #1e7b1e; }
.state-dead, .state-missing { color: #a01818; font-weight: bold; }
.state-left, .state-suspect { color: #8a6d00; }
footer { margin-top: 1.5em; color: #66707a; }
</style>
</head>
<body>
<h1>skipgrid job {{.S.JobID}}
<span id="phase" class="phase phase-{{.S.Phase}}">{{.S.Phase}}</span></h1>
{{- if .S.Error}}
<p id="error" class="error">{{.S.Error}}</p>
{{- end}}
<section id="progress">
<div class="bar"><div class="fill" style="width: {{.Percent}}%"></div>
<span id="percent">{{.Percent}}%</span></div>
<dl class="facts">
<div><dt>epoch</dt><dd>{{.Epoch}}</dd></div>
<div><dt>chunk tasks done</dt><dd>{{.S.ChunksDone}} of {{.S.ChunkTasks}}</dd></div>
<div><dt>words trained</dt><dd>{{.Words}}</dd></div>
<div><dt>words/s (mean)</dt><dd>{{.Rate}}</dd></div>
<div><dt>elapsed</dt><dd>{{.Elapsed}}</dd></div>
<div><dt>ETA</dt><dd id="eta">{{.ETA}}</dd></div>
<div><dt>loss (epoch mean)</dt><dd>{{printf "%.4f" .S.LastLoss}}</dd></div>
<div><dt>learning rate</dt><dd>{{printf "%.4g" .S.LearningRate}}</dd></div>
<div><dt>vocabulary</dt><dd>{{.S.VocabSize}} words</dd></div>
</dl>
</section>
<section class="plots">
{{- range $p := .Plots}}
<figure>
<figcaption>{{$p.Title}}: {{$p.Last}} <span class="note">({{$p.Note}})</span></figcaption>
<svg id="plot-{{$p.ID}}" class="plot" xmlns="http://www.w3.org/2000/svg"
  width="{{$p.W}}" height="{{$p.H}}" viewBox="0 0 {{$p.W}} {{$p.H}}"
  role="img" aria-label="{{$p.Title}}">
<rect class="area" x="{{$p.X0}}" y="{{$p.Y0}}" width="{{$p.AW}}" height="{{$p.AH}}"/>
{{- range $p.YTicks}}
<line class="grid" x1="{{$p.X0}}" x2="{{$p.X1}}"
  y1="{{printf "%.1f" .Pos}}" y2="{{printf "%.1f" .Pos}}"/>
<text x="{{$p.LabelX}}" y="{{printf "%.1f" .Pos}}" dy="4" text-anchor="end">{{.Label}}</text>
{{- end}}
{{- range $p.XTicks}}
<text x="{{printf "%.1f" .Pos}}" y="{{$p.LabelY}}" text-anchor="middle">{{.Label}}</text>
{{- end}}
{{- if $p.Message}}
<text class="empty" x="{{$p.CX}}" y="{{$p.CY}}" text-anchor="middle">{{$p.Message}}</text>
{{- else}}
<path class="series" data-points="{{$p.Points}}" d="{{$p.Path}}"/>
{{- end}}
</svg>
</figure>
{{- end}}
</section>
<section id="members">
<h2>Members <small>({{len .S.Members}}, from {{.S.MembersSource}})</small></h2>
<table>
<tr><th>name</th><th>role</th><th>state</th><th>gRPC address</th><th>gossip address</th></tr>
{{- range .S.Members}}
<tr class="member">
<td>{{.Name}}</td>
<td>{{.Role}}{{if eq .Role "ps"}} {{.Shard}}{{end}}</td>
<td class="state-{{.State}}">{{.State}}</td>
<td>{{.GRPCAddr}}</td>
<td>{{.Addr}}</td>
</tr>
{{- end}}
</table>
</section>
<section id="shards">
<h2>Parameter-server shards</h2>
<table>
<tr><th>shard</th><th>name</th><th>address</th><th>state</th><th>rows</th><th>dim</th>
<th>memory</th><th>pulls</th><th>pushes</th><th>rows pulled</th><th>rows pushed</th>
<th>rejected</th><th>stats</th></tr>
{{- range .PS}}
<tr class="shard">
<td class="num">{{.Shard}}</td>
<td>{{.Name}}</td>
<td>{{.Address}}</td>
<td class="state-{{.State}}">{{.State}}</td>
<td class="num">{{.LocalRows}}</td>
<td class="num">{{.Dim}}</td>
<td class="num">{{.Memory}}</td>
<td class="num">{{.Pulls}}</td>
<td class="num">{{.Pushes}}</td>
<td class="num">{{.RowsPulled}}</td>
<td class="num">{{.RowsPushed}}</td>
<td class="num">{{.PushesRejected}}</td>
<td>{{.Stats}}</td>
</tr>
{{- end}}
</table>
</section>
<section id="workers">
<h2>Workers</h2>
<table>
<tr><th>name</th><th>state</th><th>current chunks</th><th>words/s</th><th>last call</th></tr>
{{- range .Workers}}
<tr class="worker">
<td>{{.Name}}</td>
<td class="state-{{.State}}">{{.State}}</td>
<td>{{.Chunks}}</td>
<td class="num">{{.Rate}}</td>
<td>{{.Beat}}</td>
</tr>
{{- else}}
<tr><td colspan="5">no worker has called in yet</td></tr>
{{- end}}
</table>
</section>
<footer>JSON: <a href="status">/status</a> &middot;
Prometheus: <a href="metrics">/metrics</a> &middot;
{{if .Refresh}}reloads every {{.Refresh}} s{{else}}not reloading{{end}}</footer>
</body>
</html>
`
