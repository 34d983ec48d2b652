package policy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics carry no label value from a request: only fixed outcomes and the
// revision id, which is a hash.
type metrics struct {
	decisions      *prometheus.CounterVec
	memoHits       prometheus.Counter
	latency        prometheus.Histogram
	reloadFailures prometheus.Counter
	revisionInfo   *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "consentgate_policy_decisions_total", Help: "Policy decisions by result: allow, deny, error (the policy failed), busy (no decision in time: no evaluation slot, or the time bound ran out).",
		}, []string{"result"}),
		memoHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "consentgate_policy_memo_hits_total", Help: "Decisions answered from the revision's memo of earlier identical inputs, without evaluation.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "consentgate_policy_decision_seconds", Help: "Time to evaluate one policy decision.",
			Buckets: []float64{10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 5e-3, 25e-3, 50e-3},
		}),
		reloadFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "consentgate_policy_reload_failures_total", Help: "Policy reloads that failed and kept the previous revision.",
		}),
		revisionInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "consentgate_policy_revision_info", Help: "The policy revision in service (value 1).",
		}, []string{"revision"}),
	}
	if reg != nil {
		reg.MustRegister(m.decisions, m.memoHits, m.latency, m.reloadFailures, m.revisionInfo)
	}
	return m
}

func (m *metrics) observe(d Decision, memoHit bool, took time.Duration) {
	result := "deny"
	switch {
	case d.Busy:
		result = "busy"
	case d.Err != "":
		result = "error"
	case d.Allow:
		result = "allow"
	}
	m.decisions.WithLabelValues(result).Inc()
	if memoHit {
		m.memoHits.Inc()
	}
	m.latency.Observe(took.Seconds())
}

func (m *metrics) revision(id string) {
	m.revisionInfo.Reset()
	m.revisionInfo.WithLabelValues(id).Set(1)
}
