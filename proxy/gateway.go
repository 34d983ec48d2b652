package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/policy"
	"github.com/consentgate/consentgate/secrets"
)

// Options are what a Gateway is built from. Policy and Consents are required: a
// gateway without them would have nothing to decide with.
type Options struct {
	Config   *configs.Config
	Secrets  secrets.Provider
	Policy   *policy.Engine
	Consents Consents
	// Grants keeps end users' OAuth2 authorizations and tokens; required when a
	// vendor uses oauth2_authorization_code (the consent registry).
	Grants Grants
	Audit  Auditor
	// Logger receives the canonical request line and start-up warnings; nil discards.
	Logger *slog.Logger
	// Registerer receives the gateway's metrics; nil registers nowhere.
	Registerer prometheus.Registerer
	// Now is the clock (decisions, age derivation, certificate expiry); nil means time.Now.
	Now func() time.Time
	// Tracer receives a span per exchange and stage; nil turns tracing off.
	Tracer trace.TracerProvider
}

// Gateway serves gateway-mode calls: https://<gateway>/v/<vendor>/<vendor path>.
type Gateway struct {
	cfg      *configs.Config
	secrets  secrets.Provider
	policy   *policy.Engine
	consents Consents
	auditor  Auditor
	// shed counts refusals left unrecorded to keep the audit disk reserve
	// since the last refusal recorded (audit.go).
	shed    atomic.Int64
	hashRef secrets.Ref
	// subjectRef is the key identifiers are hashed with for the audit record.
	subjectRef secrets.Ref
	log        *slog.Logger
	metrics    *metrics
	now        func() time.Time
	vendors    map[string]*vendor
	tracer     trace.Tracer // nil: tracing off

	// OAuth2 authorization-code brokering (oauth.go, usertokens.go).
	grants    Grants
	sealRef   secrets.Ref
	sealCache atomic.Pointer[sealKeyCache]
	// prevSealRef is keys.token_seal_previous (zero when not set).
	prevSealRef   secrets.Ref
	prevSealCache atomic.Pointer[sealKeyCache]
	publicURL     atomic.Pointer[url.URL]
	returnTo      returnTargets
	tokenLocks    [64]sync.Mutex
	unmatched     *unmatchedCallbacks
	// parsing bounds the request bodies read at once (shape.go).
	parsing *parseSlots
}

var _ http.Handler = (*Gateway)(nil)

// vendor is a vendor profile compiled for the hot path: nothing here is parsed,
// loaded or built per request.
type vendor struct {
	cfg      *configs.Vendor
	base     *url.URL
	ops      []*operation
	creds    []*credential
	strip    stripRules
	identity *certs.ClientIdentity
	bundle   *certs.CABundle
	proxy    *httputil.ReverseProxy
	quota    *quota
	authCode *authCode      // nil: no end-user login at this vendor
	cbToken  *callbackToken // nil: callbacks carry no URL token
}

