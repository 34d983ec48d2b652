package oauth

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"context"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/secrets"
)

// ErrNotAuthorized means the end user has not authorised consentgate at the
// vendor for the consent a call names (never, or the vendor has withdrawn it).
var ErrNotAuthorized = errors.New("the end user has not authorised this vendor for the consent")

// Auditor records the starts and refusals of authorizations; *audit.Log
// implements it.
type Auditor interface {
	Append(ctx context.Context, r audit.Record) (audit.Record, error)
}

// Apps says where each app may send its end users back after an
// authorization: the policy in service (*policy.Engine).
type Apps interface {
	ReturnTo(app string) []*url.URL
}

// Options are what a Broker is built from.
type Options struct {
	Grants  Grants
	Secrets secrets.Provider
	Audit   Auditor
	Apps    Apps
	// SealKey is keys.token_seal; PreviousSealKey keys.token_seal_previous
	// (zero when not set).
	SealKey, PreviousSealKey secrets.Ref
	// PublicURL is oauth.public_url, the base of every redirect URI.
	PublicURL string
	// StateTTL is how long a started authorization may take.
	StateTTL time.Duration
	Logger   *slog.Logger
	// Registerer receives the broker's metrics; nil registers nowhere.
	Registerer prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Broker brokers end users' authorizations at vendors: it starts them for
// apps, completes them when the browser comes back, and hands the pipeline an
// end user's access token for the consent a call is under.
type Broker struct {
	grants      Grants
	secrets     secrets.Provider
	audit       Auditor
	apps        Apps
	log         *slog.Logger
	now         func() time.Time
	stateTTL    time.Duration
	logins      atomic.Pointer[map[string]*Login]
	sealRef     secrets.Ref
	prevSealRef secrets.Ref
	sealCache   atomic.Pointer[sealKeyCache]
	prevCache   atomic.Pointer[sealKeyCache]
	publicURL   atomic.Pointer[url.URL]
	tokenLocks  [64]sync.Mutex
	unmatched   *unmatchedCallbacks
	unrecorded  prometheus.Counter
}

// New is a Broker with no vendor logins yet (SetLogins).
func New(o Options) (*Broker, error) {
	if o.Grants == nil || o.Secrets == nil || o.Audit == nil || o.Apps == nil {
		return nil, errors.New("the OAuth2 broker needs a grant store, a secret provider, an audit log and the apps' return URLs")
	}
	b := &Broker{grants: o.Grants, secrets: o.Secrets, audit: o.Audit, apps: o.Apps, log: o.Logger, now: o.Now,
		stateTTL: o.StateTTL, sealRef: o.SealKey, prevSealRef: o.PreviousSealKey,
		unmatched: newUnmatchedCallbacks(),
		unrecorded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "consentgate_oauth_callbacks_unrecorded_total",
			Help: "OAuth2 callbacks matching no started authorization that were refused without their own audit record (beyond the audit rate).",
		})}
	b.logins.Store(&map[string]*Login{})
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.now == nil {
		b.now = time.Now
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(b.unrecorded)
	}
	if err := b.SetPublicURL(o.PublicURL); err != nil {
		return nil, fmt.Errorf("oauth.public_url: %w", err)
	}
	return b, nil
}

// SetLogins makes logins the end-user logins of their vendors, replacing those
// before (a reload of the vendor profiles). A flow already started at a vendor
// whose login is gone ends at its callback, refused.
func (b *Broker) SetLogins(logins []*Login) {
	m := make(map[string]*Login, len(logins))
	for _, l := range logins {
		m[l.vendor] = l
	}
	b.logins.Store(&m)
}

// login is vendor's end-user login, nil when it has none.
func (b *Broker) login(vendor string) *Login { return (*b.logins.Load())[vendor] }

// Serves reports whether vendor has an end-user login here.
func (b *Broker) Serves(vendor string) bool { return b.login(vendor) != nil }

// Log keys, as the gateway's canonical line names them.
const (
	logRequestID = "request_id"
	logVendor    = "vendor"
	logConsentID = "consent_id"
	logError     = "error"
)

// Audit detail values of the flow (records of kind consent; the completed
// authorization is recorded by the consent registry's hook).
const (
	ChangeAuthorizationStarted = "authorization_started"
	ChangeAuthorizationFailed  = "authorization_failed"
)

// callbackPath is where vendors send the end user's browser back.
func callbackPath(vendor string) string { return "/oauth/" + vendor + "/callback" }

// SetPublicURL sets the gateway's public URL, the base of every redirect
// URI. `dev` calls it once it knows the port it bound, before serving.
func (b *Broker) SetPublicURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("oauth public URL %q is not an https URL", raw)
	}
	u.Path, u.RawPath, u.RawQuery, u.Fragment = "", "", "", ""
	b.publicURL.Store(u)
	return nil
}

// RedirectURL is the redirect URI to register with vendor:
// <oauth.public_url>/oauth/<vendor>/callback.
func (b *Broker) RedirectURL(vendor string) string {
	u := *b.publicURL.Load()
	u.Path = callbackPath(vendor)
	return u.String()
}

// stateKey is what a state is stored under: its hash, so the file never holds
// the value a browser must present.
func stateKey(state string) []byte {
	sum := sha256.Sum256([]byte("consentgate oauth2 state v1\x00" + state))
	return sum[:]
}
