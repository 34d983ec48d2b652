package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consentgate/consentgate/admin"
	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/internal/logsink"
	"github.com/consentgate/consentgate/oauth"
	"github.com/consentgate/consentgate/policy"
	"github.com/consentgate/consentgate/refusal"
	"github.com/consentgate/consentgate/secrets"
)

const (
	testClientID     = "bank-client-id-0001"
	testClientSecret = "bank-client-secret-7e1d9c3b5a"
	testReturnTo     = "https://app.test/done/linked?session=s1"
)

// testClock is the gateway's and the registry's clock; tests move it.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeBank is a vendor with an OAuth2 token endpoint and one API resource. It
// issues tokens that live an hour, rotates refresh tokens, and records what it saw.
type fakeBank struct {
	mu        sync.Mutex
	issued    map[string]bool // access tokens
	refresh   map[string]bool
	all       []string // every token issued, access and refresh
	verifiers []string
	refreshes int
	apiCalls  int
	apiAuth   []string
	refuse    bool // answer refresh grants with invalid_grant
}

func (b *fakeBank) handler(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/token":
		r.ParseForm()
		if id, sec, ok := r.BasicAuth(); !ok || id != testClientID || sec != testClientSecret {
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client"})
			return
		}
		switch r.PostForm.Get("grant_type") {
		case "authorization_code":
			if r.PostForm.Get("code") != "good-code" {
				w.WriteHeader(http.StatusBadRequest)
				json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant", "error_description": "code " + r.PostForm.Get("code") + " is bad"})
				return
			}
			b.verifiers = append(b.verifiers, r.PostForm.Get("code_verifier"))
		case "refresh_token":
			rt := r.PostForm.Get("refresh_token")
			if b.refuse || !b.refresh[rt] {
				w.WriteHeader(http.StatusBadRequest)
				json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant"})
				return
			}
			delete(b.refresh, rt)
			b.refreshes++
			// A slow refresh leaves concurrent calls time to race for it.
			time.Sleep(100 * time.Millisecond)
		}
		at, rt := "at-"+rand.Text(), "rt-"+rand.Text()
		b.issued[at], b.refresh[rt] = true, true
		b.all = append(b.all, at, rt)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": at, "refresh_token": rt, "token_type": "bearer", "expires_in": 3600, "scope": "read"})
	default:
		b.apiCalls++
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		b.apiAuth = append(b.apiAuth, tok)
		w.Header().Set("Content-Type", "application/json")
		if !b.issued[tok] {
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_token"})
			return
		}
		sum := sha256.Sum256([]byte(tok))
		json.NewEncoder(w).Encode(map[string]any{"name": "Jana", "token_sha": hex.EncodeToString(sum[:])})
	}
}

func (b *fakeBank) snapshot() (calls, refreshes int, tokens []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.apiCalls, b.refreshes, append([]string(nil), b.all...)
}

type oauthEnv struct {
	gatewayURL, adminURL string
	callbacksURL         string
	app, other, auditor  *http.Client
	noCert               *http.Client
	ca                   *certs.CA
	trust                *x509.CertPool
	reg                  *consent.Registry
	regPath              string
	clock                *testClock
	bank                 *fakeBank
	audit                *audit.Log
	logs                 *logsink.Buffer
	gw                   *Gateway
	secretsFile          string
	store                *secrets.FileStore
}