// New compiles every vendor profile: transports, client certificates (checked
// against the profile's requirements), credentials. Any problem stops start-up.
func New(ctx context.Context, o Options) (*Gateway, error) {
	if o.Policy == nil || o.Consents == nil || o.Secrets == nil || o.Audit == nil {
		return nil, errors.New("gateway needs a policy engine, a consent registry, a secret provider and an audit log")
	}
	g := &Gateway{cfg: o.Config, secrets: o.Secrets, policy: o.Policy, consents: o.Consents, auditor: o.Audit,
		log: o.Logger, now: o.Now, vendors: map[string]*vendor{}, metrics: newMetrics(o.Registerer), grants: o.Grants,
		unmatched: newUnmatchedCallbacks(), parsing: newParseSlots()}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.now == nil {
		g.now = time.Now
	}
	if o.Tracer != nil {
		g.tracer = o.Tracer.Tracer(tracerName)
	}
	now := g.now
	var err error
	if g.hashRef, err = parseRef(o.Config.Keys.FieldHMAC); err != nil {
		return nil, fmt.Errorf("keys.field_hmac: %w", err)
	}
	if g.subjectRef, err = parseRef(o.Config.Keys.SubjectHMAC); err != nil {
		return nil, fmt.Errorf("keys.subject_hmac: %w", err)
	}
	for _, vc := range o.Config.Vendors {
		v, err := g.compileVendor(ctx, vc)
		if err != nil {
			return nil, err
		}
		if v.identity != nil {
			if o.Registerer != nil {
				id := v.identity
				o.Registerer.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
					Name:        "consentgate_vendor_certificate_expiry_days",
					Help:        "Days until the vendor client certificate in use expires (fractional; negative once expired).",
					ConstLabels: prometheus.Labels{"vendor": vc.ID},
				}, func() float64 { return id.Leaf().NotAfter.Sub(now()).Hours() / 24 }))
			}
			r := certs.Inspect(v.identity.Leaf(), now())
			if r.NotAfter.Sub(now()) < certs.ExpiryWarning {
				g.log.Warn("vendor client certificate expires soon", "vendor", vc.ID, "days_left", r.DaysLeft, "not_after", r.NotAfter)
			}
		}
		g.vendors[vc.ID] = v
	}
	known := knownNames(g.vendors)
	for _, v := range g.vendors {
		for _, op := range v.ops {
			op.known = known
		}
	}
	if err := g.prepareOAuth(); err != nil {
		return nil, err
	}
	return g, nil
}

// prepareOAuth checks what vendors with an end-user login need: somewhere to keep
// authorizations, the key that seals tokens, the public URL and the apps'
// return URLs.
func (g *Gateway) prepareOAuth() error {
	var uses []string
	for id, v := range g.vendors {
		if v.authCode != nil {
			uses = append(uses, id)
		}
	}
	if len(uses) == 0 {
		return nil
	}
	if g.grants == nil {
		return fmt.Errorf("vendors %v use oauth2_authorization_code: the gateway needs a grant store", uses)
	}
	var err error
	if g.sealRef, err = parseRef(g.cfg.Keys.TokenSeal); err != nil {
		return fmt.Errorf("keys.token_seal: %w", err)
	}
	if g.cfg.Keys.TokenSealPrevious != "" {
		if g.prevSealRef, err = parseRef(g.cfg.Keys.TokenSealPrevious); err != nil {
			return fmt.Errorf("keys.token_seal_previous: %w", err)
		}
	}
	if err := g.SetOAuthPublicURL(g.cfg.OAuth.PublicURL); err != nil {
		return fmt.Errorf("oauth.public_url: %w", err)
	}
	if g.returnTo, err = compileReturnTargets(g.cfg.Apps); err != nil {
		return err
	}
	return nil
}

func (g *Gateway) compileVendor(ctx context.Context, vc *configs.Vendor) (*vendor, error) {
	base, err := url.Parse(vc.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("vendor %s base_url: %w", vc.ID, err)
	}
	v := &vendor{cfg: vc, base: base, quota: newQuota(vc.Quota)}
	for i := range vc.Operations {
		v.ops = append(v.ops, compileOperation(&vc.Operations[i]))
	}
	if v.cbToken, err = compileCallbackToken(vc.Callback); err != nil {
		return nil, fmt.Errorf("vendor %s %w", vc.ID, err)
	}
	if v.identity, err = g.clientIdentity(ctx, vc); err != nil {
		return nil, err
	}
	if v.bundle, err = g.caBundle(ctx, vc); err != nil {
		return nil, err
	}
	tr, err := newVendorTransport(vc.ID, vc.Timeouts.Request.Duration, g.log, func() (*http.Transport, error) {
		return newTransport(vc, base, v.identity, v.bundle)
	})
	if err != nil {
		return nil, err
	}
	if v.identity != nil {
		v.identity.OnChange(tr.renew)
	}
	if v.bundle != nil {
		v.bundle.OnChange(tr.renew)
	}
	client := &http.Client{Transport: tr, Timeout: vc.Timeouts.Request.Duration,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if v.creds, v.authCode, v.strip, err = compileCredentials(vc, base, client); err != nil {
		return nil, err
	}
	var upstream http.RoundTripper = tr
	if g.tracer != nil {
		upstream = tracedTransport{next: tr, tracer: g.tracer}
	}
	v.proxy = &httputil.ReverseProxy{
		Rewrite:        v.rewrite,
		Transport:      upstream,
		ModifyResponse: g.modifyResponse,
		ErrorHandler:   g.upstreamError,
		ErrorLog:       slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
		// Without a pool every response copy allocates 32 KiB: a third of all
		// the bytes a call allocated, and the garbage collector's work with them.
		BufferPool: copyBuffers,
	}
	return v, nil
}

// outbound is the per-request state the proxy hooks need, prepared before any
// hook runs so that a hook never has to fail.
type outbound struct {
	ex     *exchange
	vendor *vendor
	op     *operation
	url    *url.URL
	req    *sentRequest
	named  map[string]string // the vendor ids the request names, by kind
	caller *consentOf        // the app's own consent the call is under; nil: none
	inj    *injection
	scrub  *scrubber
	// decision is applied to the response; passthrough is set for a report-only
	// route whose decision was a deny (nothing to minimise with).
	decision    *policy.Decision
	passthrough bool
	hashKey     []byte
	subjectKey  []byte
	sent        time.Time // when the request left for the vendor
}

type outboundKey struct{}

// ServeHTTP runs the pipeline. Each stage either hands on or answers the app with
// problem+json; nothing after a refusal reaches the vendor.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r, span := g.exchangeSpan(r, "gateway")
	defer span.End()
	ex, w := g.begin(w, r)
	defer g.logExchange(ex)
	refuse := func(status int, kind, title, detail string) {
		g.refuse(r.Context(), w, ex, status, kind, title, detail)
	}
	if erasureCall(r) {
		ex.initiator = "erasure"
	}

	// Stage 1, identity: the listener verified the chain; here we read who it is.
	// Behind the forward proxy the identity comes from the outer TLS connection,
	// which the proxy put in the context (an app cannot set a context).
	id, ok := IdentityFrom(r.Context())
	if !ok {
		// Verified chains, not merely presented certificates: the gateway
		// listener may accept connections without one (browsers at the OAuth2
		// callback), and this stage must not depend on how it was configured.
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 || len(r.TLS.VerifiedChains) == 0 {
			refuse(http.StatusUnauthorized, problemForbiddenRole, "Client certificate required", "")
			return
		}
		var err error
		if id, err = identityOf(r.TLS.PeerCertificates[0], g.cfg.TrustDomain); err != nil {
			refuse(http.StatusForbidden, problemForbiddenRole, "Unknown identity", err.Error())
			return
		}
	}
	ex.app, ex.role = id.Name, id.Role
	if id.Role != RoleApp {
		refuse(http.StatusForbidden, problemForbiddenRole, "Role not allowed",
			fmt.Sprintf("role %q cannot call vendors; use an app certificate", id.Role))
		return
	}
	ctx := WithIdentity(r.Context(), id)

	// Stage 2, route: deny by default.
	rt, status, detail := g.route(r)
	if rt == nil {
		kind := problemNoRoute
		if status == http.StatusBadRequest {
			kind = problemBadRequest
		}
		refuse(status, kind, http.StatusText(status), detail)
		return
	}
	v, op := rt.vendor, rt.op
	ex.vendor, ex.op, ex.pathTemplate = v.cfg.ID, op.cfg.ID, op.cfg.Path
	ex.tenant = op.cfg.Class == configs.ClassTenant

	// A body announced larger than the operation takes is refused before
	// anything else is done with it.
	if r.ContentLength > op.cfg.MaxRequestBytes {
		refuse(http.StatusRequestEntityTooLarge, problemTooLarge, "Request body too large",
			fmt.Sprintf("operation %s accepts at most %d bytes", op.cfg.ID, op.cfg.MaxRequestBytes))
		return
	}
	ex.bytesIn = r.ContentLength

	// Stage 3, decision: consent lookup and policy, before any of the body is
	// read: the policy decides on the fields the operation may send, so a call
	// it refuses costs no parsing. Deny by default.
	in, status, err := g.decideInput(ctx, r, id, v, op)
	if errors.Is(err, errForeignConsent) {
		ex.err, err = err.Error(), nil
	}
	if err != nil {
		if status == http.StatusServiceUnavailable {
			ex.outcome, ex.err = outcomeFailed, err.Error()
			g.log.Error("consent registry unavailable: refusing the call", logRequestID, ex.requestID, logError, err.Error())
			refuse(status, problemConsentStore, "Consent registry unavailable", "the vendor was not called")
			return
		}
		refuse(status, problemBadRequest, "Bad request", err.Error())
		return
	}
	ex.consentID, ex.purpose, ex.now = in.ConsentID, in.Purpose, in.Now
	if in.Consent != nil {
		ex.subject = in.Consent.Subject
	}
	ex.policyInput = in.Replayable()
	decideStart := time.Now()
	pctx, pspan := g.stage(ctx, spanPolicy)
	d := g.policy.Decide(pctx, in)
	if pspan.IsRecording() { // the attributes escape to the heap, traced or not
		pspan.SetAttributes(attribute.String("consentgate.decision_id", d.ID), attribute.Bool("consentgate.allow", d.Allow))
	}
	pspan.End()
	g.metrics.observe(stagePolicy, decideStart)
	ex.decision = &d
	w.Header().Set("X-Consentgate-Decision-Id", d.ID)
	passthrough := false
	if !d.Allow || (op.cfg.Body == configs.BodyBinary && d.Binary != "allow") {
		if d.Err != "" {
			g.log.Error("policy could not decide: denying", logRequestID, ex.requestID, logDecisionID, d.ID, logError, d.Err)
		}
		// Overload is not the policy's answer: the app gets 503 and may retry,
		// where a 403 would tell it the call is not allowed.
		if d.Busy && op.cfg.Enforced() {
			ex.outcome, ex.status, ex.err = outcomeFailed, http.StatusServiceUnavailable, d.Err
			if err := g.record(ctx, ex, audit.KindOutcome); err != nil {
				g.auditUnavailable(w, ex)
				return
			}
			w.Header().Set("Retry-After", "1")
			writeProblemBody(w, problem{Type: "urn:consentgate:problem:" + problemPolicyBusy, Title: "Policy engine busy",
				Status: http.StatusServiceUnavailable, Detail: "the policy could not decide in time under load; the vendor was not called; retry",
				RequestID: ex.requestID, DecisionID: d.ID})
			return
		}
		if op.cfg.Enforced() {
			ex.outcome, ex.status = outcomeDenied, http.StatusForbidden
			if err := g.record(ctx, ex, audit.KindOutcome); err != nil {
				g.auditUnavailable(w, ex)
				return
			}
			writeProblemBody(w, problem{Type: "urn:consentgate:problem:" + problemDenied, Title: "Denied by policy",
				Status: http.StatusForbidden, Detail: "the vendor was not called: " + reasonList(&d),
				RequestID: ex.requestID, DecisionID: d.ID, Reasons: d.Reasons})
			return
		}
		// Report-only: the call goes through as it would without consentgate's
		// policy, and the log says it would have been denied.
		ex.wouldDeny, passthrough = true, true
	}
	// Stage 4, request: read as the operation declares it (body media type,
	// query, headers), bounded in size, depth and breadth, and read whole
	// because only the fields the decision permits are sent.
	req, err := g.readRequest(ctx, r, v, op)
	if err != nil {
		rr := err.(*requestRefusal)
		if rr.kind == problemBusy {
			w.Header().Set("Retry-After", "1")
		}
		refuse(rr.status, rr.kind, rr.title(), rr.detail)
		return
	}
	ex.requestWithheld = req.present

	// Stage 5, resources: the vendor ids the call names are its end user's.
	var caller *consentOf
	if c := in.Consent; c != nil {
		caller = &consentOf{id: c.ID, subject: c.Subject, app: id.Name}
	}
	named, o := g.checkOwnership(ctx, v, op, req, rt.path, caller)
	if o != nil {
		ex.err = o.kind
		refuse(o.status, o.kind, "Vendor resource not yours", o.detail)
		return
	}

	// The vendor's budget: when the vendor has said it is spent, or the profile's
	// bucket is empty, the app gets 429 from consentgate and the vendor no call
	// it would refuse.
	if ok, refused := v.quota.admit(id.Name, g.now()); !ok {
		ex.status, ex.err = http.StatusTooManyRequests, "vendor quota exhausted"
		if err := g.record(ctx, ex, audit.KindOutcome); err != nil {
			g.auditUnavailable(w, ex)
			return
		}
		refused.header(w.Header())
		writeProblem(w, http.StatusTooManyRequests, problemQuota, "Vendor quota exhausted",
			fmt.Sprintf("vendor %s will take no more calls for now; retry after the Retry-After seconds", v.cfg.ID), ex.requestID)
		return
	}

	// Stage 6, request minimisation: only declared fields the decision permits
	// are sent (on a report-only pass-through, every declared field).
	drop := d.Request.Drop
	if passthrough {
		drop = nil
	}
	sent, err := req.minimize(drop)
	if err != nil {
		rr := err.(*requestRefusal)
		refuse(rr.status, rr.kind, rr.title(), rr.detail)
		return
	}
	ex.requestDisclosed, ex.requestWithheld = sent.disclosed, sent.withheld
	ex.categories = disclosedCategories(sent.disclosed, op.sent)

	// Stage 7, audit intent: durable before any vendor secret is read or the
	// vendor contacted. It carries the identifiers the request discloses.
	sk, err := g.secrets.Get(ctx, g.subjectRef)
	if err != nil {
		// A secret-provider failure (Vault away longer than max_stale), not an
		// audit one: the refusal is recorded, without identifiers.
		ex.outcome, ex.err = outcomeFailed, "identifier key unavailable"
		g.log.Error("identifier HMAC key unavailable: refusing the call", logRequestID, ex.requestID, logError, err.Error())
		refuse(http.StatusServiceUnavailable, problemCredentials, "Key unavailable",
			"consentgate could not read its identifier key from the secret provider; the vendor was not called")
		return
	}
	subjectKey := []byte(sk.Value)
	for _, val := range sent.identifiers {
		ex.identifiers = append(ex.identifiers, audit.HMAC(subjectKey, val))
	}
	if err := g.record(ctx, ex, audit.KindIntent); err != nil {
		ex.outcome, ex.err = outcomeFailed, "audit intent not written"
		g.auditUnavailable(w, ex)
		return
	}

	var hashKey []byte
	if !passthrough && needsHashKey(&d) {
		s, err := g.secrets.Get(ctx, g.hashRef)
		if err != nil {
			ex.outcome, ex.err = outcomeFailed, err.Error()
			g.log.Error("field hash key unavailable: refusing the call", logRequestID, ex.requestID, logError, err.Error())
			refuse(http.StatusServiceUnavailable, problemCredentials, "Key unavailable", "the vendor was not called")
			return
		}
		hashKey = []byte(s.Value)
	}

	// Stage 8, credentials: the vendor is not called without them.
	cctx, cspan := g.stage(ctx, spanCredentials)
	inj, err := v.credentialsFor(cctx, op, g.secrets, g.userBearer(id.Name, in.Consent))
	cspan.End()
	if errors.Is(err, ErrNotAuthorized) {
		ex.err = err.Error()
		refuse(http.StatusFailedDependency, problemAuthorizationNeeded, "End user authorization required",
			fmt.Sprintf("the end user has not authorised vendor %s for consent %q, or the vendor has withdrawn it; start it with GET /v1/oauth/%s/start on the admin listener; the vendor was not called",
				v.cfg.ID, in.ConsentID, v.cfg.ID))
		return
	}
	if err != nil {
		ex.outcome, ex.err = outcomeFailed, err.Error()
		g.log.Error("vendor credentials unavailable: refusing the call", logRequestID, ex.requestID, logVendor, v.cfg.ID, logError, err.Error())
		refuse(http.StatusServiceUnavailable, problemCredentials, "Vendor credentials unavailable",
			fmt.Sprintf("consentgate could not obtain the credentials for vendor %s; the vendor was not called", v.cfg.ID))
		return
	}
	if sent.body, err = v.withCallbackToken(ctx, g.secrets, op, sent.body, inj); err != nil {
		ex.outcome, ex.err = outcomeFailed, err.Error()
		refuse(http.StatusServiceUnavailable, problemCredentials, "Vendor credentials unavailable",
			fmt.Sprintf("consentgate could not read the callback URL token of vendor %s; the vendor was not called", v.cfg.ID))
		return
	}
	if sent.body, err = rewriteBody(sent.body, sent.contentType, v.strip.body, inj.body); err != nil {
		refuse(http.StatusBadRequest, problemMalformedBody, "Bad request body", err.Error())
		return
	}
	if len(sent.body) > 0 && sent.contentType == "" {
		sent.contentType = mediaName(op.cfg.RequestBody)
	}

	// Stage 9, upstream: the reverse proxy's hooks apply what was prepared above.
	target := v.upstreamURL(rt.path, sent.query, inj.query)
	ctx, cancel := context.WithTimeout(ctx, v.cfg.Timeouts.Request.Duration)
	defer cancel()
	ob := &outbound{ex: ex, vendor: v, op: op, url: target, req: sent, named: named, caller: caller, inj: inj, scrub: newScrubber(inj.secrets),
		decision: &d, passthrough: passthrough, hashKey: hashKey, subjectKey: subjectKey, sent: time.Now()}
	ex.outcome = outcomeForwarded
	v.proxy.ServeHTTP(w, r.WithContext(context.WithValue(ctx, outboundKey{}, ob)))
	// Stage 10, response: minimised and its outcome recorded in modifyResponse,
	// before the first byte reaches the app.
}

