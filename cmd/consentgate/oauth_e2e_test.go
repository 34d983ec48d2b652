package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/internal/sandbox"
)

// vendorTokens are the bearer tokens, refresh tokens and codes the kb and airbank
// sandboxes have received so far: none may appear in any output.
func (e *devEnv) vendorTokens(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, s := range []*sandbox.Server{e.sandboxes.KB, e.sandboxes.Airbank} {
		for i, r := range s.Requests() {
			if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && tok != "app-sent-token" {
				out[fmt.Sprintf("%s access token %d", s.Vendor, i)] = tok
			}
			if r.Method == http.MethodPost {
				form, _ := url.ParseQuery(string(r.Body))
				for _, k := range []string{"refresh_token", "code", "code_verifier"} {
					if v := form.Get(k); v != "" {
						out[fmt.Sprintf("%s %s %d", s.Vendor, k, i)] = v
					}
				}
			}
		}
	}
	return out
}

// issuedBearer reports whether a recorded vendor call carried a bearer token the
// vendor accepted: the sandboxes answer 200 only to a live token they issued.
func (e *devEnv) issuedBearer(t *testing.T, vendor, header string) bool {
	t.Helper()
	r := lastRequest(t, e.sandboxes.Server(vendor))
	tok, ok := strings.CutPrefix(header, "Bearer ")
	return ok && tok != "" && tok != "app-sent-token" && r.Status == http.StatusOK
}

// browserClient is an end user's browser: no client certificate, trusts the
// gateway and the sandboxes (the banks' login pages), follows redirects.
func (e *devEnv) browserClient(t *testing.T) *http.Client {
	t.Helper()
	roots := x509.NewCertPool()
	for _, f := range []string{certs.DevRootCert, certs.DevSandboxRootCert} {
		data, err := os.ReadFile(e.pki.Path(f))
		if err != nil {
			t.Fatal(err)
		}
		roots.AppendCertsFromPEM(data)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// directAirbankToken logs the test user in at the Air Bank sandbox and exchanges
// the code itself, for a test that must see what Air Bank returns unminimised.
func (e *devEnv) directAirbankToken(t *testing.T) string {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.pool(t, certs.DevSandboxRootCert)}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	redirect := e.gw.Broker().RedirectURL("airbank")
	q := url.Values{"client_id": {e.creds.AirbankClientID}, "response_type": {"code"}, "redirect_uri": {redirect}, "state": {"direct"}}
	resp, _ := call(t, c, "GET", e.sandboxes.Airbank.URL+"/?"+q.Encode(), "", nil)
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("direct login: %d", resp.StatusCode)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {redirect},
		"client_id": {e.creds.AirbankClientID}, "client_secret": {e.creds.AirbankClientSecret}}
	req, _ := http.NewRequest("POST", e.sandboxes.Airbank.URL+"/openapi/glClientIdentity/abauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	tresp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer tresp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(tresp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("direct token: %d %v", tresp.StatusCode, err)
	}
	return tok.AccessToken
}

// startAuthorization asks the admin listener for a vendor login URL as client.
func (e *devEnv) startAuthorization(t *testing.T, client *http.Client, vendor, consentID, returnTo string) (*http.Response, map[string]any) {
	t.Helper()
	q := url.Values{"consent_id": {consentID}, "return_to": {returnTo}}
	resp, body := call(t, client, "GET", e.adminURL()+"/v1/oauth/"+vendor+"/start?"+q.Encode(), "", nil)
	var out map[string]any
	json.Unmarshal(body, &out)
	return resp, out
}

// authorize runs the end user's login at vendor for the dev app's consent id, the
// browser stopping where the app's page would load.
func (e *devEnv) authorize(t *testing.T, vendor, id string) {
	t.Helper()
	const returnTo = "http://127.0.0.1/kyc/done"
	resp, answer := e.startAuthorization(t, e.app, vendor, id, returnTo)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("start: %d %v", resp.StatusCode, answer)
	}
	browser := e.browserClient(t)
	browser.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if req.URL.String() == returnTo {
			return http.ErrUseLastResponse
		}
		return nil
	}
	if resp, body := call(t, browser, "GET", answer["authorize_url"].(string), "", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login at %s: %d %s", vendor, resp.StatusCode, body)
	}
}

// appPage stands for the app's own page the end user returns to.
type appPage struct {
	*httptest.Server
	mu   sync.Mutex
	hits []*url.URL
}

func newAppPage(t *testing.T) *appPage {
	p := &appPage{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.hits = append(p.hits, r.URL)
		p.mu.Unlock()
		w.Write([]byte("bank linked"))
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *appPage) seen() []*url.URL {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*url.URL(nil), p.hits...)
}

// refreshGrants counts the refresh_token grants a sandbox's token endpoint saw.
func refreshGrants(s *sandbox.Server) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Method == http.MethodPost && strings.Contains(string(r.Body), "grant_type=refresh_token") && r.Status == http.StatusOK {
			n++
		}
	}
	return n
}

// The whole brokered flow, as an app and its user's browser drive it: start on
// the admin listener, the bank's login page, the gateway's callback, back to the
// app's page; then calls with the user's tokens, a refresh after they expire, and
// a revocation that deletes them.
func TestDevOAuthFlowEndToEnd(t *testing.T) {
	dir := t.TempDir()
	const ttl = 2 * time.Second
	e, stop := startTestDevOpts(t, devOptions{dir: dir, tokenTTL: ttl})
	defer stop()
	page := newAppPage(t)
	returnTo := page.URL + "/kyc/bank-linked?session=s-42"
	id := e.createConsent(t, e.app, `{"subject":"customer-oauth-1","vendors":["airbank","kb"],"purposes":["kyc-onboarding"],
		"categories":["identity","address","document","national_id","pep"],"evidence":{"text":"online form","reference":"form-9"},"ttl":"720h"}`)
	paths := map[string]string{"airbank": "/openapi/glClientIdentity/v1/personalData", "kb": "/v1/clients/me/identity"}
	get := func(vendor string) (*http.Response, []byte) {
		return call(t, e.app, "GET", e.gatewayURL()+"/v/"+vendor+paths[vendor], "", under(id, "kyc-onboarding"))
	}

	// Not yet authorised: 424, and the bank is not called.
	for vendor := range paths {
		before := e.sandboxes.Server(vendor).Count()
		resp, body := get(vendor)
		if resp.StatusCode != http.StatusFailedDependency || !strings.Contains(string(body), "authorization-required") {
			t.Fatalf("%s before authorising: %d %s", vendor, resp.StatusCode, body)
		}
		if e.sandboxes.Server(vendor).Count() != before {
			t.Errorf("%s was called before the user authorised", vendor)
		}
	}

	browser := e.browserClient(t)
	for _, vendor := range []string{"airbank", "kb"} {
		resp, answer := e.startAuthorization(t, e.app, vendor, id, returnTo)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s start: %d %v", vendor, resp.StatusCode, answer)
		}
		login, err := url.Parse(answer["authorize_url"].(string))
		if err != nil {
			t.Fatal(err)
		}
		q := login.Query()
		wantClient := map[string]string{"airbank": e.creds.AirbankClientID, "kb": e.creds.KBClientID}[vendor]
		if q.Get("client_id") != wantClient || q.Get("response_type") != "code" || len(q.Get("state")) < 40 ||
			q.Get("redirect_uri") != e.callbacksURL()+"/oauth/"+vendor+"/callback" {
			t.Errorf("%s login URL %s", vendor, login)
		}
		if pkce := q.Get("code_challenge_method") == "S256" && q.Get("code_challenge") != ""; pkce != (vendor == "kb") {
			t.Errorf("%s login URL PKCE %v: %s", vendor, pkce, login)
		}
		if vendor == "kb" && q.Get("scope") != "client-identity" {
			t.Errorf("kb scope %q", q.Get("scope"))
		}
		if strings.Contains(login.String(), e.creds.AirbankClientSecret) || strings.Contains(login.String(), e.creds.KBClientSecret) {
			t.Fatal("the login URL carries a client secret")
		}

		// The browser: the bank's login page, consentgate's callback (on the
		// callbacks listener), the app's page.
		hits := len(page.seen())
		final, body := call(t, browser, "GET", login.String(), "", nil)
		if final.StatusCode != http.StatusOK || string(body) != "bank linked" || len(page.seen()) != hits+1 {
			t.Fatalf("%s login ended with %d %s", vendor, final.StatusCode, body)
		}
		if got := page.seen()[hits]; got.Path != "/kyc/bank-linked" || got.Query().Get("session") != "s-42" {
			t.Errorf("%s returned to %s", vendor, got)
		}
		// The same state a second time: refused, and nothing changes.
		resp, body = call(t, browser, "GET", e.callbacksURL()+"/oauth/"+vendor+"/callback?code=x&state="+url.QueryEscape(q.Get("state")), "", nil)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "authorization-failed") {
			t.Errorf("%s reused state: %d %s", vendor, resp.StatusCode, body)
		}
	}

	// The consent records the evidence.
	resp, body := call(t, e.app, "GET", e.adminURL()+"/v1/consents/"+id, "", nil)
	var c struct {
		Authorizations []struct {
			Vendor       string    `json:"vendor"`
			AuthorizedAt time.Time `json:"authorized_at"`
			Scopes       []string  `json:"scopes"`
		} `json:"authorizations"`
	}
	if err := json.Unmarshal(body, &c); err != nil || resp.StatusCode != http.StatusOK || len(c.Authorizations) != 2 {
		t.Fatalf("consent after authorising: %d %s", resp.StatusCode, body)
	}
	for _, a := range c.Authorizations {
		if a.AuthorizedAt.IsZero() || (a.Vendor == "kb") != (len(a.Scopes) == 1 && a.Scopes[0] == "client-identity") {
			t.Errorf("evidence %+v", a)
		}
	}

	// Calls carry the user's token; the answer is minimised.
	direct := e.directAirbankPersonalData(t)
	firstToken := map[string]string{}
	for vendor := range paths {
		resp, body := get(vendor)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s after authorising: %d %s", vendor, resp.StatusCode, body)
		}
		r := lastRequest(t, e.sandboxes.Server(vendor))
		firstToken[vendor] = r.Header.Get("Authorization")
		if !e.issuedBearer(t, vendor, firstToken[vendor]) {
			t.Errorf("%s call carried %q", vendor, firstToken[vendor])
		}
		// The birth number and the document number come as tokens
		// (kyc-onboarding tokenizes them).
		doc := decode(t, body)
		bn, _ := doc["birthNumber"].(string)
		if out := e.outcomeOf(t, resp.Header.Get("X-Request-Id")); bn == "" || !strings.HasPrefix(out.Detail["tokenized"], "birthNumber,") ||
			!strings.HasSuffix(out.Detail["tokenized"], "Document.number") {
			t.Errorf("%s birth number not tokenized: %q, outcome tokenized %q", vendor, bn, out.Detail["tokenized"])
		}
		if raw := direct["birthNumber"].(string); vendor == "airbank" && (strings.Contains(string(body), raw) || len(bn) != len(raw)) {
			t.Errorf("airbank birth number %q: the raw %q disclosed, or not a token of its shape", bn, raw)
		}
	}

	// Past the tokens' lifetime: refreshed before the call, which succeeds.
	time.Sleep(ttl + 500*time.Millisecond)
	for vendor := range paths {
		before := refreshGrants(e.sandboxes.Server(vendor))
		resp, body := get(vendor)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s after expiry: %d %s", vendor, resp.StatusCode, body)
		}
		auth := lastRequest(t, e.sandboxes.Server(vendor)).Header.Get("Authorization")
		if refreshGrants(e.sandboxes.Server(vendor)) <= before || auth == firstToken[vendor] || !e.issuedBearer(t, vendor, auth) {
			t.Errorf("%s: no refresh before the call (refresh grants %d → %d)", vendor, before, refreshGrants(e.sandboxes.Server(vendor)))
		}
	}
	tokens := e.vendorTokens(t)
	if len(tokens) < 6 {
		t.Fatalf("only %d vendor tokens seen: the secret checks below would prove little", len(tokens))
	}

	// Revoked: refused before any vendor call, and the tokens are gone.
	if resp, body := call(t, e.app, "DELETE", e.adminURL()+"/v1/consents/"+id, "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}
	for vendor := range paths {
		before := e.sandboxes.Server(vendor).Count()
		if resp, body := get(vendor); resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "consent revoked") {
			t.Errorf("%s after revocation: %d %s", vendor, resp.StatusCode, body)
		}
		if e.sandboxes.Server(vendor).Count() != before {
			t.Errorf("%s was called after revocation", vendor)
		}
	}
	e.assertNoSecrets(t, "log", e.logs.String())
	stop()

	// state.db itself: no tokens left for the consent, and none of the tokens in
	// the clear anywhere in the file.
	raw, err := os.ReadFile(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range tokens {
		if bytes.Contains(raw, []byte(v)) {
			t.Errorf("state.db holds the %s in the clear", name)
		}
	}
	db, err := bolt.Open(filepath.Join(dir, "state.db"), 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var kept, others int
	db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("oauth_tokens")).ForEach(func(k, _ []byte) error {
			if strings.HasPrefix(string(k), id+"\x00") {
				kept++
			} else {
				others++
			}
			return nil
		})
	})
	if kept != 0 || others == 0 {
		t.Errorf("state.db holds %d token entries of the revoked consent (and %d of the seeded ones)", kept, others)
	}

	// The audit log: started, authorised, revoked with its tokens deleted, and no token.
	exp := filepath.Join(dir, "audit.jsonl")
	if out, err := runCmd(t, "audit", "export", "--db", filepath.Join(dir, "audit.db"), "--out", exp, "--consent", id); err != nil {
		t.Fatalf("export: %v %s", err, out)
	}
	data, _ := os.ReadFile(exp)
	for _, want := range []string{`"change":"authorization_started"`, `"change":"authorized"`, `"vendor":"kb"`, `"scopes":"client-identity"`,
		`"tokens_deleted":"airbank,kb"`} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("audit export for the consent lacks %s", want)
		}
	}
	// The reused states were refused and recorded (they name no consent: a
	// state consentgate does not know cannot say which).
	all := filepath.Join(dir, "all.jsonl")
	if out, err := runCmd(t, "audit", "export", "--db", filepath.Join(dir, "audit.db"), "--out", all); err != nil {
		t.Fatalf("export: %v %s", err, out)
	}
	everything, _ := os.ReadFile(all)
	if n := bytes.Count(everything, []byte(`"error":"state unknown or already used"`)); n != 2 {
		t.Errorf("%d refused callbacks recorded, want 2", n)
	}
	e.assertNoSecrets(t, "audit export", string(everything))
}

// The admin route refuses what the app may not ask for.
func TestDevOAuthStartRefusals(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	page := "http://127.0.0.1:8080/kyc/done"
	other := e.issueApp(t, "pfm-mobile", "app")
	theirs := e.createConsent(t, other, `{"subject":"u-9","vendors":["airbank"],"purposes":["kyc-onboarding"],"categories":["identity"],"evidence":{"text":"x"},"ttl":"24h"}`)
	kbOnly := e.createConsent(t, e.app, `{"subject":"u-10","vendors":["kb"],"purposes":["kyc-onboarding"],"categories":["identity"],"evidence":{"text":"x"},"ttl":"24h"}`)
	tests := []struct {
		name      string
		client    *http.Client
		vendor    string
		consentID string
		returnTo  string
		status    int
		kind      string
	}{
		{"return_to elsewhere", e.app, "airbank", "dev-kyc", "https://evil.example/kyc/done", 400, "return-to-not-allowed"},
		{"return_to dot segments", e.app, "airbank", "dev-kyc", "http://127.0.0.1/a/../b", 400, "return-to-not-allowed"},
		{"return_to of another app", other, "airbank", theirs, page, 400, "return-to-not-allowed"},
		{"another app's consent", e.app, "airbank", theirs, page, 403, "consent-not-usable"},
		{"unknown consent", e.app, "airbank", "no-such-consent", page, 403, "consent-not-usable"},
		{"vendor not in the consent", e.app, "airbank", kbOnly, page, 403, "consent-not-usable"},
		{"vendor without a login", e.app, "finid", "dev-kyc", page, 404, "no-route"},
		{"auditor", e.clientFor(t, "auditor"), "airbank", "dev-kyc", page, 403, "role-not-allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, answer := e.startAuthorization(t, tt.client, tt.vendor, tt.consentID, tt.returnTo)
			if resp.StatusCode != tt.status || answer["type"] != "urn:consentgate:problem:"+tt.kind {
				t.Errorf("%d %v, want %d %s", resp.StatusCode, answer, tt.status, tt.kind)
			}
		})
	}
	_, export := call(t, e.clientFor(t, "auditor"), "GET", e.adminURL()+"/v1/audit/export", "", nil)
	started := 0
	for _, line := range strings.Split(string(export), "\n") {
		if strings.Contains(line, "authorization_started") {
			started++
			if strings.Contains(line, theirs) || strings.Contains(line, kbOnly) {
				t.Errorf("a refused start was recorded as started: %s", line)
			}
		}
	}
	if started == 0 {
		t.Error("the export holds no started authorization at all (dev's own): the check above proves nothing")
	}
	if resp, answer := e.startAuthorization(t, e.app, "airbank", kbOnly, page); resp.StatusCode != http.StatusForbidden {
		t.Errorf("vendor not in consent: %d %v", resp.StatusCode, answer)
	}
	if resp, answer := e.startAuthorization(t, e.app, "kb", kbOnly, page); resp.StatusCode != http.StatusOK {
		t.Errorf("allowed start: %d %v", resp.StatusCode, answer)
	}
}
