package oauth

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"slices"
	"strings"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/refusal"
	"github.com/consentgate/consentgate/secrets"
	"golang.org/x/oauth2"
)

// callbackFailure is why a callback was refused: a status, a fixed reason for
// the audit record and the log, and what the end user is told.
type callbackFailure struct {
	status int
	reason string
	detail string
	// failed: consentgate's own failure; unrecorded: its record is what failed.
	failed, unrecorded bool
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
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	vendorID, _ := CallbackVendor(r.URL.EscapedPath())
	c := &callback{b: b, r: r, requestID: requestID, vendor: vendorID, login: b.login(vendorID)}
	f := c.match()
	if f == nil {
		f = c.read()
	}
	if f == nil {
		f = c.exchange()
	}
	if f == nil {
		f = c.store()
	}
	if f != nil {
		c.refuse(w, *f)
		return c.out
	}
	c.out.Done, c.out.Status = true, http.StatusSeeOther
	http.Redirect(w, r, c.pending.ReturnTo, http.StatusSeeOther)
	return c.out
}

// callback is one browser's return, on its way through the steps.
type callback struct {
	b         *Broker
	r         *http.Request
	requestID string
	vendor    string
	login     *Login
	out       Outcome

	pending  *consent.Pending // match: the authorization the state names
	stateKey []byte
	code     string           // read
	key      *secrets.SealKey // exchange
	conf     *oauth2.Config
	token    *oauth2.Token
}

// failed is a refusal that is consentgate's own failure.
func failed(f callbackFailure) *callbackFailure { f.failed = true; return &f }

// match finds the started authorization the state names, for this vendor.
func (c *callback) match() *callbackFailure {
	if c.r.Method != http.MethodGet || c.login == nil {
		c.vendor = "" // not a label: whatever the path says
		return &callbackFailure{status: http.StatusNotFound, reason: "no such callback", detail: "This address is not an authorization callback."}
	}
	c.out.Vendor, c.out.Operation = c.vendor, c.vendor+".oauthCallback"
	state := c.r.URL.Query().Get("state")
	if state == "" {
		return &callbackFailure{status: http.StatusBadRequest, reason: "state missing", detail: "The bank's answer carries no state: the authorization cannot be matched to a request."}
	}
	c.stateKey = stateKey(state)
	p, err := c.b.grants.TakeAuthorization(c.r.Context(), c.stateKey)
	if err == nil || errors.Is(err, consent.ErrStateExpired) {
		// A real authorization, expired or not: its refusal names it, and is
		// recorded whatever the rate of forged ones.
		c.pending = p
	}
	switch {
	case errors.Is(err, consent.ErrUnknownState):
		return &callbackFailure{status: http.StatusBadRequest, reason: "state unknown or already used", detail: "This authorization link is unknown or has been used already. Start again from the application."}
	case errors.Is(err, consent.ErrStateExpired):
		return &callbackFailure{status: http.StatusBadRequest, reason: "state expired", detail: "This authorization took too long and has expired. Start again from the application."}
	case err != nil:
		c.b.log.Error("consent registry unavailable during an authorization callback", logRequestID, c.requestID, logError, err.Error())
		return failed(callbackFailure{status: http.StatusServiceUnavailable, reason: "consent registry unavailable", detail: "consentgate could not complete the authorization; please try again later."})
	}
	c.out.App, c.out.ConsentID = p.App, p.ConsentID
	if p.Vendor != c.vendor {
		return &callbackFailure{status: http.StatusBadRequest, reason: "state issued for another vendor", detail: "This authorization was started for another bank."}
	}
	return nil
}

// read takes the vendor's answer: a code, or an error the end user chose.
func (c *callback) read() *callbackFailure {
	q := c.r.URL.Query()
	if code := q.Get("error"); code != "" {
		if !slices.Contains(oauthErrorCodes, code) {
			code = "other"
		}
		status := http.StatusBadRequest
		if code == "access_denied" {
			status = http.StatusForbidden
		}
		return &callbackFailure{status: status, reason: "vendor answered " + code, detail: "The bank did not grant the authorization (" + code + "). Nothing was shared."}
	}
	if c.code = q.Get("code"); c.code == "" {
		return &callbackFailure{status: http.StatusBadRequest, reason: "code missing", detail: "The bank's answer carries no authorization code."}
	}
	return nil
}