// begin starts one exchange: its request id (also in the answer) and the
// writer that records what the app is sent, for the canonical log line.
func (g *Gateway) begin(w http.ResponseWriter, r *http.Request) (*exchange, http.ResponseWriter) {
	ex := &exchange{start: time.Now(), requestID: uuid.NewString(), method: r.Method, outcome: outcomeRefused,
		w: &statusWriter{ResponseWriter: w}, span: trace.SpanFromContext(r.Context())}
	ex.w.Header().Set("X-Request-Id", ex.requestID)
	return ex, ex.w
}

// refuse answers with problem+json, after the outcome record: if that cannot be
// written, the answer is 503 instead.
func (g *Gateway) refuse(ctx context.Context, w http.ResponseWriter, ex *exchange, status int, kind, title, detail string) {
	ex.status = status
	if err := g.record(ctx, ex, audit.KindOutcome); err != nil {
		g.auditUnavailable(w, ex)
		return
	}
	writeProblem(w, status, kind, title, detail, ex.requestID)
}

// auditUnavailable answers 503 when a record could not be written. It writes no
// record itself: the log is what failed.
func (g *Gateway) auditUnavailable(w http.ResponseWriter, ex *exchange) {
	ex.outcome = outcomeFailed
	if ex.err == "" {
		ex.err = "audit log unavailable"
	}
	writeProblem(w, http.StatusServiceUnavailable, problemAudit, "Audit log unavailable",
		"consentgate could not record the call, so it was not made or not answered", ex.requestID)
}

