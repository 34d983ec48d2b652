package proxy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/identity"
	"github.com/consentgate/consentgate/refusal"
)

// OAuth2 authorization-code brokering. An app asks the admin listener for a
// vendor login URL for one of its consents (OAuthStart); the end user logs in at
// the vendor, whose login page sends the browser to the gateway listener's
// /oauth/<vendor>/callback (OAuthCallback); consentgate checks the state, exchanges
// the code with the client secret the app never holds, stores the tokens sealed
// under the consent and sends the browser back to the app. Gateway calls under
// that consent then carry the end user's bearer token, refreshed as needed.

// Audit detail values of the flow (records of kind consent; the completed
// authorization is recorded by the consent registry's hook).
const (
	changeAuthorizationStarted = "authorization_started"
	changeAuthorizationFailed  = "authorization_failed"
)

// callbackPath is where vendors send the end user's browser back.
func callbackPath(vendor string) string { return "/oauth/" + vendor + "/callback" }

// SetOAuthPublicURL sets the gateway's public URL, the base of every redirect
// URI. `dev` calls it once it knows the port it bound, before serving.
func (g *Gateway) SetOAuthPublicURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("oauth public URL %q is not an https URL", raw)
	}
	u.Path, u.RawPath, u.RawQuery, u.Fragment = "", "", "", ""
	g.publicURL.Store(u)
	return nil
}

// RedirectURL is the redirect URI to register with vendor:
// <oauth.public_url>/oauth/<vendor>/callback.
func (g *Gateway) RedirectURL(vendor string) string {
	u := *g.publicURL.Load()
	u.Path = callbackPath(vendor)
	return u.String()
}

// stateKey is what a state is stored under: its hash, so the file never holds
// the value a browser must present.
func stateKey(state string) []byte {
	sum := sha256.Sum256([]byte("consentgate oauth2 state v1\x00" + state))
	return sum[:]
}

