package proxy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/oauth"
	"github.com/consentgate/consentgate/policy"
	"github.com/consentgate/consentgate/secrets"
	"github.com/consentgate/consentgate/tokens"
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
	Grants oauth.Grants
	Audit  Auditor
	// Tokens is the token vault for decisions that tokenize (keys.token_vault);
	// nil: such a decision fails closed.
	Tokens *tokens.Vault
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
	tokens   *tokens.Vault
	// shed counts refusals left unrecorded to keep the audit disk reserve
	// since the last refusal recorded (audit.go).
	shed    atomic.Int64
	hashRef secrets.Ref
	// subjectRef is the key identifiers are hashed with for the audit record;
	// identifiers hashes under its latest value (identifierHasher).
	subjectRef  secrets.Ref
	identifiers atomic.Pointer[audit.Hasher]
	log         *slog.Logger
	metrics     *metrics
	now         func() time.Time
	tracer      trace.Tracer // nil: tracing off

	// set is the vendor profiles in service (vendors.go); reloading
	// serialises reloads with what they must not interleave with, and guards
	// certWatch and callbacksPublic, which compiled vendors inherit.
	set             atomic.Pointer[vendorSet]
	reloading       sync.Mutex
	certWatch       *certificateWatch // nil until WatchCertificates
	callbacksPublic string            // "" until SetCallbacksPublicURL
	// revocation answers whether vendors' certificates are revoked, with the
	// answers of every vendor's handshakes cached in one place.
	revocation *certs.ServerRevocation

	// broker brokers end users' OAuth2 logins; nil when no vendor has one.
	broker *oauth.Broker
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
	// transport carries the vendor's calls; stopWatch ends the watch of its
	// certificates (retire).
	transport *vendorTransport
	stopWatch context.CancelFunc
	callback  *callbackVendor // nil: the profile has no callback
	// files is the digest of the files read when it was compiled (compiledFiles).
	files   [sha256.Size]byte
	quota   *quota
	login   *oauth.Login   // nil: no end-user login at this vendor
	cbToken *callbackToken // nil: callbacks carry no URL token
}

// New compiles every vendor profile: transports, client certificates (checked
// against the profile's requirements), credentials. Any problem stops start-up.
func New(ctx context.Context, o Options) (*Gateway, error) {
	if o.Policy == nil || o.Consents == nil || o.Secrets == nil || o.Audit == nil {
		return nil, errors.New("gateway needs a policy engine, a consent registry, a secret provider and an audit log")
	}
	g := &Gateway{cfg: o.Config, secrets: o.Secrets, policy: o.Policy, consents: o.Consents, auditor: o.Audit, tokens: o.Tokens,
		log: o.Logger, now: o.Now, metrics: newMetrics(o.Registerer), parsing: newParseSlots()}
	g.set.Store(newVendorSet(map[string]*vendor{}))
	g.revocation = certs.NewServerRevocation(5 * time.Second)
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.now == nil {
		g.now = time.Now
	}
	if o.Tracer != nil {
		g.tracer = o.Tracer.Tracer(tracerName)
	}
	var err error
	if g.hashRef, err = parseRef(o.Config.Keys.FieldHMAC); err != nil {
		return nil, fmt.Errorf("keys.field_hmac: %w", err)
	}
	if g.subjectRef, err = parseRef(o.Config.Keys.SubjectHMAC); err != nil {
		return nil, fmt.Errorf("keys.subject_hmac: %w", err)
	}
	if err := g.prepareOAuth(o); err != nil {
		return nil, err
	}
	if _, err := g.ReloadVendors(ctx, o.Config.Vendors); err != nil {
		return nil, err
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(newCertificateExpiry(g))
	}
	return g, nil
}

// prepareOAuth starts the broker of end users' logins when a vendor has one:
// it needs somewhere to keep authorizations, the key that seals tokens and
// the public URL (the apps' return URLs are the policy's). ReloadVendors
// gives it the logins.
func (g *Gateway) prepareOAuth(o Options) error {
	var uses []string
	for _, v := range o.Config.Vendors {
		if v.AuthorizationCode() != nil {
			uses = append(uses, v.ID)
		}
	}
	if len(uses) == 0 {
		return nil
	}
	if o.Grants == nil {
		return fmt.Errorf("vendors %v use oauth2_authorization_code: the gateway needs a grant store", uses)
	}
	seal, err := parseRef(g.cfg.Keys.TokenSeal)
	if err != nil {
		return fmt.Errorf("keys.token_seal: %w", err)
	}
	var previous secrets.Ref
	if g.cfg.Keys.TokenSealPrevious != "" {
		if previous, err = parseRef(g.cfg.Keys.TokenSealPrevious); err != nil {
			return fmt.Errorf("keys.token_seal_previous: %w", err)
		}
	}
	g.broker, err = oauth.New(oauth.Options{Grants: o.Grants, Secrets: g.secrets, Audit: g.auditor, Apps: g.policy,
		SealKey: seal, PreviousSealKey: previous, PublicURL: g.cfg.OAuth.PublicURL, StateTTL: g.cfg.OAuth.StateTTL.Duration,
		Logger: g.log, Registerer: o.Registerer, Now: g.now})
	return err
}

// Broker is the broker of end users' OAuth2 logins, nil when no vendor has one.
func (g *Gateway) Broker() *oauth.Broker { return g.broker }

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
	dial, err := g.egressDial(ctx, vc, base)
	if err != nil {
		return nil, err
	}
	tr, err := newVendorTransport(vc.ID, vc.Timeouts.Request.Duration, g.log, func() (*http.Transport, error) {
		return newTransport(vc, base, v.identity, v.bundle, dial, g.vendorRevocation(vc, v.bundle))
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
	if v.creds, v.login, v.strip, err = compileCredentials(vc, base, client); err != nil {
		return nil, err
	}
	v.transport = tr
	if v.cbToken != nil && g.callbacksPublic != "" {
		if err := v.cbToken.setPublic(g.callbacksPublic); err != nil {
			return nil, err
		}
	}
	if v.callback, err = g.compileCallback(v); err != nil {
		return nil, err
	}
	g.logCertificate(v)
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
	scrub  *scrubber // injected secrets and revealed values, wherever echoed
	// tokenized are the values stage 11 replaced by tokens: echoed elsewhere in
	// the answer (a message, a header), they are redacted too.
	tokenized []string
	// decision is applied to the response; passthrough is set for a report-only
	// route whose decision was a deny (nothing to minimise with).
	decision    *policy.Decision
	passthrough bool
	hashKey     []byte
	identifiers *audit.Hasher
	sent        time.Time // when the request left for the vendor
}

func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	return readAllSized(http.MaxBytesReader(nil, r.Body, limit), r.ContentLength, limit)
}

// copyBuffers lends the reverse proxies their copy buffers.
var copyBuffers = &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte  { return *p.pool.Get().(*[]byte) }
func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }
