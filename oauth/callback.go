package oauth

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/refusal"
	"golang.org/x/oauth2"
)

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

// Outcome is what a callback came to, for the gateway's log line: the
// authorization's app, consent and vendor once known, and the answer.
type Outcome struct {
	App, ConsentID, Vendor, Operation string
	Status                            int
	Err                               string
	// Failed marks consentgate's own failure rather than a refusal; Done an
	// authorization completed, the browser sent back to the app.
	Failed, Done bool
}

// Callback serves GET /oauth/{vendor}/callback on the callbacks listener: the
// end user's browser, sent back by the vendor's login page, with no client
// certificate. The state must be one consentgate issued for this vendor, unused
// and unexpired; the code is exchanged through the vendor's client with the
// client secret and the PKCE verifier; the tokens are stored sealed with the
// consent's evidence, and the browser is sent to the app's return_to (303).
// Every refusal is recorded and answered with a page (or problem+json for
// clients that do not ask for HTML) that names no token and no code.
func (b *Broker) Callback(w http.ResponseWriter, r *http.Request, requestID string) Outcome {
	ex := &Outcome{}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	vendorID, _ := CallbackVendor(r.URL.EscapedPath())
	var p *consent.Pending
	fail := func(f callbackFailure) {
		ex.Status, ex.Err = f.status, f.reason
		rec := audit.Record{Kind: audit.KindConsent, RequestID: requestID, Vendor: vendorID, Status: f.status, Error: f.reason,
			Detail: map[string]string{"change": ChangeAuthorizationFailed}}
		if p != nil {
			rec.App, rec.ConsentID = p.App, p.ConsentID
		} else if !b.unmatched.admit(rec.Detail) {
			b.unrecorded.Inc()
			if b.unmatched.warnDue(time.Now()) {
				b.log.Warn("unmatched OAuth2 callbacks beyond the audit rate: counted, not each recorded",
					"rate_per_second", UnmatchedRate, logRequestID, requestID)
			}
			writeCallbackFailure(w, r, f, requestID)
			return
		}
		if _, err := b.audit.Append(context.WithoutCancel(r.Context()), rec); err != nil {
			b.log.Error("AUDIT LOG UNWRITABLE: refused authorization not recorded", logRequestID, requestID, logError, err.Error())
			f = callbackFailure{http.StatusServiceUnavailable, "audit log unavailable", "consentgate could not record the authorization; please try again later"}
			ex.Failed, ex.Status, ex.Err = true, f.status, f.reason
		}
		writeCallbackFailure(w, r, f, requestID)
	}
	l := b.logins[vendorID]
	if r.Method != http.MethodGet || l == nil {
		vendorID = "" // not a label: whatever the path says
		fail(callbackFailure{http.StatusNotFound, "no such callback", "This address is not an authorization callback."})
		return *ex
	}
	ex.Vendor, ex.Operation = vendorID, vendorID+".oauthCallback"
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		fail(callbackFailure{http.StatusBadRequest, "state missing", "The bank's answer carries no state: the authorization cannot be matched to a request."})
		return *ex
	}
	skey := stateKey(state)
	taken, err := b.grants.TakeAuthorization(r.Context(), skey)
	if err == nil || errors.Is(err, consent.ErrStateExpired) {
		// A real authorization, expired or not: its refusal names it, and is
		// recorded whatever the rate of forged ones.
		p = taken
	}
	switch {
	case errors.Is(err, consent.ErrUnknownState):
		fail(callbackFailure{http.StatusBadRequest, "state unknown or already used", "This authorization link is unknown or has been used already. Start again from the application."})
		return *ex
	case errors.Is(err, consent.ErrStateExpired):
		fail(callbackFailure{http.StatusBadRequest, "state expired", "This authorization took too long and has expired. Start again from the application."})
		return *ex
	case err != nil:
		ex.Failed = true
		b.log.Error("consent registry unavailable during an authorization callback", logRequestID, requestID, logError, err.Error())
		fail(callbackFailure{http.StatusServiceUnavailable, "consent registry unavailable", "consentgate could not complete the authorization; please try again later."})
		return *ex
	}
	ex.App, ex.ConsentID = p.App, p.ConsentID
	if p.Vendor != vendorID {
		fail(callbackFailure{http.StatusBadRequest, "state issued for another vendor", "This authorization was started for another bank."})
		return *ex
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
		return *ex
	}
	code := q.Get("code")
	if code == "" {
		fail(callbackFailure{http.StatusBadRequest, "code missing", "The bank's answer carries no authorization code."})
		return *ex
	}
	key, err := b.sealKey(r.Context())
	if err != nil {
		ex.Failed = true
		b.log.Error("token seal key unavailable during an authorization callback", logRequestID, requestID, logError, err.Error())
		fail(callbackFailure{http.StatusServiceUnavailable, "token seal key unavailable", "consentgate could not complete the authorization; please try again later."})
		return *ex
	}
	var opts []oauth2.AuthCodeOption
	if p.Verifier != nil {
		verifier, err := key.Open(p.Verifier, verifierAAD(skey))
		if err != nil {
			// Started before a rotation of keys.token_seal.
			if v, ok := b.openWithPrevious(r.Context(), p.Verifier, verifierAAD(skey)); ok {
				verifier, err = v, nil
			}
		}
		if err != nil {
			fail(callbackFailure{http.StatusBadRequest, "PKCE verifier does not open", "This authorization cannot be completed. Start again from the application."})
			return *ex
		}
		opts = append(opts, oauth2.VerifierOption(string(verifier)))
	}
	conf, _, err := l.config(r.Context(), b.secrets, b.RedirectURL(vendorID))
	if err != nil {
		ex.Failed = true
		b.log.Error("vendor client secret unavailable during an authorization callback", logRequestID, requestID, logVendor, vendorID, logError, err.Error())
		fail(callbackFailure{http.StatusServiceUnavailable, "vendor credentials unavailable", "consentgate could not complete the authorization; please try again later."})
		return *ex
	}
	xctx, cancel := l.exchangeContext(r.Context())
	defer cancel()
	tok, err := conf.Exchange(xctx, code, opts...)
	if err != nil {
		ex.Failed = true
		reason := "code exchange failed: " + SafeTokenError(err).Error()
		b.log.Warn("vendor refused the authorization code", logRequestID, requestID, logVendor, vendorID, logError, reason)
		fail(callbackFailure{http.StatusBadGateway, reason, "The bank did not complete the authorization. Start again from the application."})
		return *ex
	}
	now := b.now()
	scopes := conf.Scopes
	if s, ok := tok.Extra("scope").(string); ok && strings.TrimSpace(s) != "" {
		scopes = strings.Fields(s)
	}
	sealed, err := b.sealTokens(key, p.ConsentID, vendorID, &storedTokens{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken,
		TokenType: tok.TokenType, Expiry: tok.Expiry, IssuedAt: now})
	if err != nil {
		fail(callbackFailure{http.StatusInternalServerError, "sealing tokens failed", "consentgate could not complete the authorization."})
		return *ex
	}
	// The code is spent: keep its tokens even if the browser has gone.
	err = b.grants.CompleteAuthorization(context.WithoutCancel(r.Context()), p.App, p.ConsentID,
		consent.Authorization{Vendor: vendorID, AuthorizedAt: now, Scopes: scopes}, sealed)
	switch {
	case errors.Is(err, consent.ErrHook):
		ex.Failed, ex.Status, ex.Err = true, http.StatusServiceUnavailable, "audit log unavailable"
		writeCallbackFailure(w, r, callbackFailure{http.StatusServiceUnavailable, ex.Err, "consentgate could not record the authorization; please try again later."}, requestID)
		return *ex
	case errors.Is(err, consent.ErrNotFound), errors.Is(err, consent.ErrNotActive), errors.Is(err, consent.ErrInvalid):
		fail(callbackFailure{http.StatusForbidden, "consent no longer usable", "The consent this authorization was for has been withdrawn or has expired. Nothing was kept."})
		return *ex
	case err != nil:
		ex.Failed = true
		b.log.Error("storing vendor tokens failed", logRequestID, requestID, logError, err.Error())
		fail(callbackFailure{http.StatusServiceUnavailable, "consent registry unavailable", "consentgate could not complete the authorization; please try again later."})
		return *ex
	}
	ex.Done, ex.Status = true, http.StatusSeeOther
	http.Redirect(w, r, p.ReturnTo, http.StatusSeeOther)
	return *ex
}

// CallbackVendor reads the vendor of /oauth/<vendor>/callback.
func CallbackVendor(escapedPath string) (string, bool) {
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
