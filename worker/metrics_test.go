package worker

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg, "w0")
	if err != nil {
		t.Fatal(err)
	}

	// Two minibatches: 100 words with loss 6 over 4 terms, then 50 words with no term.
	m.trained(100, 6, 4)
	m.trained(50, 0, 0)
	// A pull that moves 300 bytes and succeeds, one that moves 20 and fails; a push of 70.
	var pulled, pushed uint64
	_ = m.pull.observe(&pulled, func() error { pulled += 300; return nil })
	errDown := errors.New("down")
	err = m.pull.observe(&pulled, func() error { pulled += 20; return errDown })
	if err != errDown {
		t.Errorf("observe returned %v, want the call's error", err)
	}
	_ = m.push.observe(&pushed, func() error { pushed += 70; return nil })

	// Words 100+50, steps 2, loss 6/4 from the last batch with terms; bytes 300+20 pulled
	// and 70 pushed; one pull and one push timed (the failed pull is not).
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	wantValues := map[string]float64{"skipgrid_worker_words_trained_total": 150,
		"skipgrid_worker_steps_total": 2, "skipgrid_worker_loss": 1.5,
		"skipgrid_worker_bytes_pulled_total": 320, "skipgrid_worker_bytes_pushed_total": 70}
	if diff := cmp.Diff(wantValues, values(mfs)); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	checkFamilies(t, mfs)
	// The exposition parses, and promlint finds nothing to change.
	var text bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&text, mf); err != nil {
			t.Fatal(err)
		}
	}
	problems, err := promlint.New(strings.NewReader(text.String())).Lint()
	if err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v, %v\n%s", problems, err, text.String())
	}
}

func TestMetricsRegistration(t *testing.T) {
	// Without a registerer the metrics still count, unexported.
	m, err := newMetrics(nil, "w0")
	if err != nil {
		t.Fatal(err)
	}
	m.trained(3, 1, 1)
	var out dto.Metric
	if err := m.words.Write(&out); err != nil || out.GetCounter().GetValue() != 3 {
		t.Errorf("words = %v (%v), want 3", out.GetCounter().GetValue(), err)
	}

	// Two workers share a registry under different names, not under the same one.
	reg := prometheus.NewRegistry()
	if _, err := newMetrics(reg, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := newMetrics(reg, "b"); err != nil {
		t.Errorf("second worker: %v", err)
	}
	var are prometheus.AlreadyRegisteredError
	if _, err := newMetrics(reg, "a"); !errors.As(err, &are) {
		t.Errorf("same name twice: %v, want AlreadyRegisteredError", err)
	}

	// New reports a registration failure.
	cfg := DefaultConfig("a")
	cfg.Registerer = reg
	if _, err := New(cfg, nil, nil); !errors.As(err, &are) {
		t.Errorf("New with a taken name: %v, want AlreadyRegisteredError", err)
	}
}

// checkFamilies checks the names and labels of a worker's metric families, and that one pull
// and one push were timed.
func checkFamilies(t *testing.T, mfs []*dto.MetricFamily) {
	t.Helper()
	counts := map[string]uint64{}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
		if h := mf.GetMetric()[0].GetHistogram(); h != nil {
			counts[mf.GetName()] = h.GetSampleCount()
		}
		if got := mf.GetMetric()[0].GetLabel()[0]; got.GetName() != "worker" ||
			got.GetValue() != "w0" {
			t.Errorf("%s is labelled %v, want worker=w0", mf.GetName(), got)
		}
	}
	wantNames := []string{"skipgrid_worker_bytes_pulled_total",
		"skipgrid_worker_bytes_pushed_total", "skipgrid_worker_loss",
		"skipgrid_worker_pull_seconds", "skipgrid_worker_push_seconds",
		"skipgrid_worker_steps_total", "skipgrid_worker_words_trained_total"}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Errorf("metric names (-want +got):\n%s", diff)
	}
	wantCounts := map[string]uint64{"skipgrid_worker_pull_seconds": 1,
		"skipgrid_worker_push_seconds": 1}
	if diff := cmp.Diff(wantCounts, counts); diff != "" {
		t.Errorf("histogram sample counts (-want +got):\n%s", diff)
	}
}

// values returns the value of every counter and gauge family, by name.
func values(mfs []*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		switch {
		case m.Counter != nil:
			out[mf.GetName()] = m.GetCounter().GetValue()
		case m.Gauge != nil:
			out[mf.GetName()] = m.GetGauge().GetValue()
		}
	}
	return out
}
