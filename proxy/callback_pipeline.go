package proxy

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/identity"
	"github.com/consentgate/consentgate/minimise"
	"github.com/consentgate/consentgate/oauth"
	"github.com/consentgate/consentgate/policy"
	"github.com/consentgate/consentgate/refusal"
)

// callback is one vendor callback on its way through the stages.
type callback struct {
	ctx  context.Context
	r    *http.Request
	ex   *exchange
	host string // the peer's address, as the connection says

	cv       *callbackVendor
	src      netip.Addr
	body     []byte
	in       *policy.Input
	decision policy.Decision
	owner    *consent.Resource
	out      minimise.Result
}

// callbackStages are the callback pipeline in order: a callback is refused
// unless it proves it comes from the vendor; it is decided by the policy and
// minimised like a response, recorded, and only then forwarded to the app.
var callbackStages = [...]func(*Callbacks, *callback) *refusal.Refusal{
	(*Callbacks).route,         // a callback route of a vendor profile
	(*Callbacks).proveVendor,   // its networks, client certificate, shared secret, URL token
	(*Callbacks).read,          // the body, bounded by the operation
	(*Callbacks).decide,        // the policy, as for a response the app is about to get
	(*Callbacks).findOwner,     // the consent whose resource the callback names
	(*Callbacks).recordIntent,  // durable before the app is called
	(*Callbacks).minimiseToApp, // only what the decision permits
}

// ServeHTTP serves the callbacks listener: vendors' calls at
// /callbacks/<vendor>/<path>, and end users' browsers coming back from a
// vendor's login at /oauth/<vendor>/callback. Nothing else: apps' routes are on
// the gateway listener, behind a client certificate.
func (c *Callbacks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g := c.gw
	if vendor, ok := oauth.CallbackVendor(r.URL.EscapedPath()); ok && g.broker != nil && g.broker.Serves(vendor) {
		c.endUserCallback(w, r)
		return
	}
	r, span := g.exchangeSpan(r, "callbacks")
	defer span.End()
	ex, w := g.begin(w, r)
	ex.role = "vendor"
	defer g.logExchange(ex)
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	cb := &callback{ctx: r.Context(), r: r, ex: ex, host: host}
	for _, stage := range callbackStages {
		if ref := stage(c, cb); ref != nil {
			if ref.Kind == refusal.NoRoute || ref.Kind == refusal.CallerNotRecognised {
				c.throttle(cb)
			}
			g.answer(cb.ctx, w, ex, ref)
			return
		}
	}
	if ref := c.forwardToApp(cb, w); ref != nil {
		g.answer(cb.ctx, w, ex, ref)
	}
}

// throttle records refusals of callers not yet known to be the vendor at a
// rate per source and counts the rest (callbacknoise.go): noise on a public
// port must not fill the audit log.
func (c *Callbacks) throttle(cb *callback) {
	recorded, before := c.refused.admit(cb.host, c.gw.now())
	if !recorded {
		cb.ex.unrecorded = true
		c.gw.metrics.refusedUnrecorded.Inc()
	}
	cb.ex.unrecordedBefore = before
}

func (c *Callbacks) route(cb *callback) *refusal.Refusal {
	rest, _ := strings.CutPrefix(cb.r.URL.Path, callbackPrefix)
	vendorID, path, _ := strings.Cut(rest, "/")
	var cv *callbackVendor
	if v := c.gw.vendorsNow()[vendorID]; v != nil {
		cv = v.callback
	}
	if cv == nil || cv.op == nil || cb.r.Method != cv.op.cfg.Method || "/"+path != cv.op.cfg.Path {
		return refusal.New(http.StatusNotFound, refusal.NoRoute, "Not found", "no callback is configured for this path")
	}
	cb.cv = cv
	cb.ex.vendor, cb.ex.op, cb.ex.pathTemplate, cb.ex.app = cv.v.cfg.ID, cv.op.cfg.ID, cv.op.cfg.Path, cv.cfg.App
	return nil
}

