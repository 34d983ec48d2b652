package sandbox

import (
	"crypto/x509/pkix"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

const (
	appRedirect = "https://app.example.test/banqware/return"
	appCallback = "https://consentgate.example.test/callbacks/banqware"
)

// banqwareSession drives the hub as consentgate would, holding the CSR certificate.
type banqwareSession struct {
	t   *testing.T
	c   *http.Client
	srv *Server
}

func newBanqwareSession(t *testing.T, pki *testPKI, srv *Server) *banqwareSession {
	cert := clientCert(t, pki.banqware, companySubject(testCompanyICO))
	return &banqwareSession{t: t, c: newClient(t, pki, cert), srv: srv}
}

func (b *banqwareSession) do(method, path, body string, wantStatus int) map[string]any {
	b.t.Helper()
	resp := send(b.t, b.c, method, b.srv.URL+path, body, "Content-Type", "application/json", "Accept", "application/json")
	if resp.status != wantStatus {
		b.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.status, wantStatus, resp.body)
	}
	if len(resp.body) == 0 {
		return nil
	}
	return decode[map[string]any](b.t, resp.body)
}

func (b *banqwareSession) register() {
	b.t.Helper()
	b.do("PUT", "/sandbox/management-resources/api/tenant/urls",
		`{"redirectUrls":["`+appRedirect+`"],"updateCallbackUrls":["`+appCallback+`"]}`, http.StatusOK)
}

func (b *banqwareSession) user(clientID string) string {
	b.t.Helper()
	u := b.do("POST", "/sandbox/user-resources/api/user", `{"clientId":"`+clientID+`"}`, http.StatusCreated)
	return u["userId"].(string)
}

func (b *banqwareSession) consent(userID string) map[string]any {
	b.t.Helper()
	return b.do("POST", "/sandbox/consent-resources/api/user/id/"+userID+"/consent",
		`{"bankId":"KOMBCZPP","bankIdType":"BIC","redirectUrl":"`+appRedirect+`"}`, http.StatusCreated)
}

