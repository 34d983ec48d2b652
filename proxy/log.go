package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/consentgate/consentgate/refusal"

	"go.opentelemetry.io/otel/trace"

	"github.com/consentgate/consentgate/policy"
)

// Field names of the canonical request line. One line per request carries every
// fact about it, so a log search never has to join lines; later the audit record
// carries the same facts.
const (
	logRequestID      = "request_id"
	logApp            = "app"
	logRole           = "role"
	logVendor         = "vendor"
	logOperation      = "operation"
	logMethod         = "method"
	logPathTemplate   = "path_template"
	logStatus         = "status"
	logUpstreamStatus = "upstream_status"
	logDurationMS     = "duration_ms"
	logBytesIn        = "bytes_in"
	logBytesOut       = "bytes_out"
	logOutcome        = "outcome"
	logError          = "error"
	logDecisionID     = "decision_id"
	logRevision       = "policy_revision"
	logAllow          = "allow"
	logReasons        = "reasons"
	logWouldDeny      = "would_deny"
	logConsentID      = "consent_id"
	logPurpose        = "purpose"
	logWithheld       = "withheld"
)

// Outcomes of a request, fixed strings for alerting.
const (
	outcomeForwarded = "forwarded"
	outcomeRefused   = "refused"
	outcomeFailed    = "failed"
	outcomeDenied    = "denied"
)

// exchange accumulates the facts of one request for its canonical line.
// Never put a secret, a query string, a concrete path or a body value in it.
type exchange struct {
	start          time.Time
	requestID      string
	app, role      string
	vendor, op     string
	method         string
	pathTemplate   string
	upstreamStatus int
	bytesIn        int64
	outcome        string
	refusal        refusal.Kind // why the call stopped, when it did
	err            string
	consentID      string
	purpose        string
	decision       *policy.Decision
	wouldDeny      bool
	now            time.Time
	// For the audit record: what the app got, and the identifiers (as HMACs)
	// of the person the call was about.
	status    int
	bytesOut  int64
	disclosed []string
	withheld  []string
	tokenized []string // withheld too: the app got tokens of their values
	// responseHeadersWithheld counts the vendor's own answer headers no
	// profile let through.
	responseHeadersWithheld int
	revealed                []string // "<field>=<token id>": tokens whose values went to the vendor
	// initiator is "erasure" for the erasure outbox's own calls.
	initiator string
	// tenant is set for an operation on the tenant (class: tenant).
	tenant bool
	// unrecorded: the refusal is answered without a record (callback noise
	// beyond its rate, counted instead; callbacknoise.go).
	unrecorded bool
	// unrecordedBefore counts refusals of the same kind that went without a
	// record (beyond their rate) before this one's.
	unrecordedBefore int64
	// intentRecorded: a vendor call was about to be made, so the outcome is a
	// disclosure's record and may use the audit disk reserve.
	intentRecorded bool
	// What of the app's request went to the vendor, and what did not.
	requestDisclosed []string
	requestWithheld  []string
	subject          string
	identifiers      []string
	categories       []string
	// policyInput is the replayable policy input (policy.Input.Replayable).
	policyInput string
	w           *statusWriter
	span        trace.Span // the exchange's span (a no-op one when tracing is off)
}

func (g *Gateway) logExchange(ex *exchange) {
	g.metrics.request(ex)
	if ex.span != nil {
		endExchangeSpan(ex.span, ex)
	}
	level := slog.LevelInfo
	if ex.outcome == outcomeFailed {
		level = slog.LevelWarn
	}
	var decisionID, revision string
	var allow bool
	var reasons []string
	if d := ex.decision; d != nil {
		decisionID, revision, allow, reasons = d.ID, d.Revision, d.Allow, d.Reasons
	}
	g.log.LogAttrs(context.Background(), level, "request",
		slog.String(logRequestID, ex.requestID),
		slog.String(logApp, ex.app),
		slog.String(logRole, ex.role),
		slog.String(logVendor, ex.vendor),
		slog.String(logOperation, ex.op),
		slog.String(logMethod, ex.method),
		slog.String(logPathTemplate, ex.pathTemplate),
		slog.Int(logStatus, ex.w.status),
		slog.Int(logUpstreamStatus, ex.upstreamStatus),
		slog.Float64(logDurationMS, float64(time.Since(ex.start).Microseconds())/1000),
		slog.Int64(logBytesIn, ex.bytesIn),
		slog.Int64(logBytesOut, ex.w.bytes),
		slog.String(logConsentID, ex.consentID),
		slog.String(logPurpose, ex.purpose),
		slog.String(logDecisionID, decisionID),
		slog.String(logRevision, revision),
		slog.Bool(logAllow, allow),
		slog.Any(logReasons, reasons),
		slog.Bool(logWouldDeny, ex.wouldDeny),
		slog.Int(logWithheld, len(ex.withheld)),
		slog.String(logOutcome, ex.outcome),
		slog.String(logError, ex.err),
	)
}

// statusWriter records what was sent to the app.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush on the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