// proveVendor checks what the profile says the vendor's calls carry.
func (c *Callbacks) proveVendor(cb *callback) *refusal.Refusal {
	cv := cb.cv
	notRecognised := func(status int, title, note string) *refusal.Refusal {
		return refusal.New(status, refusal.CallerNotRecognised, title, "").WithNote(note)
	}
	src, err := netip.ParseAddr(cb.host)
	if err != nil || !cv.allowed(src.Unmap()) {
		return notRecognised(http.StatusForbidden, "Source not allowed", "callback from a source outside the vendor's networks")
	}
	cb.src = src.Unmap()
	if cv.clients != nil && !verifiedBy(cb.r.TLS, cv.clients) {
		return notRecognised(http.StatusForbidden, "Client certificate required", "callback without the vendor's client certificate")
	}
	if cv.secret != nil {
		s, err := c.gw.secrets.Get(cb.ctx, *cv.secret)
		if err != nil {
			return secretUnavailable("callback secret unavailable")
		}
		if subtle.ConstantTimeCompare([]byte(cb.r.Header.Get(cv.cfg.SharedSecretHeader)), []byte(s.Value)) != 1 {
			return notRecognised(http.StatusUnauthorized, "Unauthorized", "callback with a wrong shared secret")
		}
	}
	if cv.token != nil {
		tok, err := c.gw.secrets.Get(cb.ctx, cv.token.ref)
		if err != nil {
			return secretUnavailable("callback URL token unavailable")
		}
		if subtle.ConstantTimeCompare([]byte(cb.r.URL.Query().Get(cv.token.param)), []byte(tok.Value)) != 1 {
			return notRecognised(http.StatusUnauthorized, "Unauthorized", "callback without the URL token consentgate registered")
		}
	}
	return nil
}

func secretUnavailable(note string) *refusal.Refusal {
	return refusal.New(http.StatusServiceUnavailable, refusal.Credentials, "Secret unavailable", "").WithNote(note)
}

func (c *Callbacks) read(cb *callback) *refusal.Refusal {
	body, err := readBody(cb.r, cb.cv.op.cfg.MaxRequestBytes)
	if err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			return refusal.New(http.StatusRequestEntityTooLarge, refusal.TooLarge, "Callback body too large", "")
		}
		return refusal.New(http.StatusBadRequest, refusal.BadRequest, "Unreadable callback body", "")
	}
	cb.body, cb.ex.bytesIn = body, int64(len(body))
	return nil
}

// decide asks the policy about the callback as about a response the app is
// about to receive.
func (c *Callbacks) decide(cb *callback) *refusal.Refusal {
	cv, ex := cb.cv, cb.ex
	in := &policy.Input{App: policy.App{ID: cv.cfg.App, Role: identity.RoleApp}, Vendor: cv.v.cfg.ID, Operation: cv.op.cfg.ID,
		Method: cv.op.cfg.Method, Path: cv.op.cfg.Path, Body: cv.op.cfg.Body,
		RequestFields: cv.op.cfg.Fields.Request, ResponseFields: cv.op.cfg.Fields.Response, Identifiers: cv.op.identifierList, Now: c.gw.now()}
	ex.policyInput, ex.now = in.Replayable(), in.Now
	d := c.gw.policy.Decide(cb.ctx, in)
	cb.in, cb.decision, ex.decision = in, d, &d
	switch {
	case d.Busy:
		// The vendor retries a 503; a 403 would lose the callback.
		return &refusal.Refusal{Status: http.StatusServiceUnavailable, Kind: refusal.PolicyBusy, Title: "Policy engine busy",
			Detail: "the callback was not forwarded; retry", Header: retryIn("1"), Failed: true, Note: d.Err}
	case !d.Allow:
		return refusal.New(http.StatusForbidden, refusal.PolicyDenied, "Denied by policy", reasonList(&d))
	}
	return nil
}