func newOAuthEnv(t testing.TB) *oauthEnv {
	t.Helper()
	b := newTestGateway(t)
	dir := b.dir
	bank := &fakeBank{issued: map[string]bool{}, refresh: map[string]bool{}}
	up := httptest.NewUnstartedServer(http.HandlerFunc(bank.handler))
	up.StartTLS()
	t.Cleanup(up.Close)
	writeFile(t, filepath.Join(dir, "upstream.crt"), certs.EncodeCertificates(up.Certificate()), 0o644)
	seal := make([]byte, 32)
	rand.Read(seal)
	b.secrets = `vendors/bank:
  client_id: ` + testClientID + `
  client_secret: ` + testClientSecret + `
  api_key: bank-api-key-0123456789
`
	b.keys = "  token_seal: " + hex.EncodeToString(seal) + "\n"
	b.listen = "  admin: 127.0.0.1:0\n  callbacks: 127.0.0.1:0\n"
	b.main = `  token_seal: consentgate/keys#token_seal
  token_seal_previous: consentgate/keys#token_seal_previous
oauth:
  public_url: https://gw.test
`
	// Where each app may send its end users back: the policy data's, beside
	// what else the app may do.
	writeFile(t, filepath.Join(dir, "policies", "data.yaml"), []byte(`apps:
  web:
    oauth_return_to: [https://app.test/done/]
  other:
    oauth_return_to: [https://other.test/]
`), 0o644)
	profile := func(id string, pkce bool) string {
		return `id: ` + id + `
base_url: ` + up.URL + `
upstream:
  ca_file: upstream.crt
  pin: [127.0.0.1]
credentials:
  - type: api_key
    secret: vendors/bank#api_key
    header: apikey
  - type: oauth2_authorization_code
    authorize_url: https://login.bank.test/authorize?lang=cs
    token_url: /token
    client_id: vendors/bank#client_id
    client_secret: vendors/bank#client_secret
    scopes: [read]
    pkce: ` + fmt.Sprint(pkce) + `
operations:
  - id: ` + id + `.me
    method: GET
    path: /api/me
  - id: ` + id + `.reportOnly
    method: GET
    path: /api/report
    enforce: false
`
	}
	b.vendor(t, "bank.yaml", profile("bank", true))
	b.vendor(t, "bank2.yaml", profile("bank2", false))
	b.vendor(t, "plain.yaml", `id: plain
base_url: `+up.URL+`
upstream:
  ca_file: upstream.crt
  pin: [127.0.0.1]
operations:
  - id: plain.me
    method: GET
    path: /api/me
`)
	clock := &testClock{t: time.Now().UTC()}
	b.opts = []func(*Options){func(o *Options) { o.Now = clock.Now }}
	regPath := filepath.Join(dir, "state.db")
	var alog *audit.Log // the builder opens it; the registry's hook records into it
	reg, err := consent.Open(regPath, consent.Options{SubjectKey: []byte("test-subject-hmac-key-0123456789abcdef"),
		Vendors: []string{"bank", "bank2", "plain"}, Purposes: []string{"kyc-onboarding"}, Categories: []string{"identity"}, Now: clock.Now,
		Hook: func(ctx context.Context, ch consent.Change) error {
			_, err := alog.Append(ctx, audit.Record{Kind: audit.KindConsent, ConsentID: ch.Consent.ID, App: ch.Consent.App, Vendor: ch.Vendor,
				Detail: map[string]string{"change": ch.Kind, "tokens_deleted": strings.Join(ch.TokensDeleted, ",")}})
			return err
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	b.opts = append(b.opts, func(o *Options) { o.Grants = reg })
	g := b.build(t, reg)
	alog = g.audit
	cbs, err := NewCallbacks(g.gw)
	if err != nil {
		t.Fatal(err)
	}
	srv := g.serve(t, nil, admin.New(admin.Options{Consents: reg, Policy: g.engine, Audit: alog, OAuthStart: g.gw.Broker().Start}), cbs)
	e := &oauthEnv{gatewayURL: "https://" + srv.Addr(ListenGateway), adminURL: "https://" + srv.Addr(ListenAdmin), callbacksURL: "https://" + srv.Addr(ListenCallbacks), ca: b.ca, trust: g.trust,
		reg: reg, regPath: regPath, clock: clock, bank: bank, audit: alog, logs: g.logs, gw: g.gw,
		secretsFile: g.cfg.ResolvePath("secrets.yaml"), store: g.store}
	te := &testEnv{trust: g.trust}
	e.app = te.clientWith(t, b.ca, "spiffe://test.local/app/web", time.Hour)
	e.other = te.clientWith(t, b.ca, "spiffe://test.local/app/other", time.Hour)
	e.auditor = te.clientWith(t, b.ca, "spiffe://test.local/auditor/audit-1", time.Hour)
	e.noCert = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: g.trust}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return e
}

func (e *oauthEnv) consent(t testing.TB, app string, vendors ...string) string {
	t.Helper()
	c, err := e.reg.Create(t.Context(), app, consent.Request{Subject: "user-" + rand.Text(), Vendors: vendors,
		Purposes: []string{"kyc-onboarding"}, Categories: []string{"identity"}, Evidence: consent.Evidence{Text: "x"}, TTL: "720h"})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// get is do for tests that read bodies as bytes.
func get(t testing.TB, c *http.Client, method, url string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	resp, body := do(t, c, method, url, "", header)
	return resp, []byte(body)
}

// start asks for a login URL and returns it parsed.
func (e *oauthEnv) start(t testing.TB, c *http.Client, vendor, consentID, returnTo string) (*http.Response, *url.URL, map[string]any) {
	t.Helper()
	q := url.Values{"consent_id": {consentID}, "return_to": {returnTo}}
	resp, body := get(t, c, "GET", e.adminURL+"/v1/oauth/"+vendor+"/start?"+q.Encode(), nil)
	var answer map[string]any
	json.Unmarshal(body, &answer)
	if resp.StatusCode != http.StatusOK {
		return resp, nil, answer
	}
	u, err := url.Parse(answer["authorize_url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	return resp, u, answer
}

// callback is the browser coming back from the bank.
func (e *oauthEnv) callback(t testing.TB, vendor string, q url.Values, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	return get(t, e.noCert, "GET", e.callbacksURL+"/oauth/"+vendor+"/callback?"+q.Encode(), header)
}

// authorize runs a successful flow for consentID at vendor.
func (e *oauthEnv) authorize(t testing.TB, vendor, consentID string) {
	t.Helper()
	resp, login, answer := e.start(t, e.app, vendor, consentID, testReturnTo)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("start: %d %v", resp.StatusCode, answer)
	}
	resp, body := e.callback(t, vendor, url.Values{"code": {"good-code"}, "state": {login.Query().Get("state")}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != testReturnTo {
		t.Fatalf("callback: %d %s (Location %q)", resp.StatusCode, body, resp.Header.Get("Location"))
	}
}

func (e *oauthEnv) call(t *testing.T, c *http.Client, path, consentID string) (*http.Response, []byte) {
	t.Helper()
	return get(t, c, "GET", e.gatewayURL+path, map[string]string{"X-Consent-Id": consentID, "X-Purpose": "kyc-onboarding",
		"Authorization": "Bearer app-sent"})
}

// callRecords counts the audit records of every kind but checkpoints (which
// the log writes on its own schedule).
func (e *oauthEnv) callRecords(t *testing.T) int {
	t.Helper()
	var b bytes.Buffer
	if err := e.audit.Export(t.Context(), &b, audit.Filter{}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var r audit.Record
		if json.Unmarshal([]byte(line), &r) == nil && r.Kind != "" && r.Kind != audit.KindCheckpoint {
			n++
		}
	}
	return n
}

// auditRecords returns the audit records of kind consent.
func (e *oauthEnv) auditRecords(t *testing.T) []audit.Record {
	t.Helper()
	var b bytes.Buffer
	if err := e.audit.Export(t.Context(), &b, audit.Filter{}); err != nil {
		t.Fatal(err)
	}
	var out []audit.Record
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var r audit.Record
		if json.Unmarshal([]byte(line), &r) == nil && r.Kind == audit.KindConsent {
			out = append(out, r)
		}
	}
	return out
}

// Browsers come back to the callbacks listener, which serves them the OAuth2
// callback and no vendor route; the gateway listener refuses a handshake
// without a valid app certificate for every path, the callback's included
// (issue 13 §4: it used to complete the handshake and answer 401).
func TestOAuthCallbackOnTheCallbacksListenerOnly(t *testing.T) {
	e := newOAuthEnv(t)
	id := e.consent(t, "web", "bank")
	e.authorize(t, "bank", id)
	callsBefore, _, _ := e.bank.snapshot()
	records := e.callRecords(t)

	// A crypto/tls client holding only a certificate of a CA the server does not
	// name sends none: it is refused like one without.
	other, err := certs.NewCA(pkix.Name{CommonName: "foreign CA"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	te := &testEnv{trust: e.trust}
	foreign := te.clientWith(t, other, "spiffe://test.local/app/web", time.Hour)
	for _, path := range []string{"/oauth/bank/callback?state=x", "/v/bank/api/me", "/"} {
		for name, c := range map[string]*http.Client{
			"no certificate":      e.noCert,
			"foreign certificate": foreign,
			"no SPIFFE id":        te.clientWith(t, e.ca, "", time.Hour),
			"other domain":        te.clientWith(t, e.ca, "spiffe://evil.test/app/web", time.Hour),
			"expired":             te.clientWith(t, e.ca, "spiffe://test.local/app/web", -time.Minute),
			"forced client":       forcingClient(t, e.trust, other),
		} {
			req, _ := http.NewRequest("GET", e.gatewayURL+path, nil)
			if resp, err := c.Do(req); err == nil {
				resp.Body.Close()
				t.Errorf("gateway listener, %s with %s: answered %d, want a failed handshake", path, name, resp.StatusCode)
			}
		}
	}
	if n := e.callRecords(t); n != records {
		t.Errorf("failed handshakes wrote %d audit records", n-records)
	}
	// The callbacks listener serves the callback and nothing of the gateway.
	for _, path := range []string{"/v/bank/api/me", "/v/plain/api/me", "/oauth/plain/callback", "/oauth/bank/callback/x", "/oauth/bank%2fcallback"} {
		for name, c := range map[string]*http.Client{"no certificate": e.noCert, "app certificate": e.app} {
			resp, body := get(t, c, "GET", e.callbacksURL+path, map[string]string{"X-Consent-Id": id, "X-Purpose": "kyc-onboarding"})
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("callbacks listener, %s with %s: %d %s", path, name, resp.StatusCode, body)
			}
		}
	}
	if resp, body := e.callback(t, "bank", url.Values{"code": {"x"}, "state": {"never-issued"}}, nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a forged callback: %d %s", resp.StatusCode, body)
	}
	if calls, _, _ := e.bank.snapshot(); calls != callsBefore {
		t.Errorf("the vendor was called %d times by requests without a certificate", calls-callsBefore)
	}
	if resp, err := e.noCert.Get(e.adminURL + "/healthz"); err == nil {
		resp.Body.Close()
		t.Error("the admin listener answered without a client certificate")
	}
	if resp, body := e.call(t, e.app, "/v/bank/api/me", id); resp.StatusCode != http.StatusOK {
		t.Errorf("with the app certificate: %d %s", resp.StatusCode, body)
	}
}

// forcingClient presents a certificate from ca whatever the server asks for.
func forcingClient(t *testing.T, trust *x509.CertPool, ca *certs.CA) *http.Client {
	t.Helper()
	cert, key, err := ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "intruder"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs: []*url.URL{{Scheme: "spiffe", Host: "test.local", Path: "/app/web"}}})
	if err != nil {
		t.Fatal(err)
	}
	pair := tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: trust,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }}}}
}

