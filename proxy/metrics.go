package proxy

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics carry only values from configuration and fixed sets (vendor and
// operation ids, decision, status code): never a personal value or a secret.
type metrics struct {
	requests          *prometheus.CounterVec
	stages            *prometheus.HistogramVec
	quotaRemaining    *prometheus.GaugeVec
	refusedUnrecorded prometheus.Counter
	// refusalsShed counts refusals left unrecorded while the audit log's disk
	// was within the reserve kept for disclosures (audit.go).
	refusalsShed prometheus.Counter
	// revocations counts the revocation checks of vendors' certificates.
	revocations *prometheus.CounterVec
	// unknownFields counts response fields a vendor sent that its profile
	// does not name (withheld, and logged by name).
	unknownFields *prometheus.CounterVec
}

// Pipeline stages timed in consentgate_stage_seconds.
const (
	stagePolicy   = "policy"
	stageUpstream = "upstream"
	stageAudit    = "audit"
	stageTotal    = "total"
)

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "consentgate_requests_total",
			Help: "Calls through the gateway by vendor, operation, decision (allow, deny, none) and status answered.",
		}, []string{"vendor", "operation", "decision", "status"}),
		stages: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "consentgate_stage_seconds",
			Help:    "Time spent per pipeline stage: policy, upstream, audit, total.",
			Buckets: []float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5, 5, 10, 30},
		}, []string{"stage"}),
		quotaRemaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "consentgate_vendor_quota_remaining",
			Help: "The remaining budget the vendor last reported in its rate-limit headers.",
		}, []string{"vendor"}),
		refusedUnrecorded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "consentgate_vendor_callbacks_unrecorded_total",
			Help: "Vendor callbacks refused before the caller was known (route, source, certificate, secret, token) without their own audit record (beyond the rate per source).",
		}),
		refusalsShed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "consentgate_audit_refusals_unrecorded_total",
			Help: "Calls and callbacks refused before any vendor was called that went without their own audit record because the audit log's free disk space was within the reserve kept for disclosures (audit.reserve_bytes).",
		}),
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "consentgate_vendor_revocation_checks_total",
			Help: "Revocation checks of vendors' server certificates at the handshake, by result: good, revoked, unknown (no answer could be had).",
		}, []string{"vendor", "result"}),
		unknownFields: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "consentgate_vendor_unknown_fields_total",
			Help: "Fields in vendors' responses that their profile does not name: withheld, and logged by name (a vendor changed its API, or the profile is incomplete).",
		}, []string{"vendor", "operation"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.stages, m.quotaRemaining, m.refusedUnrecorded, m.refusalsShed, m.revocations, m.unknownFields)
	}
	return m
}

func (m *metrics) observe(stage string, since time.Time) {
	m.stages.WithLabelValues(stage).Observe(time.Since(since).Seconds())
}

// request counts one finished call. Unknown vendors are counted as "-": the
// label must not grow with whatever an app puts in a path.
func (m *metrics) request(ex *exchange) {
	decision := "none"
	if d := ex.decision; d != nil {
		decision = "deny"
		if d.Allow {
			decision = "allow"
		}
	}
	vendor, op := ex.vendor, ex.op
	if vendor == "" {
		vendor, op = "-", "-"
	}
	m.requests.WithLabelValues(vendor, op, decision, strconv.Itoa(ex.w.status)).Inc()
	m.observe(stageTotal, ex.start)
}