// findOwner finds whose callback it is: the consent that created what it
// names. It goes to the callback's app only if that app owns them.
func (c *Callbacks) findOwner(cb *callback) *refusal.Refusal {
	owner, ref := c.gw.callbackOwner(cb.ctx, cb.cv, cb.body)
	if ref != nil {
		ref.Title = "Callback refused"
		return ref
	}
	if owner != nil {
		cb.ex.consentID, cb.ex.subject = owner.ConsentID, owner.Subject
	}
	cb.owner = owner
	return nil
}

func (c *Callbacks) recordIntent(cb *callback) *refusal.Refusal {
	if err := c.gw.record(cb.ctx, cb.ex, audit.KindIntent); err != nil {
		return auditUnavailable("audit intent not written")
	}
	return nil
}

// minimiseToApp applies the decision; a "hash" action is keyed like the
// gateway's, since an unkeyed hash of an identifier could be reversed by guessing.
func (c *Callbacks) minimiseToApp(cb *callback) *refusal.Refusal {
	d, ex := &cb.decision, cb.ex
	var hashKey []byte
	if needsHashKey(d) {
		s, err := c.gw.secrets.Get(cb.ctx, c.gw.hashRef)
		if err != nil {
			return refusal.New(http.StatusServiceUnavailable, refusal.Credentials, "Key unavailable", "the callback was not forwarded").
				AsFailure("field hash key unavailable")
		}
		hashKey = []byte(s.Value)
	}
	out, err := minimise.New(d.Response.Fields, d.Response.Default, hashKey, cb.in.Now).Minimise(cb.body)
	if err != nil {
		return refusal.New(http.StatusBadRequest, refusal.BadRequest, "Callback body is not JSON", "").
			WithNote("callback body could not be minimised")
	}
	cb.out = out
	ex.withheld, ex.disclosed = out.Withheld, out.Disclosed
	ex.categories = disclosedCategories(out.Disclosed, cb.cv.op.cfg.Fields.Response)
	return nil
}

// forwardToApp posts the minimised callback to the app; what the app answers
// is what the vendor gets.
func (c *Callbacks) forwardToApp(cb *callback, w http.ResponseWriter) *refusal.Refusal {
	cv, ex := cb.cv, cb.ex
	ctx, cancel := context.WithTimeout(context.WithoutCancel(cb.ctx), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, cv.cfg.ForwardURL, bytes.NewReader(cb.out.Body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Consentgate-Vendor", cv.v.cfg.ID)
	req.Header.Set("X-Consentgate-Decision-Id", cb.decision.ID)
	req.Header.Set("X-Request-Id", ex.requestID)
	// Set by us from the connection, never passed on from the caller.
	req.Header.Set("X-Forwarded-For", cb.src.String())
	resp, err := cv.forward.Do(req)
	if err != nil {
		return refusal.New(http.StatusBadGateway, refusal.VendorUnreachable, "App unreachable", "").
			AsFailure("forwarding to the app: " + safeUpstreamError(err))
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	ex.status, ex.bytesOut, ex.outcome = resp.StatusCode, int64(len(cb.out.Body)), outcomeForwarded
	if err := c.gw.record(cb.ctx, ex, audit.KindOutcome); err != nil {
		return auditUnavailable("")
	}
	w.WriteHeader(resp.StatusCode)
	return nil
}

// endUserCallback is an end user's browser back from a vendor's login: the
// broker completes the authorization, and the exchange is logged as any other.
func (c *Callbacks) endUserCallback(w http.ResponseWriter, r *http.Request) {
	g := c.gw
	ex, w := g.begin(w, r)
	ex.role, ex.pathTemplate = "end-user", "/oauth/{vendor}/callback"
	defer g.logExchange(ex)
	o := g.broker.Callback(w, r, ex.requestID)
	ex.app, ex.consentID, ex.vendor, ex.op = o.App, o.ConsentID, o.Vendor, o.Operation
	ex.status, ex.err = o.Status, o.Err
	switch {
	case o.Failed:
		ex.outcome = outcomeFailed
	case o.Done:
		ex.outcome = outcomeForwarded
	}
}