// startAnswer is what OAuthStart answers: where to send the end user.
type startAnswer struct {
	Vendor       string    `json:"vendor"`
	ConsentID    string    `json:"consent_id"`
	AuthorizeURL string    `json:"authorize_url"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// OAuthStart serves GET /v1/oauth/{vendor}/start?consent_id=…&return_to=… on the
// admin listener, for the app role only and for the app's own active consent
// naming the vendor. It answers the vendor login URL with a fresh single-use
// state bound to the consent (and a PKCE challenge where the profile asks for
// one). The start is recorded in the audit log before it is answered.
func (g *Gateway) OAuthStart(w http.ResponseWriter, r *http.Request) {
	id, ref := identity.Require(r.Context(), identity.RoleApp)
	if ref != nil {
		ref.Write(w, "")
		return
	}
	vendorID := r.PathValue("vendor")
	v := g.vendors[vendorID]
	if v == nil || v.authCode == nil {
		refusal.New(http.StatusNotFound, refusal.NoRoute, "Not found", fmt.Sprintf("vendor %q has no OAuth2 authorization-code login", vendorID)).Write(w, "")
		return
	}
	q := r.URL.Query()
	consentID, returnTo := q.Get("consent_id"), q.Get("return_to")
	if !consentIDRE.MatchString(consentID) {
		refusal.New(http.StatusBadRequest, refusal.BadRequest, "Bad request", "consent_id is not a consent id").Write(w, "")
		return
	}
	if !returnAllowed(g.policy.ReturnTo(id.Name), returnTo) {
		refusal.New(http.StatusBadRequest, refusal.ReturnToNotAllowed, "return_to not allowed", fmt.Sprintf("return_to is not among the policy data's apps.%s.oauth_return_to URLs", id.Name)).Write(w, "")
		return
	}
	ctx := r.Context()
	key, err := g.sealKey(ctx)
	if err != nil {
		g.log.Error("token seal key unavailable: refusing to start an authorization", logVendor, vendorID, logError, err.Error())
		refusal.New(http.StatusServiceUnavailable, refusal.Credentials, "Key unavailable", "no authorization was started").Write(w, "")
		return
	}
	conf, _, err := v.authCode.config(ctx, g.secrets, g.RedirectURL(vendorID))
	if err != nil {
		g.log.Error("vendor client id unavailable: refusing to start an authorization", logVendor, vendorID, logError, err.Error())
		refusal.New(http.StatusServiceUnavailable, refusal.Credentials, "Vendor credentials unavailable", "no authorization was started").Write(w, "")
		return
	}
	state := rand.Text() + rand.Text() // 2 × 128 bits, base32
	skey := stateKey(state)
	p := consent.Pending{ConsentID: consentID, App: id.Name, Vendor: vendorID, ReturnTo: returnTo,
		ExpiresAt: g.now().Add(g.cfg.OAuth.StateTTL.Duration).UTC()}
	var opts []oauth2.AuthCodeOption
	if v.authCode.cfg.PKCE {
		verifier := oauth2.GenerateVerifier()
		if p.Verifier, err = key.Seal([]byte(verifier), verifierAAD(skey)); err != nil {
			refusal.New(http.StatusInternalServerError, refusal.Credentials, "Internal error", "no authorization was started").Write(w, "")
			return
		}
		opts = append(opts, oauth2.S256ChallengeOption(verifier))
	}
	switch err := g.grants.BeginAuthorization(ctx, skey, p); {
	case errors.Is(err, consent.ErrNotFound):
		// Another app's consent reads exactly like one that does not exist.
		refusal.New(http.StatusForbidden, refusal.ConsentNotUsable, "Consent not usable", fmt.Sprintf("consent %s is not one of app %s's consents", consentID, id.Name)).Write(w, "")
		return
	case errors.Is(err, consent.ErrNotActive), errors.Is(err, consent.ErrInvalid):
		refusal.New(http.StatusForbidden, refusal.ConsentNotUsable, "Consent not usable", err.Error()).Write(w, "")
		return
	case err != nil:
		g.log.Error("consent registry unavailable: refusing to start an authorization", logVendor, vendorID, logError, err.Error())
		refusal.New(http.StatusServiceUnavailable, refusal.ConsentStore, "Consent registry unavailable", "no authorization was started").Write(w, "")
		return
	}
	if _, err := g.auditor.Append(context.WithoutCancel(ctx), audit.Record{Kind: audit.KindConsent, App: id.Name, Vendor: vendorID,
		ConsentID: consentID, Detail: map[string]string{"change": changeAuthorizationStarted}}); err != nil {
		// Unrecorded, it does not happen: nobody learns the state, and it is withdrawn.
		g.grants.TakeAuthorization(context.WithoutCancel(ctx), skey)
		g.log.Error("AUDIT LOG UNWRITABLE: authorization not started", logVendor, vendorID, logError, err.Error())
		refusal.New(http.StatusServiceUnavailable, refusal.AuditUnavailable, "Audit log unavailable", "no authorization was started").Write(w, "")
		return
	}
	body, _ := json.Marshal(startAnswer{Vendor: vendorID, ConsentID: consentID, AuthorizeURL: conf.AuthCodeURL(state, opts...), ExpiresAt: p.ExpiresAt})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.Write(append(body, '\n'))
}

// callbackFailure is why a callback was refused: a status, a fixed reason for
// the audit record and the log, and what the end user is told.
type callbackFailure struct {
	status int
	reason string
	detail string
}

// oauthErrorCodes are the error codes of RFC 6749 §4.1.2.1; anything else a
// vendor sends is recorded as "other", so the audit log never holds its text.
var oauthErrorCodes = []string{"invalid_request", "unauthorized_client", "access_denied", "unsupported_response_type",
	"invalid_scope", "server_error", "temporarily_unavailable"}

// OAuthCallback serves GET /oauth/{vendor}/callback on the gateway listener: the
// end user's browser, sent back by the vendor's login page, with no client
// certificate. The state must be one consentgate issued for this vendor, unused
// and unexpired; the code is exchanged through the vendor's client with the
// client secret and the PKCE verifier; the tokens are stored sealed with the
// consent's evidence, and the browser is sent to the app's return_to (303).
// Every refusal is recorded and answered with a page (or problem+json for
// clients that do not ask for HTML) that names no token and no code.
func (g *Gateway) OAuthCallback(w http.ResponseWriter, r *http.Request) {
	ex, w := g.begin(w, r)
	ex.role, ex.pathTemplate = "end-user", "/oauth/{vendor}/callback"
	defer g.logExchange(ex)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	vendorID, _ := oauthCallbackVendor(r.URL.EscapedPath())
	var p *consent.Pending
	fail := func(f callbackFailure) {
		ex.status, ex.err = f.status, f.reason
		rec := audit.Record{Kind: audit.KindConsent, RequestID: ex.requestID, Vendor: vendorID, Status: f.status, Error: f.reason,
			Detail: map[string]string{"change": changeAuthorizationFailed}}
		if p != nil {
			rec.App, rec.ConsentID = p.App, p.ConsentID
		} else if !g.unmatched.admit(rec.Detail) {
			g.metrics.callbacksUnrecorded.Inc()
			if g.unmatched.warnDue(time.Now()) {
				g.log.Warn("unmatched OAuth2 callbacks beyond the audit rate: counted, not each recorded",
					"rate_per_second", unmatchedRate, logRequestID, ex.requestID)
			}
			writeCallbackFailure(w, r, f, ex.requestID)
			return
		}
		if _, err := g.auditor.Append(context.WithoutCancel(r.Context()), rec); err != nil {
			g.log.Error("AUDIT LOG UNWRITABLE: refused authorization not recorded", logRequestID, ex.requestID, logError, err.Error())
			f = callbackFailure{http.StatusServiceUnavailable, "audit log unavailable", "consentgate could not record the authorization; please try again later"}
			ex.outcome, ex.err = outcomeFailed, f.reason
		}
		writeCallbackFailure(w, r, f, ex.requestID)
	}
	v := g.vendors[vendorID]
	if r.Method != http.MethodGet || v == nil || v.authCode == nil {
		vendorID = "" // not a label: whatever the path says
		fail(callbackFailure{http.StatusNotFound, "no such callback", "This address is not an authorization callback."})
		return
	}
	ex.vendor, ex.op = vendorID, vendorID+".oauthCallback"
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		fail(callbackFailure{http.StatusBadRequest, "state missing", "The bank's answer carries no state: the authorization cannot be matched to a request."})
		return
	}
	skey := stateKey(state)
	taken, err := g.grants.TakeAuthorization(r.Context(), skey)
	if err == nil || errors.Is(err, consent.ErrStateExpired) {
		// A real authorization, expired or not: its refusal names it, and is
		// recorded whatever the rate of forged ones.
		p = taken
	}
	switch {
	case errors.Is(err, consent.ErrUnknownState):
		fail(callbackFailure{http.StatusBadRequest, "state unknown or already used", "This authorization link is unknown or has been used already. Start again from the application."})
		return
	case errors.Is(err, consent.ErrStateExpired):
		fail(callbackFailure{http.StatusBadRequest, "state expired", "This authorization took too long and has expired. Start again from the application."})
		return
	case err != nil:
		ex.outcome = outcomeFailed
		g.log.Error("consent registry unavailable during an authorization callback", logRequestID, ex.requestID, logError, err.Error())
		fail(callbackFailure{http.StatusServiceUnavailable, "consent registry unavailable", "consentgate could not complete the authorization; please try again later."})
		return
	}
	ex.app, ex.consentID = p.App, p.ConsentID
	if p.Vendor != vendorID {
		fail(callbackFailure{http.StatusBadRequest, "state issued for another vendor", "This authorization was started for another bank."})
		return
	}
	if code := q.Get("error"); code != "" {
		if !slices.Contains(oauthErrorCodes, code) {
			code = "other"
		}
		status := http.StatusBadRequest
		if code == "access_denied" {
			status = http.StatusForbidden
		}
		fail(callbackFailure{status, "vendor answered " + code, "The bank did not grant the authorization (" + code + "). Nothing was shared."})
		return
	}
	code := q.Get("code")
	if code == "" {
		fail(callbackFailure{http.StatusBadRequest, "code missing", "The bank's answer carries no authorization code."})
		return
	}
	key, err := g.sealKey(r.Context())
	if err != nil {
		ex.outcome = outcomeFailed
		g.log.Error("token seal key unavailable during an authorization callback", logRequestID, ex.requestID, logError, err.Error())
		fail(callbackFailure{http.StatusServiceUnavailable, "token seal key unavailable", "consentgate could not complete the authorization; please try again later."})
		return
	}
	var opts []oauth2.AuthCodeOption
	if p.Verifier != nil {
		verifier, err := key.Open(p.Verifier, verifierAAD(skey))
		if err != nil {
			// Started before a rotation of keys.token_seal.
			if v, ok := g.openWithPrevious(r.Context(), p.Verifier, verifierAAD(skey)); ok {
				verifier, err = v, nil
			}
		}
		if err != nil {
			fail(callbackFailure{http.StatusBadRequest, "PKCE verifier does not open", "This authorization cannot be completed. Start again from the application."})
			return
		}
		opts = append(opts, oauth2.VerifierOption(string(verifier)))
	}
	conf, _, err := v.authCode.config(r.Context(), g.secrets, g.RedirectURL(vendorID))
	if err != nil {
		ex.outcome = outcomeFailed
		g.log.Error("vendor client secret unavailable during an authorization callback", logRequestID, ex.requestID, logVendor, vendorID, logError, err.Error())
		fail(callbackFailure{http.StatusServiceUnavailable, "vendor credentials unavailable", "consentgate could not complete the authorization; please try again later."})
		return
	}
	xctx, cancel := v.authCode.exchangeContext(r.Context())
	defer cancel()
	tok, err := conf.Exchange(xctx, code, opts...)
	if err != nil {
		ex.outcome = outcomeFailed
		reason := "code exchange failed: " + safeTokenError(err).Error()
		g.log.Warn("vendor refused the authorization code", logRequestID, ex.requestID, logVendor, vendorID, logError, reason)
		fail(callbackFailure{http.StatusBadGateway, reason, "The bank did not complete the authorization. Start again from the application."})
		return
	}
	now := g.now()
	scopes := conf.Scopes
	if s, ok := tok.Extra("scope").(string); ok && strings.TrimSpace(s) != "" {
		scopes = strings.Fields(s)
	}
	sealed, err := g.sealTokens(key, p.ConsentID, vendorID, &storedTokens{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken,
		TokenType: tok.TokenType, Expiry: tok.Expiry, IssuedAt: now})
	if err != nil {
		fail(callbackFailure{http.StatusInternalServerError, "sealing tokens failed", "consentgate could not complete the authorization."})
		return
	}
	// The code is spent: keep its tokens even if the browser has gone.
	err = g.grants.CompleteAuthorization(context.WithoutCancel(r.Context()), p.App, p.ConsentID,
		consent.Authorization{Vendor: vendorID, AuthorizedAt: now, Scopes: scopes}, sealed)
	switch {
	case errors.Is(err, consent.ErrHook):
		ex.outcome, ex.status, ex.err = outcomeFailed, http.StatusServiceUnavailable, "audit log unavailable"
		writeCallbackFailure(w, r, callbackFailure{http.StatusServiceUnavailable, ex.err, "consentgate could not record the authorization; please try again later."}, ex.requestID)
		return
	case errors.Is(err, consent.ErrNotFound), errors.Is(err, consent.ErrNotActive), errors.Is(err, consent.ErrInvalid):
		fail(callbackFailure{http.StatusForbidden, "consent no longer usable", "The consent this authorization was for has been withdrawn or has expired. Nothing was kept."})
		return
	case err != nil:
		ex.outcome = outcomeFailed
		g.log.Error("storing vendor tokens failed", logRequestID, ex.requestID, logError, err.Error())
		fail(callbackFailure{http.StatusServiceUnavailable, "consent registry unavailable", "consentgate could not complete the authorization; please try again later."})
		return
	}
	ex.outcome, ex.status = outcomeForwarded, http.StatusSeeOther
	http.Redirect(w, r, p.ReturnTo, http.StatusSeeOther)
}

// oauthCallbackVendor reads the vendor of /oauth/<vendor>/callback.
func oauthCallbackVendor(escapedPath string) (string, bool) {
	rest, ok := strings.CutPrefix(escapedPath, "/oauth/")
	if !ok {
		return "", false
	}
	vendor, tail, ok := strings.Cut(rest, "/")
	return vendor, ok && tail == "callback" && vendor != "" && !strings.ContainsAny(vendor, "%.")
}

var callbackPage = template.Must(template.New("callback").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body><h1>{{.Title}}</h1><p>{{.Detail}}</p><p><small>Reference: {{.RequestID}}</small></p></body></html>
`))

// writeCallbackFailure answers a refused callback: a short page for a browser,
// problem+json for anything else.
func writeCallbackFailure(w http.ResponseWriter, r *http.Request, f callbackFailure, requestID string) {
	title := "Authorization not completed"
	if !strings.Contains(r.Header.Get("Accept"), "text/html") {
		refusal.New(f.status, refusal.AuthorizationFailure, title, f.detail).Write(w, requestID)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'")
	w.WriteHeader(f.status)
	callbackPage.Execute(w, struct{ Title, Detail, RequestID string }{title, f.detail, requestID})
}