// The gateway listener refuses the handshake itself, whatever the vendors.
func TestGatewayHandshakeNeedsCertificateWithoutOAuthVendors(t *testing.T) {
	env := newTestEnv(t)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: env.trust}}}
	if resp, err := c.Get(env.gatewayURL + "/oauth/echo/callback?state=x"); err == nil {
		resp.Body.Close()
		t.Fatalf("answered %d without a client certificate", resp.StatusCode)
	}
}

func TestOAuthStart(t *testing.T) {
	e := newOAuthEnv(t)
	mine := e.consent(t, "web", "bank")
	theirs := e.consent(t, "other", "bank")
	bank2Only := e.consent(t, "web", "bank2")
	revoked := e.consent(t, "web", "bank")
	if _, err := e.reg.Revoke(t.Context(), "web", "app", revoked); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		client    *http.Client
		vendor    string
		consentID string
		returnTo  string
		status    int
		kind      refusal.Kind
	}{
		{"return_to not listed", e.app, "bank", mine, "https://evil.test/done/", 400, refusal.ReturnToNotAllowed},
		{"return_to outside the prefix", e.app, "bank", mine, "https://app.test/donex", 400, refusal.ReturnToNotAllowed},
		{"return_to other port", e.app, "bank", mine, "https://app.test:8443/done/", 400, refusal.ReturnToNotAllowed},
		{"return_to http", e.app, "bank", mine, "http://app.test/done/", 400, refusal.ReturnToNotAllowed},
		{"return_to dot segment", e.app, "bank", mine, "https://app.test/done/../admin", 400, refusal.ReturnToNotAllowed},
		{"return_to encoded slash", e.app, "bank", mine, "https://app.test/done/..%2fadmin", 400, refusal.ReturnToNotAllowed},
		{"return_to user info", e.app, "bank", mine, "https://app.test@evil.test/done/", 400, refusal.ReturnToNotAllowed},
		{"return_to of another app", e.app, "bank", mine, "https://other.test/", 400, refusal.ReturnToNotAllowed},
		{"no return_to", e.app, "bank", mine, "", 400, refusal.ReturnToNotAllowed},
		{"another app's consent", e.app, "bank", theirs, testReturnTo, 403, refusal.ConsentNotUsable},
		{"unknown consent", e.app, "bank", "no-such-consent", testReturnTo, 403, refusal.ConsentNotUsable},
		{"revoked consent", e.app, "bank", revoked, testReturnTo, 403, refusal.ConsentNotUsable},
		{"vendor not in the consent", e.app, "bank", bank2Only, testReturnTo, 403, refusal.ConsentNotUsable},
		{"bad consent id", e.app, "bank", "../x", testReturnTo, 400, refusal.BadRequest},
		{"vendor without a login", e.app, "plain", mine, testReturnTo, 404, refusal.NoRoute},
		{"unknown vendor", e.app, "nope", mine, testReturnTo, 404, refusal.NoRoute},
		{"auditor role", e.auditor, "bank", mine, testReturnTo, 403, refusal.RoleNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _, answer := e.start(t, tt.client, tt.vendor, tt.consentID, tt.returnTo)
			if resp.StatusCode != tt.status || answer["type"] != tt.kind.Type() {
				t.Errorf("%d %v, want %d %s", resp.StatusCode, answer, tt.status, tt.kind)
			}
		})
	}
	for _, r := range e.auditRecords(t) {
		if r.Detail["change"] == oauth.ChangeAuthorizationStarted {
			t.Errorf("a refused start was recorded: %+v", r)
		}
	}

	resp, login, answer := e.start(t, e.app, "bank", mine, testReturnTo)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("start: %d %v", resp.StatusCode, answer)
	}
	q := login.Query()
	if login.Host != "login.bank.test" || login.Path != "/authorize" || q.Get("lang") != "cs" || q.Get("client_id") != testClientID ||
		q.Get("response_type") != "code" || q.Get("redirect_uri") != "https://gw.test/oauth/bank/callback" || q.Get("scope") != "read" ||
		q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 || len(q.Get("state")) < 40 {
		t.Errorf("login URL %s", login)
	}
	if answer["consent_id"] != mine || answer["vendor"] != "bank" {
		t.Errorf("answer %v", answer)
	}
	if exp, err := time.Parse(time.RFC3339, fmt.Sprint(answer["expires_at"])); err != nil || exp.Sub(e.clock.Now().Add(10*time.Minute)).Abs() > time.Second {
		t.Errorf("expires_at %v, want the start plus state_ttl (10m)", answer["expires_at"])
	}
	if strings.Contains(login.String(), testClientSecret) {
		t.Fatal("the login URL carries the client secret")
	}
	_, login2, _ := e.start(t, e.app, "bank", mine, testReturnTo)
	if login2.Query().Get("state") == q.Get("state") || login2.Query().Get("code_challenge") == q.Get("code_challenge") {
		t.Error("two starts share a state or a PKCE challenge")
	}
	_, plain, _ := e.start(t, e.app, "bank2", bank2Only, testReturnTo)
	if plain.Query().Has("code_challenge") {
		t.Error("a vendor without pkce got a code challenge")
	}
	started := 0
	for _, r := range e.auditRecords(t) {
		if r.Detail["change"] == oauth.ChangeAuthorizationStarted && r.App == "web" && r.Vendor != "" && r.ConsentID != "" {
			started++
		}
	}
	if started != 3 {
		t.Errorf("%d starts recorded, want 3", started)
	}
}

