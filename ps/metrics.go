package ps

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// collector exports a Server's counters as Prometheus metrics. It reads the same atomics as
// Stats, so the two never disagree.
type collector struct {
	s *Server

	pulls, pushes, rowsPulled, rowsPushed, rejected, tableBytes, localRows *prometheus.Desc
}

func newCollector(s *Server) *collector {
	labels := prometheus.Labels{"shard": strconv.Itoa(s.cfg.Shard)}
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("skipgrid_ps_"+name, help, nil, labels)
	}
	return &collector{
		s:          s,
		pulls:      desc("pulls_total", "Pull requests answered."),
		pushes:     desc("pushes_total", "Push requests applied."),
		rowsPulled: desc("rows_pulled_total", "Rows returned by pulls."),
		rowsPushed: desc("rows_pushed_total", "Rows updated by pushes."),
		rejected: desc("pushes_rejected_total",
			"Push requests refused; nothing of them applied."),
		tableBytes: desc("table_bytes", "Bytes of row values held, all tables."),
		localRows:  desc("local_rows", "Rows this shard holds per table."),
	}
}

// Describe sends the descriptors of every metric.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.pulls, c.pushes, c.rowsPulled, c.rowsPushed,
		c.rejected, c.tableBytes, c.localRows} {
		ch <- d
	}
}

// Collect sends the current values.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := &c.s.stats
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	counter(c.pulls, st.pulls.Load())
	counter(c.pushes, st.pushes.Load())
	counter(c.rowsPulled, st.rowsPulled.Load())
	counter(c.rowsPushed, st.rowsPushed.Load())
	counter(c.rejected, st.pushesRejected.Load())

	var bytes, rows float64
	if j := c.s.job.Load(); j != nil {
		bytes, rows = float64(j.tableBytes()), float64(j.localRows)
	}
	ch <- prometheus.MustNewConstMetric(c.tableBytes, prometheus.GaugeValue, bytes)
	ch <- prometheus.MustNewConstMetric(c.localRows, prometheus.GaugeValue, rows)
}
