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
	id, ref := identity.Require(r.Context(), identity.RoleApp)
	if ref != nil {
		ref.Write(w, "")
		return
	}
	vendorID := r.PathValue("vendor")
	l := b.logins[vendorID]
	if l == nil {
		refusal.New(http.StatusNotFound, refusal.NoRoute, "Not found", fmt.Sprintf("vendor %q has no OAuth2 authorization-code login", vendorID)).Write(w, "")
		return
	}
	q := r.URL.Query()
	consentID, returnTo := q.Get("consent_id"), q.Get("return_to")
	if !consent.ValidID(consentID) {
		refusal.New(http.StatusBadRequest, refusal.BadRequest, "Bad request", "consent_id is not a consent id").Write(w, "")
		return
	}
	if !returnAllowed(b.apps.ReturnTo(id.Name), returnTo) {
		refusal.New(http.StatusBadRequest, refusal.ReturnToNotAllowed, "return_to not allowed", fmt.Sprintf("return_to is not among the policy data's apps.%s.oauth_return_to URLs", id.Name)).Write(w, "")
		return
	}
	ctx := r.Context()
	key, err := b.sealKey(ctx)
	if err != nil {
		b.log.Error("token seal key unavailable: refusing to start an authorization", logVendor, vendorID, logError, err.Error())
		refusal.New(http.StatusServiceUnavailable, refusal.Credentials, "Key unavailable", "no authorization was started").Write(w, "")
		return
	}
	conf, _, err := l.config(ctx, b.secrets, b.RedirectURL(vendorID))
	if err != nil {
		b.log.Error("vendor client id unavailable: refusing to start an authorization", logVendor, vendorID, logError, err.Error())
		refusal.New(http.StatusServiceUnavailable, refusal.Credentials, "Vendor credentials unavailable", "no authorization was started").Write(w, "")
		return
	}
	state := rand.Text() + rand.Text() // 2 × 128 bits, base32
	skey := stateKey(state)
	p := consent.Pending{ConsentID: consentID, App: id.Name, Vendor: vendorID, ReturnTo: returnTo,
		ExpiresAt: b.now().Add(b.stateTTL).UTC()}
	var opts []oauth2.AuthCodeOption
	if l.cfg.PKCE {
		verifier := oauth2.GenerateVerifier()
		if p.Verifier, err = key.Seal([]byte(verifier), verifierAAD(skey)); err != nil {
			refusal.New(http.StatusInternalServerError, refusal.Internal, "Internal error", "no authorization was started").Write(w, "")
			return
		}
		opts = append(opts, oauth2.S256ChallengeOption(verifier))
	}
	switch err := b.grants.BeginAuthorization(ctx, skey, p); {
	case errors.Is(err, consent.ErrNotFound):
		// Another app's consent reads exactly like one that does not exist.
		refusal.New(http.StatusForbidden, refusal.ConsentNotUsable, "Consent not usable", fmt.Sprintf("consent %s is not one of app %s's consents", consentID, id.Name)).Write(w, "")
		return
	case errors.Is(err, consent.ErrNotActive), errors.Is(err, consent.ErrInvalid):
		refusal.New(http.StatusForbidden, refusal.ConsentNotUsable, "Consent not usable", err.Error()).Write(w, "")
		return
	case err != nil:
		b.log.Error("consent registry unavailable: refusing to start an authorization", logVendor, vendorID, logError, err.Error())
		refusal.New(http.StatusServiceUnavailable, refusal.ConsentStore, "Consent registry unavailable", "no authorization was started").Write(w, "")
		return
	}
	if _, err := b.audit.Append(context.WithoutCancel(ctx), audit.Record{Kind: audit.KindConsent, App: id.Name, Vendor: vendorID,
		ConsentID: consentID, Detail: map[string]string{"change": ChangeAuthorizationStarted}}); err != nil {
		// Unrecorded, it does not happen: nobody learns the state, and it is withdrawn.
		b.grants.TakeAuthorization(context.WithoutCancel(ctx), skey)
		b.log.Error("AUDIT LOG UNWRITABLE: authorization not started", logVendor, vendorID, logError, err.Error())
		refusal.New(http.StatusServiceUnavailable, refusal.AuditUnavailable, "Audit log unavailable", "no authorization was started").Write(w, "")
		return
	}
	body, _ := json.Marshal(startAnswer{Vendor: vendorID, ConsentID: consentID, AuthorizeURL: conf.AuthCodeURL(state, opts...), ExpiresAt: p.ExpiresAt})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.Write(append(body, '\n'))
}
