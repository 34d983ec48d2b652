package sandbox

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// oauthTokens is a token endpoint's answer.
type oauthTokens struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
}

type oauthErrorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// vendorLogin is what a test needs to drive one vendor's login.
type vendorLogin struct {
	server              *Server
	loginPath           string
	tokenPath           string
	clientID, secret    string
	pkce                bool
	redirect            string
	registeredRedirects []string
}

func loginOf(t *testing.T, set *Set, cfg Config, vendor string) vendorLogin {
	t.Helper()
	redirect := "https://gw.test/oauth/" + vendor + "/callback"
	if err := set.RegisterRedirectURI(vendor, redirect); err != nil {
		t.Fatal(err)
	}
	switch vendor {
	case "airbank":
		return vendorLogin{set.Airbank, airbankLoginPath, airbankTokenPath, cfg.Credentials.AirbankClientID, cfg.Credentials.AirbankClientSecret, false, redirect, nil}
	case "kb":
		return vendorLogin{set.KB, kbLoginPath, kbTokenPath, cfg.Credentials.KBClientID, cfg.Credentials.KBClientSecret, true, redirect, nil}
	}
	t.Fatalf("no login for %s", vendor)
	return vendorLogin{}
}

const testVerifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-test-verifier"

func challengeOf(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// authorize opens the login page with params and returns the redirect's query.
func (l vendorLogin) authorize(t *testing.T, c *http.Client, params url.Values) (int, url.Values, string) {
	t.Helper()
	resp := send(t, c, http.MethodGet, l.server.URL+l.loginPath+"?"+params.Encode(), "")
	if resp.status != http.StatusFound {
		return resp.status, nil, string(resp.body)
	}
	loc, err := url.Parse(resp.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return resp.status, loc.Query(), loc.Scheme + "://" + loc.Host + loc.Path
}

func (l vendorLogin) loginParams(state string) url.Values {
	p := url.Values{"client_id": {l.clientID}, "response_type": {"code"}, "state": {state}, "redirect_uri": {l.redirect}}
	if l.pkce {
		p.Set("code_challenge", challengeOf(testVerifier))
		p.Set("code_challenge_method", "S256")
	}
	return p
}

func (l vendorLogin) exchange(t *testing.T, c *http.Client, form url.Values) response {
	t.Helper()
	return send(t, c, http.MethodPost, l.server.URL+l.tokenPath, form.Encode(), "Content-Type", formContent,
		"Authorization", basicAuth(l.clientID, l.secret))
}

func (l vendorLogin) codeForm(code string) url.Values {
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {l.redirect}}
	if l.pkce {
		f.Set("code_verifier", testVerifier)
	}
	return f
}

// loginToken runs the whole login for the test user and returns the tokens; the recorded
// requests are forgotten, so a test counts only its own.
func loginToken(t *testing.T, set *Set, cfg Config, vendor string, c *http.Client) oauthTokens {
	t.Helper()
	l := loginOf(t, set, cfg, vendor)
	status, q, _ := l.authorize(t, c, l.loginParams("st-1"))
	if status != http.StatusFound || q.Get("code") == "" || q.Get("state") != "st-1" {
		t.Fatalf("%s login: status %d, redirect query %v", vendor, status, q)
	}
	resp := l.exchange(t, c, l.codeForm(q.Get("code")))
	if resp.status != http.StatusOK {
		t.Fatalf("%s code exchange: status %d: %s", vendor, resp.status, resp.body)
	}
	l.server.Reset()
	return decode[oauthTokens](t, resp.body)
}

func TestOAuthLoginAndTokens(t *testing.T) {
	pki := newTestPKI(t)
	for _, vendor := range []string{"airbank", "kb"} {
		t.Run(vendor, func(t *testing.T) {
			cfg := testConfig(t, pki)
			clock := newFakeClock()
			cfg.now = clock.Now
			cfg.AirbankTokenTTL, cfg.KBTokenTTL = 20*time.Minute, 5*time.Minute
			set := startSet(t, cfg)
			// KB's token endpoint is behind the API's mTLS; its login page is for a browser.
			browser := newClient(t, pki)
			c := newClient(t, pki, clientCert(t, pki.ica, companySubject(testCompanyICO)))
			l := loginOf(t, set, cfg, vendor)

			status, q, back := l.authorize(t, browser, l.loginParams("xyz"))
			if status != http.StatusFound || back != l.redirect || q.Get("state") != "xyz" || q.Get("code") == "" {
				t.Fatalf("login: status %d, back to %s with %v", status, back, q)
			}
			resp := l.exchange(t, c, l.codeForm(q.Get("code")))
			if resp.status != http.StatusOK || resp.header.Get("Cache-Control") != "no-store" {
				t.Fatalf("exchange: status %d, Cache-Control %q: %s", resp.status, resp.header.Get("Cache-Control"), resp.body)
			}
			tok := decode[oauthTokens](t, resp.body)
			wantTTL := map[string]int{"airbank": 1200, "kb": 300}[vendor]
			if tok.AccessToken == "" || tok.RefreshToken == "" || !strings.EqualFold(tok.TokenType, "bearer") || tok.ExpiresIn != wantTTL {
				t.Fatalf("tokens %+v", tok)
			}
			// The code is spent.
			if resp := l.exchange(t, c, l.codeForm(q.Get("code"))); resp.status != http.StatusBadRequest ||
				decode[oauthErrorBody](t, resp.body).Error != "invalid_grant" {
				t.Errorf("second exchange: status %d: %s", resp.status, resp.body)
			}
			if !callAPI(t, set, cfg, vendor, c, tok.AccessToken) {
				t.Fatal("a fresh access token is refused")
			}

			// Expired: refused with the vendor's documented error; the refresh token gets a
			// new pair and is spent.
			clock.Advance(time.Duration(wantTTL) * time.Second)
			if callAPI(t, set, cfg, vendor, c, tok.AccessToken) {
				t.Fatal("an expired access token is accepted")
			}
			refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}
			resp = l.exchange(t, c, refresh)
			if resp.status != http.StatusOK {
				t.Fatalf("refresh: status %d: %s", resp.status, resp.body)
			}
			next := decode[oauthTokens](t, resp.body)
			if next.AccessToken == tok.AccessToken || next.RefreshToken == tok.RefreshToken || !callAPI(t, set, cfg, vendor, c, next.AccessToken) {
				t.Fatalf("refreshed tokens %+v do not work", next)
			}
			if resp := l.exchange(t, c, refresh); resp.status != http.StatusBadRequest || decode[oauthErrorBody](t, resp.body).Error != "invalid_grant" {
				t.Errorf("spent refresh token: status %d: %s", resp.status, resp.body)
			}
			if vendor == "kb" && next.Scope != "" {
				t.Errorf("scope %q although none was asked", next.Scope)
			}
		})
	}
}