func TestOAuthCallbackState(t *testing.T) {
	e := newOAuthEnv(t)
	id := e.consent(t, "web", "bank", "bank2")
	failures := func() []audit.Record {
		var out []audit.Record
		for _, r := range e.auditRecords(t) {
			if r.Detail["change"] == oauth.ChangeAuthorizationFailed {
				out = append(out, r)
			}
		}
		return out
	}
	refused := func(t *testing.T, vendor string, q url.Values, status int, reason string) {
		t.Helper()
		n := len(failures())
		resp, body := e.callback(t, vendor, q, nil)
		if resp.StatusCode != status || !strings.Contains(string(body), string(refusal.AuthorizationFailure)) {
			t.Errorf("status %d %s, want %d", resp.StatusCode, body, status)
		}
		f := failures()
		if len(f) != n+1 || f[len(f)-1].Error != reason {
			t.Errorf("refusal recorded as %+v, want %q", f[len(f)-1:], reason)
		}
	}
	startState := func(vendor string) (string, url.Values) {
		_, login, _ := e.start(t, e.app, vendor, id, testReturnTo)
		return login.Query().Get("state"), login.Query()
	}

	t.Run("unknown state", func(t *testing.T) {
		refused(t, "bank", url.Values{"code": {"good-code"}, "state": {"never-issued"}}, 400, "state unknown or already used")
	})
	t.Run("no state", func(t *testing.T) {
		refused(t, "bank", url.Values{"code": {"good-code"}}, 400, "state missing")
	})
	t.Run("single use", func(t *testing.T) {
		state, login := startState("bank")
		resp, _ := e.callback(t, "bank", url.Values{"code": {"good-code"}, "state": {state}}, nil)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != testReturnTo || resp.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Fatalf("first use: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		// PKCE: the verifier sent with the code is the challenge's.
		e.bank.mu.Lock()
		v := e.bank.verifiers[len(e.bank.verifiers)-1]
		e.bank.mu.Unlock()
		sum := sha256.Sum256([]byte(v))
		if base64.RawURLEncoding.EncodeToString(sum[:]) != login.Get("code_challenge") {
			t.Error("the code verifier does not match the challenge")
		}
		refused(t, "bank", url.Values{"code": {"good-code"}, "state": {state}}, 400, "state unknown or already used")
	})
	t.Run("expired", func(t *testing.T) {
		state, _ := startState("bank")
		e.clock.Add(10*time.Minute + time.Second)
		refused(t, "bank", url.Values{"code": {"good-code"}, "state": {state}}, 400, "state expired")
		// A real authorization that expired is recorded as its consent's.
		if f := failures(); f[len(f)-1].ConsentID != id || f[len(f)-1].App != "web" {
			t.Errorf("expired authorization recorded without its consent: %+v", f[len(f)-1])
		}
		refused(t, "bank", url.Values{"code": {"good-code"}, "state": {state}}, 400, "state unknown or already used")
	})
	t.Run("another vendor's state", func(t *testing.T) {
		state, _ := startState("bank2")
		refused(t, "bank", url.Values{"code": {"good-code"}, "state": {state}}, 400, "state issued for another vendor")
		// Spent by the mismatch: it cannot be replayed at the right vendor.
		refused(t, "bank2", url.Values{"code": {"good-code"}, "state": {state}}, 400, "state unknown or already used")
	})
	t.Run("access denied", func(t *testing.T) {
		state, _ := startState("bank")
		refused(t, "bank", url.Values{"error": {"access_denied"}, "error_description": {"user said no"}, "state": {state}}, 403, "vendor answered access_denied")
		f := failures()
		if last := f[len(f)-1]; last.ConsentID != id || last.App != "web" || last.Vendor != "bank" {
			t.Errorf("refusal recorded without its consent: %+v", last)
		}
	})
	t.Run("vendor error text is not recorded", func(t *testing.T) {
		state, _ := startState("bank")
		refused(t, "bank", url.Values{"error": {"<script>alert(1)</script>"}, "state": {state}}, 400, "vendor answered other")
	})
	t.Run("bad code", func(t *testing.T) {
		state, _ := startState("bank")
		refused(t, "bank", url.Values{"code": {"stolen-code"}, "state": {state}}, 502, "code exchange failed: token endpoint answered 400 (invalid_grant)")
	})
	t.Run("consent revoked meanwhile", func(t *testing.T) {
		other := e.consent(t, "web", "bank")
		_, login, _ := e.start(t, e.app, "bank", other, testReturnTo)
		if _, err := e.reg.Revoke(t.Context(), "web", "app", other); err != nil {
			t.Fatal(err)
		}
		refused(t, "bank", url.Values{"code": {"good-code"}, "state": {login.Query().Get("state")}}, 403, "consent no longer usable")
		if _, err := e.reg.Tokens(t.Context(), other, "bank"); !errors.Is(err, consent.ErrNoTokens) {
			t.Errorf("tokens stored for a revoked consent: %v", err)
		}
	})
	t.Run("browser gets a page", func(t *testing.T) {
		resp, body := e.callback(t, "bank", url.Values{"code": {"secret-code-123"}, "state": {"st-<b>"}}, map[string]string{"Accept": "text/html,*/*"})
		if resp.StatusCode != 400 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(string(body), "unknown or has been used") || strings.Contains(string(body), "secret-code-123") || strings.Contains(string(body), "<b>") {
			t.Errorf("%d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	})
	// Nothing of the code exchange in the log or the audit log.
	_, _, tokens := e.bank.snapshot()
	var b bytes.Buffer
	if err := e.audit.Export(t.Context(), &b, audit.Filter{}); err != nil || b.Len() == 0 {
		t.Fatalf("export: %v (%d bytes)", err, b.Len())
	}
	for _, s := range append(tokens, "good-code", "stolen-code", "secret-code-123", testClientSecret, "user said no", "<script>") {
		if strings.Contains(e.logs.String(), s) || strings.Contains(b.String(), s) {
			t.Errorf("%q reached the log or the audit log", s)
		}
	}
}

// Tokens are attached, refreshed once however many calls need them, never in the
// clear at rest, and never lent to another app or to a tampered slot.
func TestOAuthTokens(t *testing.T) {
	e := newOAuthEnv(t)
	id := e.consent(t, "web", "bank")
	if resp, body := e.call(t, e.app, "/v/bank/api/me", id); resp.StatusCode != http.StatusFailedDependency ||
		!strings.Contains(string(body), string(refusal.AuthorizationNeeded)) {
		t.Fatalf("before authorising: %d %s", resp.StatusCode, body)
	}
	if calls, _, _ := e.bank.snapshot(); calls != 0 {
		t.Fatal("the vendor was called without the user's tokens")
	}
	e.authorize(t, "bank", id)
	c, _ := e.reg.Get(t.Context(), id)
	if len(c.Authorizations) != 1 || c.Authorizations[0].Vendor != "bank" || len(c.Authorizations[0].Scopes) != 1 || c.Authorizations[0].Scopes[0] != "read" {
		t.Errorf("evidence %+v", c.Authorizations)
	}

	resp, body := e.call(t, e.app, "/v/bank/api/me", id)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after authorising: %d %s", resp.StatusCode, body)
	}
	e.bank.mu.Lock()
	first := e.bank.apiAuth[len(e.bank.apiAuth)-1]
	e.bank.mu.Unlock()
	if first == "app-sent" || first == "" {
		t.Fatalf("the vendor got %q", first)
	}

	// Sealed at rest: the file never holds a token.
	assertNotInFile := func(t *testing.T) {
		t.Helper()
		raw, err := os.ReadFile(e.regPath)
		if err != nil {
			t.Fatal(err)
		}
		_, _, tokens := e.bank.snapshot()
		for _, tok := range tokens {
			if bytes.Contains(raw, []byte(tok)) {
				t.Errorf("state.db holds token %s… in the clear", tok[:6])
			}
		}
	}
	assertNotInFile(t)

	// An hour later: eight concurrent calls, one refresh.
	e.clock.Add(time.Hour)
	var wg sync.WaitGroup
	statuses := make([]int, 8)
	for i := range statuses {
		wg.Go(func() {
			resp, _ := e.call(t, e.app, "/v/bank/api/me", id)
			statuses[i] = resp.StatusCode
		})
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusOK {
			t.Errorf("concurrent call %d after expiry: %d", i, s)
		}
	}
	if _, refreshes, _ := e.bank.snapshot(); refreshes != 1 {
		t.Errorf("%d refreshes for one expiry, want 1", refreshes)
	}
	e.bank.mu.Lock()
	last := e.bank.apiAuth[len(e.bank.apiAuth)-1]
	e.bank.mu.Unlock()
	if last == first {
		t.Error("the call after expiry used the expired token")
	}
	assertNotInFile(t)

	// Another app, through a report-only route the policy would deny it: the
	// consent's tokens are not lent.
	callsBefore, _, _ := e.bank.snapshot()
	if resp, body := e.call(t, e.other, "/v/bank/api/report", id); resp.StatusCode != http.StatusFailedDependency {
		t.Errorf("another app under this consent: %d %s", resp.StatusCode, body)
	}
	if calls, _, _ := e.bank.snapshot(); calls != callsBefore {
		t.Error("the vendor was called for another app")
	}

	// Tampered: one flipped byte, or another consent's tokens in this slot.
	sealed, err := e.reg.Tokens(t.Context(), id, "bank")
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)/2] ^= 1
	if err := e.reg.SwapTokens(t.Context(), id, "bank", sealed, tampered); err != nil {
		t.Fatal(err)
	}
	if resp, body := e.call(t, e.app, "/v/bank/api/me", id); resp.StatusCode != http.StatusFailedDependency {
		t.Errorf("tampered tokens: %d %s", resp.StatusCode, body)
	}
	second := e.consent(t, "web", "bank")
	if err := e.reg.CompleteAuthorization(t.Context(), "web", second, consent.Authorization{Vendor: "bank", AuthorizedAt: e.clock.Now()}, sealed); err != nil {
		t.Fatal(err)
	}
	if resp, body := e.call(t, e.app, "/v/bank/api/me", second); resp.StatusCode != http.StatusFailedDependency {
		t.Errorf("another consent's tokens: %d %s", resp.StatusCode, body)
	}
	if calls, _, _ := e.bank.snapshot(); calls != callsBefore {
		t.Error("the vendor was called with tokens that do not open")
	}
	if !strings.Contains(e.logs.String(), "stored vendor tokens do not open") {
		t.Error("tokens that do not open were not logged")
	}
}

// A vendor that refuses the refresh token has withdrawn the grant: 424, and the
// dead tokens are removed. Revoking the consent removes them too.
func TestOAuthRefreshRefusedAndRevocation(t *testing.T) {
	e := newOAuthEnv(t)
	id := e.consent(t, "web", "bank")
	e.authorize(t, "bank", id)
	e.bank.mu.Lock()
	e.bank.refuse = true
	e.bank.mu.Unlock()
	e.clock.Add(time.Hour)
	if resp, body := e.call(t, e.app, "/v/bank/api/me", id); resp.StatusCode != http.StatusFailedDependency {
		t.Errorf("refresh refused: %d %s", resp.StatusCode, body)
	}
	if _, err := e.reg.Tokens(t.Context(), id, "bank"); !errors.Is(err, consent.ErrNoTokens) {
		t.Errorf("refused tokens kept: %v", err)
	}

	e.bank.mu.Lock()
	e.bank.refuse = false
	e.bank.mu.Unlock()
	e.authorize(t, "bank", id)
	if resp, body := e.call(t, e.app, "/v/bank/api/me", id); resp.StatusCode != http.StatusOK {
		t.Fatalf("authorised again: %d %s", resp.StatusCode, body)
	}
	if _, err := e.reg.Revoke(t.Context(), "web", "app", id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Tokens(t.Context(), id, "bank"); !errors.Is(err, consent.ErrNoTokens) {
		t.Errorf("tokens after revocation: %v", err)
	}
	calls, _, _ := e.bank.snapshot()
	// testPolicy ignores the consent's status: the credentials stage alone must refuse.
	if resp, body := e.call(t, e.app, "/v/bank/api/me", id); resp.StatusCode != http.StatusFailedDependency {
		t.Errorf("after revocation: %d %s", resp.StatusCode, body)
	}
	if after, _, _ := e.bank.snapshot(); after != calls {
		t.Error("the vendor was called after revocation")
	}
}

// The cost an end user's token adds to a call once it is stored and fresh: one
// bbolt read, the seal key from the provider, one AES-256-GCM open, one JSON decode.
func BenchmarkOAuthFreshToken(b *testing.B) {
	e := newOAuthEnv(b)
	id := e.consent(b, "web", "bank")
	e.authorize(b, "bank", id)
	bearer := e.gw.Broker().BearerFor("web", &policy.Consent{ID: id, App: "web", Status: consent.Active})
	login := e.gw.vendorsNow()["bank"].login
	want, _, err := bearer(b.Context(), login)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if tok, _, err := bearer(b.Context(), login); err != nil || tok != want {
			b.Fatal(tok, err)
		}
	}
}

// Callbacks that match no authorization need no credential: a flood of them
// is refused like one, but recorded only at the audit rate, and the next
// record counts the ones that were not.
func TestOAuthUnmatchedCallbackFloodIsRecordedAtARate(t *testing.T) {
	e := newOAuthEnv(t)
	failures := func() []audit.Record {
		var out []audit.Record
		for _, r := range e.auditRecords(t) {
			if r.Detail["change"] == oauth.ChangeAuthorizationFailed {
				out = append(out, r)
			}
		}
		return out
	}
	// The broker's clock is the test's: the flood takes no time at all on it,
	// so exactly the burst is recorded, and the rate refills only as it moves.
	const flood = 60
	for i := range flood {
		resp, body := e.callback(t, "bank", url.Values{"code": {"c"}, "state": {fmt.Sprintf("forged-%d", i)}}, nil)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), string(refusal.AuthorizationFailure)) {
			t.Fatalf("forged callback %d: %d %s", i, resp.StatusCode, body)
		}
	}
	recorded := len(failures())
	if recorded != oauth.UnmatchedBurst {
		t.Fatalf("%d of %d forged callbacks recorded, want the burst of %d", recorded, flood, oauth.UnmatchedBurst)
	}
	e.callback(t, "bank", url.Values{"code": {"c"}, "state": {"forged-early"}}, nil)
	if n := len(failures()); n != recorded {
		t.Fatalf("a forged callback before the rate refilled was recorded (%d records)", n)
	}
	e.clock.Add(time.Second / oauth.UnmatchedRate)
	e.callback(t, "bank", url.Values{"code": {"c"}, "state": {"forged-last"}}, nil)
	f := failures()
	if len(f) != recorded+1 || f[len(f)-1].Detail["unrecorded_before"] != fmt.Sprint(flood+1-recorded) {
		t.Errorf("the record after the flood says %q unrecorded, want %d", f[len(f)-1].Detail["unrecorded_before"], flood+1-recorded)
	}
}