// route finds the vendor operation; on failure it returns the status and detail.
func (g *Gateway) route(r *http.Request) (*route, int, string) {
	vendorID, rest, ok := splitGatewayPath(r.URL.EscapedPath())
	if !ok {
		return nil, http.StatusNotFound, "gateway paths are /v/<vendor>/<vendor path>"
	}
	v := g.vendors[vendorID]
	if v == nil {
		return nil, http.StatusNotFound, fmt.Sprintf("no vendor %q is configured", vendorID)
	}
	op, err := v.match(r.Method, rest)
	switch {
	case errors.Is(err, ErrBadPath):
		return nil, http.StatusBadRequest, err.Error()
	case err != nil:
		if methods := v.methodsFor(rest); len(methods) > 0 {
			return nil, http.StatusNotFound, fmt.Sprintf("vendor %s allows only %s on this path", vendorID, strings.Join(methods, ", "))
		}
		return nil, http.StatusNotFound, fmt.Sprintf("vendor %s has no operation for %s on this path", vendorID, r.Method)
	}
	return &route{vendor: v, op: op, path: rest}, 0, ""
}

func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	return readAllSized(http.MaxBytesReader(nil, r.Body, limit), r.ContentLength, limit)
}

// upstreamURL joins the base URL with the vendor path and the app's query minus
// anything credential-like, then adds the injected query credentials.
func (v *vendor) upstreamURL(escapedPath string, appQuery, inject url.Values) *url.URL {
	q := url.Values{}
	for k, vals := range appQuery {
		if !containsFold(v.strip.query, k) {
			q[k] = vals
		}
	}
	for k, vals := range inject {
		q[k] = vals
	}
	u := *v.base
	basePath := strings.TrimSuffix(v.base.EscapedPath(), "/")
	u.RawPath = basePath + escapedPath
	u.Path, _ = url.PathUnescape(u.RawPath)
	u.RawQuery = q.Encode()
	return &u
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// rewrite builds the outbound request. Out's headers are built anew: the app's
// declared headers the decision kept, the body's media type, and what
// consentgate injects; nothing else of the app's reaches the vendor.
func (v *vendor) rewrite(pr *httputil.ProxyRequest) {
	ob := pr.In.Context().Value(outboundKey{}).(*outbound)
	out := pr.Out
	out.URL = ob.url
	out.Host = ""
	h := http.Header{}
	for k, vals := range ob.req.header {
		h[k] = vals
	}
	for _, name := range v.strip.headers {
		h.Del(name)
	}
	if ob.req.contentType != "" {
		h.Set("Content-Type", ob.req.contentType)
	}
	// Without Accept-Encoding the transport asks for gzip itself and
	// decompresses, so every response can be inspected.
	for k, vals := range ob.inj.header {
		h[k] = vals
	}
	out.Header = h
	body := ob.req.body
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	if len(body) == 0 && (pr.In.Method == http.MethodGet || pr.In.Method == http.MethodDelete) {
		out.Body = http.NoBody
	}
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
}

// maxResponseBytes bounds a JSON response held for minimisation.
const maxResponseBytes = 16 << 20

// readResponse reads a vendor's body whole, up to maxResponseBytes, and closes it.
func readResponse(resp *http.Response) ([]byte, error) {
	raw, err := readAllSized(io.LimitReader(resp.Body, maxResponseBytes+1), resp.ContentLength, maxResponseBytes+1)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("reading vendor response: %w", err)
	}
	if len(raw) > maxResponseBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrUnparsableBody, maxResponseBytes)
	}
	return raw, nil
}