// callAPI reports whether the vendor's API accepts token, checking the documented refusal.
func callAPI(t *testing.T, set *Set, cfg Config, vendor string, c *http.Client, token string) bool {
	t.Helper()
	var resp response
	if vendor == "airbank" {
		resp = send(t, c, http.MethodGet, set.Airbank.URL+airbankBasePath+"personalData", "", airbankAuth(cfg, token)...)
		if resp.status == http.StatusUnauthorized {
			if got := decode[oauthErrorBody](t, resp.body); got.Error != "invalid_token" || got.ErrorDescription != "The access token is invalid or has expired" {
				t.Errorf("airbank refusal %+v", got)
			}
		}
	} else {
		resp = send(t, c, http.MethodGet, set.KB.URL+kbIdentityPath, "", "apikey", cfg.Credentials.KBAPIKey, "Authorization", "Bearer "+token)
		if resp.status == http.StatusUnauthorized {
			if got := decode[kbErrorBody](t, resp.body); got.Code != "ACCESS_TOKEN_INVALID" {
				t.Errorf("kb refusal %+v", got)
			}
		}
	}
	return resp.status == http.StatusOK
}

func TestOAuthRefusals(t *testing.T) {
	pki := newTestPKI(t)
	cfg := testConfig(t, pki)
	clock := newFakeClock()
	cfg.now = clock.Now
	set := startSet(t, cfg)
	browser := newClient(t, pki)
	kbClient := newClient(t, pki, clientCert(t, pki.ica, companySubject(testCompanyICO)))
	ab, kb := loginOf(t, set, cfg, "airbank"), loginOf(t, set, cfg, "kb")

	// The login page: an unknown client or redirect gets a page, never a redirect.
	pageTests := []struct {
		name   string
		login  vendorLogin
		change func(url.Values)
	}{
		{"unknown client", ab, func(p url.Values) { p.Set("client_id", "nope") }},
		{"unregistered redirect", ab, func(p url.Values) { p.Set("redirect_uri", "https://evil.test/oauth/airbank/callback") }},
		{"kb: redirect under a registered one", kb, func(p url.Values) { p.Set("redirect_uri", kb.redirect+"/more") }},
		{"kb: no redirect", kb, func(p url.Values) { p.Del("redirect_uri") }},
	}
	for _, tt := range pageTests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.login.loginParams("s")
			tt.change(p)
			if status, _, _ := tt.login.authorize(t, browser, p); status != http.StatusBadRequest {
				t.Errorf("status %d, want 400 and no redirect", status)
			}
		})
	}
	// Air Bank: a redirect_uri under a registered one, or none (the first registered).
	p := ab.loginParams("s")
	p.Set("redirect_uri", ab.redirect+"?app=1")
	if status, q, back := ab.authorize(t, browser, p); status != http.StatusFound || back != ab.redirect || q.Get("app") != "1" {
		t.Errorf("airbank prefix rule: status %d to %s %v", status, back, q)
	}
	p.Del("redirect_uri")
	if status, _, back := ab.authorize(t, browser, p); status != http.StatusFound || back != ab.redirect {
		t.Errorf("airbank without redirect_uri: status %d to %s", status, back)
	}

	// Errors sent back to the client.
	backTests := []struct {
		name   string
		login  vendorLogin
		change func(url.Values)
		want   string
	}{
		{"response type", ab, func(p url.Values) { p.Set("response_type", "token") }, "unsupported_response_type"},
		{"kb: no challenge", kb, func(p url.Values) { p.Del("code_challenge") }, "invalid_request"},
		{"kb: plain challenge", kb, func(p url.Values) { p.Set("code_challenge_method", "plain") }, "invalid_request"},
	}
	for _, tt := range backTests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.login.loginParams("s2")
			tt.change(p)
			status, q, _ := tt.login.authorize(t, browser, p)
			if status != http.StatusFound || q.Get("error") != tt.want || q.Get("state") != "s2" || q.Get("code") != "" {
				t.Errorf("status %d, back with %v; want error=%s", status, q, tt.want)
			}
		})
	}

	// The token endpoint.
	code := func(l vendorLogin) string {
		t.Helper()
		_, q, _ := l.authorize(t, browser, l.loginParams("s3"))
		return q.Get("code")
	}
	type exchangeCase struct {
		name   string
		login  vendorLogin
		form   func(l vendorLogin) url.Values
		auth   string
		status int
		want   string
	}
	tokenTests := []exchangeCase{
		{"wrong client secret", ab, func(l vendorLogin) url.Values { return l.codeForm(code(l)) }, basicAuth(cfg.Credentials.AirbankClientID, "wrong"), 401, "invalid_client"},
		{"another vendor's client", ab, func(l vendorLogin) url.Values { return l.codeForm(code(l)) }, basicAuth(cfg.Credentials.KBClientID, cfg.Credentials.KBClientSecret), 401, "invalid_client"},
		{"unknown code", ab, func(l vendorLogin) url.Values { return l.codeForm("made-up") }, "", 400, "invalid_grant"},
		{"other redirect_uri", ab, func(l vendorLogin) url.Values {
			f := l.codeForm(code(l))
			f.Set("redirect_uri", l.redirect+"x")
			return f
		}, "", 400, "invalid_grant"},
		{"kb: no verifier", kb, func(l vendorLogin) url.Values {
			f := l.codeForm(code(l))
			f.Del("code_verifier")
			return f
		}, "", 400, "invalid_grant"},
		{"kb: wrong verifier", kb, func(l vendorLogin) url.Values {
			f := l.codeForm(code(l))
			f.Set("code_verifier", testVerifier+"x")
			return f
		}, "", 400, "invalid_grant"},
		{"unsupported grant", ab, func(vendorLogin) url.Values { return url.Values{"grant_type": {"password"}} }, "", 400, "unsupported_grant_type"},
		{"unknown refresh token", ab, func(vendorLogin) url.Values {
			return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"made-up"}}
		}, "", 400, "invalid_grant"},
	}
	for _, tt := range tokenTests {
		t.Run(tt.name, func(t *testing.T) {
			auth := tt.auth
			if auth == "" {
				auth = basicAuth(tt.login.clientID, tt.login.secret)
			}
			resp := send(t, kbClient, http.MethodPost, tt.login.server.URL+tt.login.tokenPath, tt.form(tt.login).Encode(),
				"Content-Type", formContent, "Authorization", auth)
			if resp.status != tt.status || decode[oauthErrorBody](t, resp.body).Error != tt.want {
				t.Errorf("status %d: %s; want %d %s", resp.status, resp.body, tt.status, tt.want)
			}
		})
	}
	// An expired code.
	c := code(ab)
	clock.Advance(codeTTL)
	if resp := ab.exchange(t, browser, ab.codeForm(c)); resp.status != http.StatusBadRequest || decode[oauthErrorBody](t, resp.body).Error != "invalid_grant" {
		t.Errorf("expired code: status %d: %s", resp.status, resp.body)
	}
	// KB's token endpoint is behind its mTLS.
	resp := kb.exchange(t, browser, kb.codeForm(code(kb)))
	if resp.status != http.StatusForbidden || decode[kbErrorBody](t, resp.body).Code != "CLIENT_CERTIFICATE_REQUIRED" {
		t.Errorf("kb exchange without a certificate: status %d: %s", resp.status, resp.body)
	}
	if err := set.RegisterRedirectURI("finid", "https://gw.test/x"); err == nil {
		t.Error("finid has no login, yet a redirect URI was registered")
	}
}