// rotateSeal puts a new keys.token_seal in service and, unless dropOld, keeps
// the one it replaces as keys.token_seal_previous.
func (e *oauthEnv) rotateSeal(t *testing.T, dropOld bool) {
	t.Helper()
	data, err := os.ReadFile(e.secretsFile)
	if err != nil {
		t.Fatal(err)
	}
	cur := regexp.MustCompile(`(?m)^  token_seal: (\w+)\n`).FindSubmatch(data)
	if cur == nil {
		t.Fatal("no token_seal in the secrets file")
	}
	next := make([]byte, 32)
	rand.Read(next)
	keys := "  token_seal: " + hex.EncodeToString(next) + "\n"
	if !dropOld {
		keys += "  token_seal_previous: " + string(cur[1]) + "\n"
	}
	data = regexp.MustCompile(`(?m)^  token_seal(_previous)?: \w+\n`).ReplaceAll(data, nil)
	data = append(data, keys...)
	if err := os.WriteFile(e.secretsFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Reload(); err != nil {
		t.Fatal(err)
	}
}

// Rotating keys.token_seal with the old key kept as token_seal_previous keeps
// end users authorised: their tokens open with the old key and are sealed again
// under the new one at their next use, after which the old key can go. Without
// it, they must authorise again (424).
func TestOAuthSealKeyRotation(t *testing.T) {
	e := newOAuthEnv(t)
	id := e.consent(t, "web", "bank")
	e.authorize(t, "bank", id)
	// A login started before the rotation and finished after it.
	_, login, _ := e.start(t, e.app, "bank", e.consent(t, "web", "bank"), testReturnTo)
	before, err := e.reg.Tokens(t.Context(), id, "bank")
	if err != nil {
		t.Fatal(err)
	}

	e.rotateSeal(t, false)
	if resp, body := e.call(t, e.app, "/v/bank/api/me", id); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the rotation, with the previous key kept: %d %s", resp.StatusCode, body)
	}
	after, err := e.reg.Tokens(t.Context(), id, "bank")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(before, after) {
		t.Fatal("the tokens were not sealed again under the new key")
	}
	if resp, body := e.callback(t, "bank", url.Values{"code": {"good-code"}, "state": {login.Query().Get("state")}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a login started before the rotation: %d %s", resp.StatusCode, body)
	}

	// The key before is retired: the resealed tokens open with the new key alone.
	e.rotateSealKeepCurrent(t)
	if resp, body := e.call(t, e.app, "/v/bank/api/me", id); resp.StatusCode != http.StatusOK {
		t.Errorf("after retiring the previous key: %d %s", resp.StatusCode, body)
	}

	// A rotation without keeping the old key: the end user must authorise again.
	e.rotateSeal(t, true)
	if resp, body := e.call(t, e.app, "/v/bank/api/me", id); resp.StatusCode != http.StatusFailedDependency {
		t.Errorf("after a rotation that dropped the old key: %d %s", resp.StatusCode, body)
	}
}

// rotateSealKeepCurrent removes keys.token_seal_previous.
func (e *oauthEnv) rotateSealKeepCurrent(t *testing.T) {
	t.Helper()
	data, err := os.ReadFile(e.secretsFile)
	if err != nil {
		t.Fatal(err)
	}
	data = regexp.MustCompile(`(?m)^  token_seal_previous: \w+\n`).ReplaceAll(data, nil)
	if err := os.WriteFile(e.secretsFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Reload(); err != nil {
		t.Fatal(err)
	}
}
