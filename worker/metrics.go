package worker

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are a worker's Prometheus metrics, labelled with the worker's name so that
// several workers may share a registry. They exist whether or not they are registered.
type metrics struct {
	words, steps prometheus.Counter
	loss         prometheus.Gauge
	pull, push   callMetrics
}

// callMetrics time one kind of shard call and count its payload bytes.
type callMetrics struct {
	seconds prometheus.Histogram
	bytes   prometheus.Counter
}

// callBuckets span 100 µs (an in-memory call) to about 26 s (a call retried for a while).
var callBuckets = prometheus.ExponentialBuckets(1e-4, 4, 10)

// newMetrics builds the metrics of the worker called name and registers them with reg;
// nil registers none.
func newMetrics(reg prometheus.Registerer, name string) (*metrics, error) {
	labels := prometheus.Labels{"worker": name}
	counter := func(n, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "skipgrid_worker_" + n,
			Help: help, ConstLabels: labels})
	}
	call := func(verb, dir string) callMetrics {
		return callMetrics{
			seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
				Name: "skipgrid_worker_" + verb + "_seconds",
				Help: "Time of one minibatch's " + verb + ", all shards in parallel, " +
					"retries included; failed calls are not observed.",
				ConstLabels: labels, Buckets: callBuckets}),
			bytes: counter("bytes_"+verb+"ed_total",
				"Payload bytes "+dir+" shards (keys and row values, as encoded on the wire)."),
		}
	}
	m := &metrics{
		words: counter("words_trained_total",
			"In-vocabulary words of the minibatches trained (before subsampling)."),
		steps: counter("steps_total", "Minibatches trained: a pull, a training pass, a push."),
		loss: prometheus.NewGauge(prometheus.GaugeOpts{Name: "skipgrid_worker_loss",
			Help:        "Mean loss of the last minibatch trained.",
			ConstLabels: labels}),
		pull: call("pull", "sent to and received from"),
		push: call("push", "sent to"),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.words, m.steps, m.loss, m.pull.seconds,
		m.pull.bytes, m.push.seconds, m.push.bytes} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observe runs call, counts the growth of *bytes (call's running byte count) whatever the
// outcome, and records call's time when it succeeds.
func (c callMetrics) observe(bytes *uint64, call func() error) error {
	start, before := time.Now(), *bytes
	err := call()
	c.bytes.Add(float64(*bytes - before))
	if err == nil {
		c.seconds.Observe(time.Since(start).Seconds())
	}
	return err
}

// trained records a minibatch: its words and, when it had loss terms, its mean loss.
func (m *metrics) trained(words uint64, lossSum float64, lossTerms int) {
	m.words.Add(float64(words))
	m.steps.Inc()
	if lossTerms > 0 {
		m.loss.Set(lossSum / float64(lossTerms))
	}
}