// readAllSized is io.ReadAll that allocates once when the length is announced
// (up to limit): a stated length is a hint only, the reader decides the end.
func readAllSized(r io.Reader, length, limit int64) ([]byte, error) {
	if length <= 0 || length > limit {
		return io.ReadAll(r)
	}
	var b bytes.Buffer
	b.Grow(int(length) + bytes.MinRead)
	_, err := b.ReadFrom(r)
	return b.Bytes(), err
}

// copyBuffers lends the reverse proxies their copy buffers.
var copyBuffers = &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte  { return *p.pool.Get().(*[]byte) }
func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }

// modifyResponse runs before any byte reaches the app.
func (g *Gateway) modifyResponse(resp *http.Response) error {
	ob := resp.Request.Context().Value(outboundKey{}).(*outbound)
	g.metrics.observe(stageUpstream, ob.sent)
	ob.vendor.quota.observe(resp.Header, resp.StatusCode, g.now())
	if rem, known := ob.vendor.quota.snapshot(); known {
		g.metrics.quotaRemaining.WithLabelValues(ob.vendor.cfg.ID).Set(float64(rem))
	}
	ex := ob.ex
	ex.upstreamStatus = resp.StatusCode
	if enc := resp.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
		return fmt.Errorf("%w: %q", ErrUnexpectedEncoding, enc)
	}
	// Vendor session cookies belong to consentgate's connection, not to the app.
	resp.Header.Del("Set-Cookie")
	resp.Header.Del("Set-Cookie2")
	ob.scrub.header(resp.Header)
	ex.status = resp.StatusCode
	if ob.passthrough || ob.op.cfg.Body == configs.BodyBinary {
		if err := g.bindPassedThrough(resp, ob); err != nil {
			return err
		}
		ex.bytesOut = resp.ContentLength
		if err := g.record(resp.Request.Context(), ex, audit.KindOutcome); err != nil {
			return err
		}
		if !ob.scrub.empty() {
			resp.Body = ob.scrub.reader(resp.Body)
			// Scrubbing may change the length.
			resp.ContentLength = -1
			resp.Header.Del("Content-Length")
		}
		return nil
	}
	// JSON: read it whole, minimise, scrub. Whatever goes wrong, nothing of the
	// vendor's body is passed on.
	raw, err := readResponse(resp)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 == 2 {
		if err := g.bindCreated(resp.Request.Context(), ob, raw); err != nil {
			return err
		}
	}
	d := ob.decision
	m := newMinimizer(d.Response.Fields, d.Response.Default, ob.hashKey, ex.now)
	m.identify = ob.op.identifiers
	_, mspan := g.stage(resp.Request.Context(), spanMinimise)
	out, err := m.minimize(raw)
	if mspan.IsRecording() {
		mspan.SetAttributes(attribute.Int("consentgate.withheld", len(out.withheld)))
	}
	mspan.End()
	if err != nil {
		return err
	}
	body := ob.scrub.bytes(out.body)
	ex.withheld, ex.disclosed, ex.bytesOut = out.withheld, out.disclosed, int64(len(body))
	ex.categories = slices.Compact(slices.Sorted(slices.Values(append(ex.categories, disclosedCategories(out.disclosed, ob.op.cfg.Fields.Response)...))))
	for _, val := range out.identifiers {
		ex.identifiers = append(ex.identifiers, audit.HMAC(ob.subjectKey, val))
	}
	if err := g.record(resp.Request.Context(), ex, audit.KindOutcome); err != nil {
		return err
	}
	resp.Header.Set("X-Consentgate-Withheld", strconv.Itoa(len(out.withheld)))
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// upstreamError answers the app when the vendor could not be reached or its
// response was refused. The logged error is stripped of the URL (which can carry
// a query credential) and scrubbed of injected values.
func (g *Gateway) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	ob, _ := r.Context().Value(outboundKey{}).(*outbound)
	msg := safeUpstreamError(err)
	if ob != nil {
		msg = ob.scrub.string(msg)
		ob.ex.outcome, ob.ex.err = outcomeFailed, msg
	}
	reqID := w.Header().Get("X-Request-Id")
	if ob == nil {
		writeProblem(w, http.StatusBadGateway, problemUpstream, "Vendor unreachable", "", reqID)
		return
	}
	if errors.Is(err, ErrAuditUnavailable) {
		g.auditUnavailable(w, ob.ex)
		return
	}
	status := http.StatusBadGateway
	switch {
	case errors.Is(err, errResourceStore):
		status = http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		status = http.StatusGatewayTimeout
	case errors.Is(err, context.Canceled):
		status = 499
	}
	{
		ob.ex.status = status
		if rerr := g.record(r.Context(), ob.ex, audit.KindOutcome); rerr != nil {
			g.auditUnavailable(w, ob.ex)
			return
		}
	}
	switch {
	case errors.Is(err, errResourceStore):
		g.log.Error("vendor resource could not be bound: its id was withheld", logRequestID, reqID, logError, msg)
		writeProblem(w, http.StatusServiceUnavailable, problemConsentStore, "Consent registry unavailable",
			"the vendor created a resource consentgate could not bind to the consent, so its answer was not passed on", reqID)
	case errors.Is(err, ErrUnexpectedEncoding) || errors.Is(err, ErrUnparsableBody) || errors.Is(err, errResourceConflict):
		writeProblem(w, http.StatusBadGateway, problemBadUpstream, "Vendor response refused", "the vendor's response could not be inspected, so it was not passed on", reqID)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		writeProblem(w, http.StatusGatewayTimeout, problemTimeout, "Vendor timed out", "", reqID)
	case errors.Is(err, context.Canceled):
		// The app went away; there is nobody to answer.
		w.WriteHeader(499)
	default:
		writeProblem(w, http.StatusBadGateway, problemUpstream, "Vendor unreachable", "", reqID)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func safeUpstreamError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + ": " + ue.Err.Error()
	}
	return err.Error()
}
