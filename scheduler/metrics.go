package scheduler

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the scheduler's Prometheus metrics. Labels stay few (no job
// name) so that a million jobs do not make a million series; per-job counts
// are in each job's state record.
type Metrics struct {
	leader  prometheus.Gauge
	jobs    prometheus.Gauge
	planned prometheus.Counter
	skipped *prometheus.CounterVec
	retries prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aion_scheduler_leader", Help: "1 while this scheduler is the leader.",
		}),
		jobs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aion_scheduler_jobs",
			Help: "Jobs this scheduler holds in memory: as leader, or as standby ready to lead (0 until loaded).",
		}),
		planned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aion_fires_planned_total", Help: "Fires planned to run (scheduled, manual, dependent, backfill).",
		}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aion_fires_skipped_total", Help: "Nominal times skipped, by reason.",
		}, []string{"reason"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aion_fire_retries_total", Help: "Retries planned after failed, timed-out or lost attempts.",
		}),
	}
	reg.MustRegister(m.leader, m.jobs, m.planned, m.skipped, m.retries)
	return m
}

// skipReason maps a skipped fire's reason to a small set of label values.
func skipReason(reason string) string {
	for _, r := range []struct{ contains, label string }{
		{"paused", "paused"}, {"disabled", "disabled"}, {"starting deadline", "deadline"},
		{"concurrency", "overlap"}, {"misfire", "misfire"},
	} {
		if strings.Contains(reason, r.contains) {
			return r.label
		}
	}
	return "other"
}

// Option adjusts a Scheduler.
type Option func(*Scheduler)

// WithMetrics records the scheduler's metrics in m.
func WithMetrics(m *Metrics) Option { return func(s *Scheduler) { s.metrics = m } }

// SkippedCounter is the counter of skipped times for one reason label.
func (m *Metrics) SkippedCounter(reason string) prometheus.Counter {
	return m.skipped.WithLabelValues(reason)
}
