package oauth

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/identity"
	"github.com/consentgate/consentgate/refusal"
	"golang.org/x/oauth2"
)

// startAnswer is what Start answers: where to send the end user.
type startAnswer struct {
	Vendor       string    `json:"vendor"`
	ConsentID    string    `json:"consent_id"`
	AuthorizeURL string    `json:"authorize_url"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// Start serves GET /v1/oauth/{vendor}/start?consent_id=…&return_to=… on the
// admin listener, for the app role only and for the app's own active consent
// naming the vendor. It answers the vendor login URL with a fresh single-use
// state bound to the consent (and a PKCE challenge where the profile asks for
// one). The start is recorded in the audit log before it is answered.
func (b *Broker) Start(w http.ResponseWriter, r *http.Request) {
	st, ref := b.checkStart(r)
	if ref == nil {
		ref = b.begin(r.Context(), st)
	}
	if ref != nil {
		ref.Write(w, "")
		return
	}
	body, _ := json.Marshal(startAnswer{Vendor: st.vendor, ConsentID: st.pending.ConsentID, AuthorizeURL: st.authorizeURL, ExpiresAt: st.pending.ExpiresAt})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.Write(append(body, '\n'))
}

// start is one authorization being started.
type start struct {
	vendor       string
	login        *Login
	pending      consent.Pending
	authorizeURL string
}

// checkStart reads the request: the app's own certificate, a vendor with a
// login, a consent id and a return URL the policy data allows the app.
func (b *Broker) checkStart(r *http.Request) (*start, *refusal.Refusal) {
	id, ref := identity.Require(r.Context(), identity.RoleApp)
	if ref != nil {
		return nil, ref
	}
	vendorID := r.PathValue("vendor")
	l := b.login(vendorID)
	if l == nil {
		return nil, refusal.New(http.StatusNotFound, refusal.NoRoute, "Not found", fmt.Sprintf("vendor %q has no OAuth2 authorization-code login", vendorID))
	}
	q := r.URL.Query()
	consentID, returnTo := q.Get("consent_id"), q.Get("return_to")
	if !consent.ValidID(consentID) {
		return nil, refusal.New(http.StatusBadRequest, refusal.BadRequest, "Bad request", "consent_id is not a consent id")
	}
	if !returnAllowed(b.apps.ReturnTo(id.Name), returnTo) {
		return nil, refusal.New(http.StatusBadRequest, refusal.ReturnToNotAllowed, "return_to not allowed", fmt.Sprintf("return_to is not among the policy data's apps.%s.oauth_return_to URLs", id.Name))
	}
	return &start{vendor: vendorID, login: l, pending: consent.Pending{ConsentID: consentID, App: id.Name, Vendor: vendorID,
		ReturnTo: returnTo, ExpiresAt: b.now().Add(b.stateTTL).UTC()}}, nil
}

// begin stores the pending authorization under a fresh single-use state (with
// a sealed PKCE verifier where the profile asks for one) and records the start
// before anyone learns the state.
func (b *Broker) begin(ctx context.Context, st *start) *refusal.Refusal {
	notStarted := func(status int, kind refusal.Kind, title string) *refusal.Refusal {
		return refusal.New(status, kind, title, "no authorization was started")
	}
	key, err := b.sealKey(ctx)
	if err != nil {
		b.log.Error("token seal key unavailable: refusing to start an authorization", logVendor, st.vendor, logError, err.Error())
		return notStarted(http.StatusServiceUnavailable, refusal.Credentials, "Key unavailable")
	}
	conf, _, err := st.login.config(ctx, b.secrets, b.RedirectURL(st.vendor))
	if err != nil {
		b.log.Error("vendor client id unavailable: refusing to start an authorization", logVendor, st.vendor, logError, err.Error())
		return notStarted(http.StatusServiceUnavailable, refusal.Credentials, "Vendor credentials unavailable")
	}
	state := rand.Text() + rand.Text() // 2 × 128 bits, base32
	skey := stateKey(state)
	var opts []oauth2.AuthCodeOption
	if st.login.cfg.PKCE {
		verifier := oauth2.GenerateVerifier()
		if st.pending.Verifier, err = key.Seal([]byte(verifier), verifierAAD(skey)); err != nil {
			return notStarted(http.StatusInternalServerError, refusal.Internal, "Internal error")
		}
		opts = append(opts, oauth2.S256ChallengeOption(verifier))
	}
	p := st.pending
	switch err := b.grants.BeginAuthorization(ctx, skey, p); {
	case errors.Is(err, consent.ErrNotFound):
		// Another app's consent reads exactly like one that does not exist.
		return refusal.New(http.StatusForbidden, refusal.ConsentNotUsable, "Consent not usable", fmt.Sprintf("consent %s is not one of app %s's consents", p.ConsentID, p.App))
	case errors.Is(err, consent.ErrNotActive), errors.Is(err, consent.ErrInvalid):
		return refusal.New(http.StatusForbidden, refusal.ConsentNotUsable, "Consent not usable", err.Error())
	case err != nil:
		b.log.Error("consent registry unavailable: refusing to start an authorization", logVendor, st.vendor, logError, err.Error())
		return notStarted(http.StatusServiceUnavailable, refusal.ConsentStore, "Consent registry unavailable")
	}
	if _, err := b.audit.Append(context.WithoutCancel(ctx), audit.Record{Kind: audit.KindConsent, App: p.App, Vendor: st.vendor,
		ConsentID: p.ConsentID, Detail: map[string]string{"change": ChangeAuthorizationStarted}}); err != nil {
		// Unrecorded, it does not happen: nobody learns the state, and it is withdrawn.
		b.grants.TakeAuthorization(context.WithoutCancel(ctx), skey)
		b.log.Error("AUDIT LOG UNWRITABLE: authorization not started", logVendor, st.vendor, logError, err.Error())
		return notStarted(http.StatusServiceUnavailable, refusal.AuditUnavailable, "Audit log unavailable")
	}
	st.authorizeURL = conf.AuthCodeURL(state, opts...)
	return nil
}