// authorize follows the authorization URL as the user's browser would, without a certificate.
func authorize(t *testing.T, pki *testPKI, authorizationURL string) *url.URL {
	t.Helper()
	resp := send(t, newClient(t, pki), http.MethodGet, authorizationURL, "")
	if resp.status != http.StatusFound {
		t.Fatalf("authorize: status %d: %s", resp.status, resp.body)
	}
	back, err := url.Parse(resp.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return back
}

func TestBanqwareConsentUpdateDataAndErasure(t *testing.T) {
	pki := newTestPKI(t)
	set := startSet(t, testConfig(t, pki))
	b := newBanqwareSession(t, pki, set.Banqware)
	b.register()
	userID := b.user("onboarding-4711")
	consent := b.consent(userID)
	consentID := consent["consentId"].(string)
	consentPath := "/sandbox/consent-resources/api/user/id/" + userID + "/consent/" + consentID
	accountsPath := "/sandbox/account-info-resources/api/user/id/" + userID + "/accounts"
	kycPath := "/sandbox/kyc-resources/api/user/id/" + userID + "/kyc"
	updatesPath := "/sandbox/update-resources/api/user/id/" + userID + "/consent/" + consentID + "/update"

	authURL, _ := consent["authorizationUrl"].(string)
	if consent["status"] != "requested" || !strings.HasPrefix(authURL, set.Banqware.URL+"/sandbox/authorize/") {
		t.Fatalf("new consent %v", consent)
	}
	if got := b.do("GET", consentPath, "", http.StatusOK)["status"]; got != "requested" {
		t.Errorf("consent status %v before authorisation", got)
	}
	// Nothing to read and nothing to update before the user authorises.
	b.do("GET", accountsPath, "", http.StatusNotFound)
	b.do("GET", kycPath, "", http.StatusNotFound)
	b.do("POST", updatesPath, `{"callbackUrl":"`+appCallback+`"}`, http.StatusConflict)

	back := authorize(t, pki, authURL)
	if back.Scheme+"://"+back.Host+back.Path != appRedirect || back.Query().Get("consentId") != consentID || back.Query().Get("status") != "given" {
		t.Errorf("redirected to %s", back)
	}
	if got := b.do("GET", consentPath, "", http.StatusOK); got["status"] != "given" || got["givenAt"] == nil {
		t.Errorf("consent after authorisation %v", got)
	}
	// Given, but no update yet: the hub still holds nothing.
	b.do("GET", accountsPath, "", http.StatusNotFound)

	update := b.do("POST", updatesPath, `{"callbackUrl":"`+appCallback+`"}`, http.StatusCreated)
	updateID, _ := update["updateId"].(string)
	updatePath := "/sandbox/update-resources/api/user/id/" + userID + "/update/" + updateID
	if got := b.do("GET", updatePath, "", http.StatusOK); got["status"] != "completed" || got["consentId"] != consentID {
		t.Errorf("update %v", got)
	}

	accounts := decode[struct{ Data []bqAccount }](t, send(t, b.c, "GET", set.Banqware.URL+accountsPath, "").body)
	if len(accounts.Data) == 0 {
		t.Fatal("no accounts after a completed update")
	}
	for _, a := range accounts.Data {
		if a.ConsentID != consentID || a.BankID != "KOMBCZPP" || !validIBAN(a.IBAN) || a.OwnerName == "" || a.Balance.Amount == "" {
			t.Errorf("account %+v", a)
		}
	}
	kyc := decode[bqKYC](t, send(t, b.c, "GET", set.Banqware.URL+kycPath, "").body)
	if kyc.ConsentID != consentID || kyc.FirstName == "" || kyc.LastName == "" || kyc.BirthDate == "" ||
		!validBirthNumber(kyc.BirthNumber) || kyc.Address.City == "" {
		t.Errorf("kyc %+v", kyc)
	}

	// Erasure takes the consent, its updates and everything they acquired.
	b.do("DELETE", consentPath, "", http.StatusNoContent)
	b.do("GET", consentPath, "", http.StatusNotFound)
	b.do("GET", updatePath, "", http.StatusNotFound)
	b.do("GET", accountsPath, "", http.StatusNotFound)
	b.do("GET", kycPath, "", http.StatusNotFound)
	b.do("DELETE", consentPath, "", http.StatusNotFound)

	for _, r := range set.Banqware.Requests() {
		if r.ClientCert == nil && !strings.HasPrefix(r.Path, "/sandbox/authorize/") {
			t.Errorf("%s %s recorded without the client certificate", r.Method, r.Path)
		}
	}
}

// Data follows consents: erasing one consent keeps what another one acquired, and KYC is
// the latest acquisition still held.
func TestBanqwareErasureIsPerConsent(t *testing.T) {
	pki := newTestPKI(t)
	set := startSet(t, testConfig(t, pki))
	b := newBanqwareSession(t, pki, set.Banqware)
	b.register()
	userID := b.user("")
	consentPath := "/sandbox/consent-resources/api/user/id/" + userID + "/consent/"
	var ids []string
	for range 2 {
		c := b.consent(userID)
		authorize(t, pki, c["authorizationUrl"].(string))
		id := c["consentId"].(string)
		b.do("POST", "/sandbox/update-resources/api/user/id/"+userID+"/consent/"+id+"/update", `{}`, http.StatusCreated)
		ids = append(ids, id)
	}
	accountConsents := func() []string {
		var out []string
		for _, a := range b.do("GET", "/sandbox/account-info-resources/api/user/id/"+userID+"/accounts", "", http.StatusOK)["data"].([]any) {
			out = append(out, a.(map[string]any)["consentId"].(string))
		}
		return out
	}
	kycConsent := func() any {
		return b.do("GET", "/sandbox/kyc-resources/api/user/id/"+userID+"/kyc", "", http.StatusOK)["consentId"]
	}

	if got := accountConsents(); len(got) != 4 || got[0] != ids[0] || got[3] != ids[1] {
		t.Errorf("accounts come from consents %v, want two each from %v in order", got, ids)
	}
	if got := kycConsent(); got != ids[1] {
		t.Errorf("kyc from consent %v, want the latest, %s", got, ids[1])
	}

	b.do("DELETE", consentPath+ids[1], "", http.StatusNoContent)
	if got := accountConsents(); len(got) != 2 || got[0] != ids[0] || got[1] != ids[0] {
		t.Errorf("after erasing %s, accounts come from %v", ids[1], got)
	}
	if got := kycConsent(); got != ids[0] {
		t.Errorf("after erasing %s, kyc from consent %v", ids[1], got)
	}
}

func TestBanqwareRefusals(t *testing.T) {
	pki := newTestPKI(t)
	set := startSet(t, testConfig(t, pki))
	b := newBanqwareSession(t, pki, set.Banqware)
	b.register()
	userID := b.user("taken")
	otherUser := b.user("")
	consentID := b.consent(userID)["consentId"].(string)

	tests := []struct {
		name   string
		method string
		path   string
		body   string
		status int
		want   string // in the message
	}{
		{"duplicate clientId", "POST", "/sandbox/user-resources/api/user", `{"clientId":"taken"}`, 409, "clientId"},
		{"unregistered redirect", "POST", "/sandbox/consent-resources/api/user/id/" + userID + "/consent",
			`{"bankId":"KOMBCZPP","bankIdType":"BIC","redirectUrl":"https://evil.example/"}`, 400, "redirectUrl"},
		{"bank missing", "POST", "/sandbox/consent-resources/api/user/id/" + userID + "/consent",
			`{"redirectUrl":"` + appRedirect + `"}`, 400, "bankId"},
		{"unknown user", "POST", "/sandbox/consent-resources/api/user/id/nobody/consent",
			`{"bankId":"KOMBCZPP","bankIdType":"BIC","redirectUrl":"` + appRedirect + `"}`, 404, "user"},
		{"another user's consent", "GET", "/sandbox/consent-resources/api/user/id/" + otherUser + "/consent/" + consentID, "", 404, "consent"},
		{"update before consent is given", "POST", "/sandbox/update-resources/api/user/id/" + userID + "/consent/" + consentID + "/update",
			`{}`, 409, "requested"},
		{"unknown update", "GET", "/sandbox/update-resources/api/user/id/" + userID + "/update/nope", "", 404, "update"},
		{"no redirect URLs", "PUT", "/sandbox/management-resources/api/tenant/urls", `{"redirectUrls":[]}`, 400, "redirectUrls"},
		{"relative callback URL", "PUT", "/sandbox/management-resources/api/tenant/urls",
			`{"redirectUrls":["` + appRedirect + `"],"updateCallbackUrls":["/callback"]}`, 400, "updateCallbackUrls"},
		{"malformed JSON", "POST", "/sandbox/user-resources/api/user", `{"clientId":`, 400, "JSON"},
		{"wrong method", "PATCH", "/sandbox/consent-resources/api/user/id/" + userID + "/consent/" + consentID, `{}`, 405, "PATCH"},
		{"unknown path", "GET", "/sandbox/payment-resources/api/payments", "", 404, "no such resource"},
		{"outside the sandbox", "GET", "/production/user-resources/api/user", "", 404, "no such resource"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := set.Banqware.Count()
			got := b.do(tt.method, tt.path, tt.body, tt.status)
			if msg, _ := got["message"].(string); !strings.Contains(msg, tt.want) {
				t.Errorf("message %q does not name %q", msg, tt.want)
			}
			if got["status"] != float64(tt.status) || got["error"] != http.StatusText(tt.status) || got["path"] != tt.path || got["timestamp"] == nil {
				t.Errorf("error body %v", got)
			}
			if rec := lastRecorded(t, set.Banqware, n+1); rec.Status != tt.status {
				t.Errorf("recorded status %d", rec.Status)
			}
		})
	}

	// The update callback must be registered too.
	given := b.consent(userID)
	authorize(t, pki, given["authorizationUrl"].(string))
	b.do("POST", "/sandbox/update-resources/api/user/id/"+userID+"/consent/"+given["consentId"].(string)+"/update",
		`{"callbackUrl":"https://evil.example/cb"}`, http.StatusBadRequest)
}

