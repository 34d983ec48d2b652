package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/identity"
	"github.com/consentgate/consentgate/policy"
	"github.com/consentgate/consentgate/refusal"
	"go.opentelemetry.io/otel/attribute"
)

// Consents is what the gateway needs of the consent registry: one lookup per
// call, never cached, so a revocation stops the very next call.
type Consents interface {
	Get(ctx context.Context, id string) (*consent.Consent, error)
	// Resource and BindResource keep vendor ids with their end user and app.
	Resource(ctx context.Context, vendor, kind, id string) (consent.Resource, error)
	BindResource(ctx context.Context, res consent.Resource) (consent.Resource, error)
	// Spend counts a call against a consent's budget for an operation.
	Spend(ctx context.Context, consentID, key string, calls int, per time.Duration) (bool, time.Time, error)
}

var purposeRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,63}$`)

// decide is stage 3: the consent the app names and the policy's decision,
// before any of the body is read. The policy decides on the fields the
// operation may send, so a call it refuses costs no parsing. Deny by default;
// a report-only operation passes a denied call through, and the log says so.
func (g *Gateway) decide(c *call) *refusal.Refusal {
	v, op, ex := c.rt.vendor, c.rt.op, c.ex
	in, err := g.decideInput(c.ctx, c.r, c.id, v, op)
	switch {
	case errors.Is(err, errForeignConsent):
		ex.err = err.Error()
	case errors.As(err, new(badHeader)):
		return refusal.New(http.StatusBadRequest, refusal.BadRequest, "Bad request", err.Error())
	case err != nil:
		g.log.Error("consent registry unavailable: refusing the call", logRequestID, ex.requestID, logError, err.Error())
		return refusal.New(http.StatusServiceUnavailable, refusal.ConsentStore, "Consent registry unavailable",
			"the vendor was not called").AsFailure(err.Error())
	}
	c.in = in
	ex.consentID, ex.purpose, ex.now = in.ConsentID, in.Purpose, in.Now
	if in.Consent != nil {
		ex.subject = in.Consent.Subject
	}
	ex.policyInput = in.Replayable()
	d := g.evaluate(c.ctx, in)
	c.decision, ex.decision = d, &d
	c.w.Header().Set("X-Consentgate-Decision-Id", d.ID)
	if d.Allow && (op.cfg.Body != configs.BodyBinary || d.Binary == "allow") {
		return nil
	}
	if d.Err != "" {
		g.log.Error("policy could not decide: denying", logRequestID, ex.requestID, logDecisionID, d.ID, logError, d.Err)
	}
	if !op.cfg.Enforced() {
		ex.wouldDeny, c.passthrough = true, true
		return nil
	}
	if d.Busy {
		// Overload is not the policy's answer: the app gets 503 and may retry,
		// where a 403 would tell it the call is not allowed.
		return &refusal.Refusal{Status: http.StatusServiceUnavailable, Kind: refusal.PolicyBusy, Title: "Policy engine busy",
			Detail:     "the policy could not decide in time under load; the vendor was not called; retry",
			DecisionID: d.ID, Header: retryIn("1"), Failed: true, Note: d.Err}
	}
	return &refusal.Refusal{Status: http.StatusForbidden, Kind: refusal.PolicyDenied, Title: "Denied by policy",
		Detail: "the vendor was not called: " + reasonList(&d), DecisionID: d.ID, Reasons: d.Reasons}
}

// evaluate asks the policy, in a span of its own.
func (g *Gateway) evaluate(ctx context.Context, in *policy.Input) policy.Decision {
	start := time.Now()
	ctx, span := g.stage(ctx, spanPolicy)
	d := g.policy.Decide(ctx, in)
	if span.IsRecording() { // the attributes escape to the heap, traced or not
		span.SetAttributes(attribute.String("consentgate.decision_id", d.ID), attribute.Bool("consentgate.allow", d.Allow))
	}
	span.End()
	g.metrics.observe(stagePolicy, start)
	return d
}

// decideInput gathers what the policy is asked: the caller, the operation and
// its field categories, the consent the app names, and the fields the
// operation may send (request.fields: every declared one, since the body is
// read only once the call is allowed). An error means the call cannot be
// decided: a badHeader for the app's mistakes, any other for ours; it never
// means allow.
func (g *Gateway) decideInput(ctx context.Context, r *http.Request, id identity.Identity, v *vendor, op *operation) (*policy.Input, error) {
	in := &policy.Input{
		App:            policy.App{ID: id.Name, Role: id.Role, URI: id.URI},
		Vendor:         v.cfg.ID,
		Operation:      op.cfg.ID,
		Method:         op.cfg.Method,
		Path:           op.cfg.Path,
		Body:           op.cfg.Body,
		Erasure:        op.cfg.Erases != "",
		Class:          op.cfg.Class,
		Purpose:        r.Header.Get("X-Purpose"),
		ConsentID:      r.Header.Get("X-Consent-Id"),
		RequestFields:  op.sent,
		ResponseFields: op.cfg.Fields.Response,
		Identifiers:    op.identifierList,
		Present:        op.declared,
		Reveals:        op.cfg.Reveals,
		Now:            g.now(),
	}
	in.QuotaRemaining, in.QuotaKnown = v.quota.snapshot()
	if in.Purpose != "" && !purposeRE.MatchString(in.Purpose) {
		return nil, badHeader("X-Purpose must be a purpose name such as kyc-onboarding")
	}
	if in.ConsentID != "" {
		if !consent.ValidID(in.ConsentID) {
			return nil, badHeader("X-Consent-Id is not a consent id")
		}
		c, err := g.consents.Get(ctx, in.ConsentID)
		switch {
		case errors.Is(err, consent.ErrNotFound):
			// The policy says "unknown consent".
		case err != nil:
			return nil, fmt.Errorf("consent registry: %w", err)
		case c.App != id.Name:
			// Another app's consent is decided as an unknown one, so that its
			// answer says nothing of whether, or in what state, it exists.
			return in, errForeignConsent
		default:
			in.Consent = &policy.Consent{ID: c.ID, App: c.App, Subject: c.Subject, Vendors: c.Vendors, Purposes: c.Purposes,
				Categories: c.Categories, Status: c.Status, GrantedAt: c.GrantedAt, ExpiresAt: c.ExpiresAt}
		}
	}
	return in, nil
}

// errForeignConsent comes with a usable input: the call names another app's
// consent, which the input leaves out. The audit record says so; the app's
// answer does not.
var errForeignConsent = errors.New("consent of another app")

// badHeader is an X-Purpose or X-Consent-Id that is not one: the app's mistake.
type badHeader string

func (b badHeader) Error() string { return string(b) }

// needsHashKey reports whether applying d needs the field HMAC key.
func needsHashKey(d *policy.Decision) bool {
	for _, a := range d.Response.Fields {
		if a == policy.ActionHash {
			return true
		}
	}
	return false
}

func reasonList(d *policy.Decision) string {
	r := append([]string(nil), d.Reasons...)
	sort.Strings(r)
	return strings.Join(r, ", ")
}
