package proxy

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/identity"
	"github.com/consentgate/consentgate/policy"
	"github.com/consentgate/consentgate/refusal"
)

// call is one gateway request on its way through the stages: what each stage
// found, for the stages after it. The exchange is what the log line and the
// audit record say of it.
type call struct {
	ctx context.Context
	w   http.ResponseWriter
	r   *http.Request
	ex  *exchange

	id          identity.Identity // stage 1
	rt          *route            // stage 2
	in          *policy.Input     // stage 3
	decision    policy.Decision
	passthrough bool              // report-only route whose decision was a deny
	req         *appRequest       // stage 4
	caller      *consentOf        // stage 5: the app's consent the call is under; nil: none
	named       map[string]string // stage 5: the vendor ids the request names, by kind
	sent        *sentRequest      // stage 7
	identifiers *audit.Hasher     // stage 8: the identifier key's HMAC
	hashKey     []byte
	inj         *injection // stage 9
	// revealed are the values stage 7 put in place of tokens: a vendor that
	// echoes one (an error message) must not hand it to the app.
	revealed []string
}

// stages are the gateway pipeline in order, one file each (stageNN_*.go). Each
// passes the call on or returns why it stops; nothing after a refusal reaches
// the vendor. Method expressions, so that running them allocates nothing.
var stages = [...]func(*Gateway, *call) *refusal.Refusal{
	(*Gateway).identify,          // 1: who is calling
	(*Gateway).route,             // 2: which vendor operation, deny by default
	(*Gateway).decide,            // 3: consent and policy, before the body is read
	(*Gateway).read,              // 4: the request as the operation declares it
	(*Gateway).checkResources,    // 5: the vendor ids named are the end user's
	(*Gateway).admitQuota,        // 6: the vendor's budget
	(*Gateway).minimiseRequest,   // 7: only the fields the decision permits
	(*Gateway).recordIntent,      // 8: durable before any secret is read
	(*Gateway).attachCredentials, // 9: the vendor's credentials
}

// ServeHTTP runs the stages, then the upstream call (stage 10), whose response
// is minimised and recorded before the app sees a byte (stage 11).
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r, span := g.exchangeSpan(r, "gateway")
	defer span.End()
	ex, w := g.begin(w, r)
	defer g.logExchange(ex)
	if erasureCall(r) {
		ex.initiator = "erasure"
	}
	c := &call{ctx: r.Context(), w: w, r: r, ex: ex}
	for _, stage := range stages {
		if ref := stage(g, c); ref != nil {
			g.answer(c.ctx, w, ex, ref)
			return
		}
	}
	g.callVendor(c)
}

// begin starts one exchange: its request id (also in the answer) and the
// writer that records what the app is sent, for the canonical log line.
func (g *Gateway) begin(w http.ResponseWriter, r *http.Request) (*exchange, http.ResponseWriter) {
	ex := &exchange{start: time.Now(), requestID: uuid.NewString(), method: r.Method, outcome: outcomeRefused,
		w: &statusWriter{ResponseWriter: w}, span: trace.SpanFromContext(r.Context())}
	ex.w.Header().Set("X-Request-Id", ex.requestID)
	return ex, ex.w
}

// statusClientGone is what the log and the record say when the app hung up
// before its answer: there is nobody to send problem+json to.
const statusClientGone = 499

// answer is the one place a refusal becomes the app's answer, on every
// listener that calls vendors: the outcome record first, then problem+json. If
// the record cannot be written, the answer is 503 audit-unavailable instead.
func (g *Gateway) answer(ctx context.Context, w http.ResponseWriter, ex *exchange, ref *refusal.Refusal) {
	ex.status, ex.refusal = ref.Status, ref.Kind
	switch {
	case ref.Failed:
		ex.outcome = outcomeFailed
	case ref.Kind == refusal.PolicyDenied:
		ex.outcome = outcomeDenied
	}
	if ref.Note != "" {
		ex.err = ref.Note
	}
	if ref.Kind != refusal.AuditUnavailable && !ex.unrecorded {
		if err := g.record(ctx, ex, audit.KindOutcome); err != nil {
			ref = auditUnavailable("")
			ex.outcome, ex.status = outcomeFailed, ref.Status
		}
	}
	if ref.Kind == refusal.AuditUnavailable && ex.err == "" {
		ex.err = "audit log unavailable"
	}
	if ref.Status == statusClientGone {
		w.WriteHeader(statusClientGone)
		return
	}
	ref.Write(w, ex.requestID)
}

// auditUnavailable is the refusal when a record could not be written; it is
// answered without a record of its own, since the log is what failed.
func auditUnavailable(note string) *refusal.Refusal {
	return refusal.New(http.StatusServiceUnavailable, refusal.AuditUnavailable, "Audit log unavailable",
		"consentgate could not record the call, so it was not made or not answered").AsFailure(note)
}

// retryIn is the header of a refusal the app may retry after s seconds.
func retryIn(s string) http.Header { return http.Header{"Retry-After": {s}} }