func TestBanqwareRequiresClientCertificate(t *testing.T) {
	pki := newTestPKI(t)
	set := startSet(t, testConfig(t, pki))
	b := newBanqwareSession(t, pki, set.Banqware)
	b.register()
	consent := b.consent(b.user(""))

	noCert := newClient(t, pki)
	for _, path := range []string{"/sandbox/user-resources/api/user", "/sandbox/nowhere", "/"} {
		n := set.Banqware.Count()
		resp := send(t, noCert, http.MethodPost, set.Banqware.URL+path, `{}`)
		if resp.status != http.StatusForbidden || !strings.Contains(decode[map[string]any](t, resp.body)["message"].(string), "certificate") {
			t.Errorf("POST %s without certificate: status %d: %s", path, resp.status, resp.body)
		}
		if rec := lastRecorded(t, set.Banqware, n+1); rec.Status != http.StatusForbidden || rec.ClientCert != nil {
			t.Errorf("recorded status %d, certificate %v", rec.Status, rec.ClientCert)
		}
	}
	// The bank's login page is for browsers and needs none.
	authorize(t, pki, consent["authorizationUrl"].(string))

	// The certificate need not carry an organisation or IČO: only kb asks for those.
	plain := clientCert(t, pki.banqware, pkix.Name{CommonName: "consentgate egress"})
	resp := send(t, newClient(t, pki, plain), http.MethodPost, set.Banqware.URL+"/sandbox/user-resources/api/user", `{}`)
	if resp.status != http.StatusCreated {
		t.Errorf("certificate without IČO: status %d: %s", resp.status, resp.body)
	}
}

// banqware's production API takes calls only from the addresses a company lists: a
// connection from another peer is closed before TLS and counted; one from a listed
// address is served.
func TestBanqwareSourceAllowlist(t *testing.T) {
	pki := newTestPKI(t)
	cfg := testConfig(t, pki)
	cfg.BanqwareSources = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
	set := startSet(t, cfg)
	cert := clientCert(t, pki.banqware, companySubject(testCompanyICO))
	from := func(ip string) *http.Client {
		c := newClient(t, pki, cert)
		c.Transport.(*http.Transport).DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext
		return c
	}
	if resp, err := trySend(from("127.0.0.1"), http.MethodGet, set.Banqware.URL+"/", ""); err == nil {
		t.Fatalf("a call from 127.0.0.1 got status %d", resp.status)
	}
	if set.Banqware.RefusedPeers() == 0 || set.Banqware.Count() != 0 {
		t.Errorf("refused peers %d, requests %d: want the connection refused before any request", set.Banqware.RefusedPeers(), set.Banqware.Count())
	}
	if _, err := trySend(from("127.0.0.2"), http.MethodGet, set.Banqware.URL+"/", ""); err != nil {
		t.Fatalf("a call from the listed address: %v", err)
	}
	if set.Banqware.Count() != 1 {
		t.Errorf("%d requests from the listed address reached banqware", set.Banqware.Count())
	}
	// Other sandboxes keep no allowlist.
	if set.KB.RefusedPeers() != 0 {
		t.Error("kb refused a peer")
	}
}
