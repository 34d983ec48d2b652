package sandbox

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// codeTTL is how long an authorization code can be exchanged; RFC 6749 §4.1.2
// recommends at most ten minutes, banks use far less.
const codeTTL = time.Minute

// redirectRule is how a vendor matches the redirect_uri of a login against the
// URIs registered for the client.
type redirectRule int

const (
	// redirectPrefix: Air Bank's rule. The redirect_uri must start with one of the
	// registered URLs; without one, the first registered URL is used.
	redirectPrefix redirectRule = iota
	// redirectExact: the URI registered in the contract (KB), sent and matched exactly.
	redirectExact
)

// authServer is a vendor's OAuth2 authorization server as the sandboxes stand for it: a login
// page that approves the test user at once (the bank's login and consent screens are what a
// sandbox cannot have), and a token endpoint for the authorization_code and refresh_token
// grants, issuing access tokens that expire. Refresh tokens are rotated on use, so a client
// that keeps an old one is found out.
type authServer struct {
	clientID, clientSecret string
	rule                   redirectRule
	// pkce requires an S256 code challenge with every login and its verifier at the exchange.
	pkce bool
	ttl  time.Duration
	now  func() time.Time

	mu        sync.Mutex
	redirects []string
	codes     map[string]issuedCode
	access    map[string]time.Time // access token → expiry
	refresh   map[string]string    // refresh token → scope
}

type issuedCode struct {
	// redirectParam is the redirect_uri the login was sent with ("" if none).
	redirectParam string
	challenge     string
	scope         string
	expires       time.Time
}

func newAuthServer(clientID, clientSecret string, rule redirectRule, pkce bool, ttl time.Duration, now func() time.Time) *authServer {
	return &authServer{clientID: clientID, clientSecret: clientSecret, rule: rule, pkce: pkce, ttl: ttl, now: now,
		codes: map[string]issuedCode{}, access: map[string]time.Time{}, refresh: map[string]string{}}
}

// register adds a redirect URI, as the developer portal or the contract would.
func (a *authServer) register(uri string) error {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("redirect URI %q is not an https URL", uri)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !slices.Contains(a.redirects, uri) {
		a.redirects = append(a.redirects, uri)
	}
	return nil
}

// redirectFor applies the vendor's rule to the redirect_uri of a login.
func (a *authServer) redirectFor(got string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.rule == redirectPrefix && got == "" && len(a.redirects) > 0:
		return a.redirects[0], true
	case a.rule == redirectPrefix:
		for _, r := range a.redirects {
			if strings.HasPrefix(got, r) {
				return got, true
			}
		}
	case got != "" && slices.Contains(a.redirects, got):
		return got, true
	}
	return "", false
}

// authorize is the login page. A client or redirect URI it does not know gets an error page,
// never a redirect (RFC 6749 §4.1.2.1: an unchecked redirect is an open redirector); every
// other problem goes back to the client as error=… with the state.
func (a *authServer) authorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		loginPage(w, http.StatusMethodNotAllowed, "The login page is opened with GET.")
		return
	}
	q := r.URL.Query()
	if id := q.Get("client_id"); id == "" || !secretEqual(id, a.clientID) {
		loginPage(w, http.StatusBadRequest, "Unknown application (client_id).")
		return
	}
	redirect, ok := a.redirectFor(q.Get("redirect_uri"))
	if !ok {
		loginPage(w, http.StatusBadRequest, "The redirect_uri is not registered for this application.")
		return
	}
	back := func(params url.Values) {
		if s := q.Get("state"); s != "" {
			params.Set("state", s)
		}
		sep := "?"
		if strings.Contains(redirect, "?") {
			sep = "&"
		}
		http.Redirect(w, r, redirect+sep+params.Encode(), http.StatusFound)
	}
	if q.Get("response_type") != "code" {
		back(url.Values{"error": {"unsupported_response_type"}, "error_description": {"only response_type=code is supported"}})
		return
	}
	challenge := q.Get("code_challenge")
	if a.pkce {
		if challenge == "" || q.Get("code_challenge_method") != "S256" {
			back(url.Values{"error": {"invalid_request"}, "error_description": {"a code_challenge with code_challenge_method=S256 is required"}})
			return
		}
		if raw, err := base64.RawURLEncoding.DecodeString(challenge); err != nil || len(raw) != sha256.Size {
			back(url.Values{"error": {"invalid_request"}, "error_description": {"code_challenge is not an S256 challenge"}})
			return
		}
	} else {
		challenge = "" // a server without PKCE ignores the parameter (RFC 6749 §3.1)
	}
	code, err := randomSecret(24)
	if err != nil {
		back(url.Values{"error": {"server_error"}})
		return
	}
	// The test user logs in and approves at once.
	a.mu.Lock()
	a.codes[code] = issuedCode{redirectParam: q.Get("redirect_uri"), challenge: challenge, scope: q.Get("scope"), expires: a.now().Add(codeTTL)}
	a.mu.Unlock()
	back(url.Values{"code": {code}})
}