// exchange trades the code for tokens through the vendor's own client, with
// the client secret and the PKCE verifier sealed at the start.
func (c *callback) exchange() *callbackFailure {
	ctx, b := c.r.Context(), c.b
	unavailable := func(reason string) *callbackFailure {
		return failed(callbackFailure{status: http.StatusServiceUnavailable, reason: reason, detail: "consentgate could not complete the authorization; please try again later."})
	}
	var err error
	if c.key, err = b.sealKey(ctx); err != nil {
		b.log.Error("token seal key unavailable during an authorization callback", logRequestID, c.requestID, logError, err.Error())
		return unavailable("token seal key unavailable")
	}
	var opts []oauth2.AuthCodeOption
	if sealed := c.pending.Verifier; sealed != nil {
		verifier, err := c.key.Open(sealed, verifierAAD(c.stateKey))
		if err != nil {
			// Started before a rotation of keys.token_seal.
			if v, ok := b.openWithPrevious(ctx, sealed, verifierAAD(c.stateKey)); ok {
				verifier, err = v, nil
			}
		}
		if err != nil {
			return &callbackFailure{status: http.StatusBadRequest, reason: "PKCE verifier does not open", detail: "This authorization cannot be completed. Start again from the application."}
		}
		opts = append(opts, oauth2.VerifierOption(string(verifier)))
	}
	if c.conf, _, err = c.login.config(ctx, b.secrets, b.RedirectURL(c.vendor)); err != nil {
		b.log.Error("vendor client secret unavailable during an authorization callback", logRequestID, c.requestID, logVendor, c.vendor, logError, err.Error())
		return unavailable("vendor credentials unavailable")
	}
	xctx, cancel := c.login.exchangeContext(ctx)
	defer cancel()
	if c.token, err = c.conf.Exchange(xctx, c.code, opts...); err != nil {
		reason := "code exchange failed: " + SafeTokenError(err).Error()
		b.log.Warn("vendor refused the authorization code", logRequestID, c.requestID, logVendor, c.vendor, logError, reason)
		return failed(callbackFailure{status: http.StatusBadGateway, reason: reason, detail: "The bank did not complete the authorization. Start again from the application."})
	}
	return nil
}

// store seals the tokens under the consent, with the authorization's record.
func (c *callback) store() *callbackFailure {
	b, p, tok := c.b, c.pending, c.token
	now := b.now()
	scopes := c.conf.Scopes
	if s, ok := tok.Extra("scope").(string); ok && strings.TrimSpace(s) != "" {
		scopes = strings.Fields(s)
	}
	sealed, err := b.sealTokens(c.key, p.ConsentID, c.vendor, &storedTokens{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken,
		TokenType: tok.TokenType, Expiry: tok.Expiry, IssuedAt: now})
	if err != nil {
		return &callbackFailure{status: http.StatusInternalServerError, reason: "sealing tokens failed", detail: "consentgate could not complete the authorization."}
	}
	// The code is spent: keep its tokens even if the browser has gone.
	err = b.grants.CompleteAuthorization(context.WithoutCancel(c.r.Context()), p.App, p.ConsentID,
		consent.Authorization{Vendor: c.vendor, AuthorizedAt: now, Scopes: scopes}, sealed)
	switch {
	case errors.Is(err, consent.ErrHook):
		// The registry's hook is the audit record that failed: no record of its own.
		f := failed(callbackFailure{status: http.StatusServiceUnavailable, reason: "audit log unavailable", detail: "consentgate could not record the authorization; please try again later."})
		f.unrecorded = true
		return f
	case errors.Is(err, consent.ErrNotFound), errors.Is(err, consent.ErrNotActive), errors.Is(err, consent.ErrInvalid):
		return &callbackFailure{status: http.StatusForbidden, reason: "consent no longer usable", detail: "The consent this authorization was for has been withdrawn or has expired. Nothing was kept."}
	case err != nil:
		b.log.Error("storing vendor tokens failed", logRequestID, c.requestID, logError, err.Error())
		return failed(callbackFailure{status: http.StatusServiceUnavailable, reason: "consent registry unavailable", detail: "consentgate could not complete the authorization; please try again later."})
	}
	return nil
}

// refuse records the refusal and answers it. Callbacks that match no started
// authorization are recorded at a rate (noise.go); the rest always.
func (c *callback) refuse(w http.ResponseWriter, f callbackFailure) {
	b := c.b
	c.out.Status, c.out.Err, c.out.Failed = f.status, f.reason, f.failed
	if f.unrecorded {
		writeCallbackFailure(w, c.r, f, c.requestID)
		return
	}
	rec := audit.Record{Kind: audit.KindConsent, RequestID: c.requestID, Vendor: c.vendor, Status: f.status, Error: f.reason,
		Detail: map[string]string{"change": ChangeAuthorizationFailed}}
	if p := c.pending; p != nil {
		rec.App, rec.ConsentID = p.App, p.ConsentID
	} else if !b.unmatched.admit(rec.Detail, b.now()) {
		b.unrecorded.Inc()
		if b.unmatched.warnDue(b.now()) {
			b.log.Warn("unmatched OAuth2 callbacks beyond the audit rate: counted, not each recorded",
				"rate_per_second", UnmatchedRate, logRequestID, c.requestID)
		}
		writeCallbackFailure(w, c.r, f, c.requestID)
		return
	}
	if _, err := b.audit.Append(context.WithoutCancel(c.r.Context()), rec); err != nil {
		b.log.Error("AUDIT LOG UNWRITABLE: refused authorization not recorded", logRequestID, c.requestID, logError, err.Error())
		f = callbackFailure{status: http.StatusServiceUnavailable, reason: "audit log unavailable", detail: "consentgate could not record the authorization; please try again later"}
		c.out.Failed, c.out.Status, c.out.Err = true, f.status, f.reason
	}
	writeCallbackFailure(w, c.r, f, c.requestID)
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