func loginPage(w http.ResponseWriter, status int, message string) {
	writeBody(w, status, "text/html; charset=utf-8",
		[]byte("<!doctype html><title>Login</title><p>"+html.EscapeString(message)+"</p>\n"))
}

// token is the token endpoint (RFC 6749 §4.1.3, §6). It takes the client in HTTP Basic or in
// the form, not both, like FinID's.
func (a *authServer) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "the token endpoint takes POST")
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the body is not a form")
		return
	}
	id, secret, ok := clientOf(r)
	if !ok {
		oauthError(w, http.StatusBadRequest, "invalid_request", "send the client either in HTTP Basic or in the form, not both")
		return
	}
	if id == "" || !secretEqual(id, a.clientID) || !secretEqual(secret, a.clientSecret) {
		w.Header().Set("WWW-Authenticate", `Basic realm="oauth"`)
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	var scope string
	switch grant := r.PostForm.Get("grant_type"); grant {
	case "authorization_code":
		var err error
		if scope, err = a.redeemCode(r.PostForm); err != nil {
			oauthError(w, http.StatusBadRequest, "invalid_grant", err.Error())
			return
		}
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		a.mu.Lock()
		s, known := a.refresh[rt]
		delete(a.refresh, rt) // rotated: the old one is spent
		a.mu.Unlock()
		if rt == "" || !known {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "the refresh token is invalid or has been used")
			return
		}
		scope = s
	case "":
		oauthError(w, http.StatusBadRequest, "invalid_request", "grant_type is required")
		return
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "only authorization_code and refresh_token are supported")
		return
	}
	access, err1 := randomSecret(32)
	refresh, err2 := randomSecret(32)
	if err1 != nil || err2 != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", "could not issue a token")
		return
	}
	now := a.now()
	a.mu.Lock()
	for t, exp := range a.access {
		if !now.Before(exp) {
			delete(a.access, t)
		}
	}
	a.access[access] = now.Add(a.ttl)
	a.refresh[refresh] = scope
	a.mu.Unlock()
	body := map[string]any{"access_token": access, "token_type": "bearer", "expires_in": int(a.ttl.Seconds()), "refresh_token": refresh}
	if scope != "" {
		body["scope"] = scope
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, body)
}

// redeemCode checks an authorization_code grant and spends the code: once, in time, with the
// redirect URI of its login and the verifier of its challenge.
func (a *authServer) redeemCode(form url.Values) (scope string, err error) {
	code := form.Get("code")
	a.mu.Lock()
	c, known := a.codes[code]
	delete(a.codes, code)
	a.mu.Unlock()
	switch {
	case code == "" || !known:
		return "", errors.New("the authorization code is invalid or has been used")
	case !a.now().Before(c.expires):
		return "", errors.New("the authorization code has expired")
	case c.redirectParam != "" && form.Get("redirect_uri") != c.redirectParam:
		return "", errors.New("redirect_uri does not match the one of the authorization")
	}
	if c.challenge != "" {
		sum := sha256.Sum256([]byte(form.Get("code_verifier")))
		if form.Get("code_verifier") == "" || !secretEqual(base64.RawURLEncoding.EncodeToString(sum[:]), c.challenge) {
			return "", errors.New("code_verifier does not match the code challenge")
		}
	}
	return c.scope, nil
}

// check reports whether an access token was issued here and is still live.
func (a *authServer) check(token string) (known, live bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	exp, known := a.access[token]
	return known, known && a.now().Before(exp)
}

// clientOf returns the client credentials of a token request; ok is false when the request
// uses two authentication methods. Basic credentials are form-encoded (RFC 6749 §2.3.1).
func clientOf(r *http.Request) (id, secret string, ok bool) {
	formID, formSecret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	basicID, basicSecret, basic := r.BasicAuth()
	if !basic {
		return formID, formSecret, true
	}
	if formSecret != "" {
		return "", "", false
	}
	id, errID := url.QueryUnescape(basicID)
	secret, errSecret := url.QueryUnescape(basicSecret)
	if errID != nil || errSecret != nil {
		return "", "", true // undecodable credentials are simply wrong ones
	}
	if formID != "" && formID != id {
		return "", "", false
	}
	return id, secret, true
}

// oauthError is the RFC 6749 §5.2 error body.
func oauthError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}
