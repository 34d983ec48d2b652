package sandbox

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consentgate/consentgate/certs"
)

// testPKI is every certificate the sandbox tests need, generated fresh for each test.
type testPKI struct {
	serverRoots *x509.CertPool // trusts the sandboxes' serving certificate
	serving     tls.Certificate
	ica         *certs.CA // stands for I.CA / PostSignum
	banqware    *certs.CA
	other       *certs.CA // trusted by no sandbox
}

const testCompanyICO = "27082440" // check digit valid; certs.ValidateICO is asserted below

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	if err := certs.ValidateICO(testCompanyICO); err != nil {
		t.Fatalf("test IČO: %v", err)
	}
	serverCA := newTestCA(t, "sandbox test server CA")
	cert, key, err := serverCA.Issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		t.Fatalf("issuing serving certificate: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(serverCA.Cert)
	return &testPKI{
		serverRoots: roots,
		serving:     tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert},
		ica:         newTestCA(t, "I.CA test root"),
		banqware:    newTestCA(t, "banqware test client CA"),
		other:       newTestCA(t, "unrelated CA"),
	}
}

func newTestCA(t *testing.T, name string) *certs.CA {
	t.Helper()
	ca, err := certs.NewCA(pkix.Name{CommonName: name, Organization: []string{"consentgate tests"}}, time.Hour)
	if err != nil {
		t.Fatalf("creating CA %q: %v", name, err)
	}
	return ca
}

func poolOf(ca *certs.CA) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// clientCert is a qualified company seal for subject: what KB and banqware take.
func clientCert(t *testing.T, ca *certs.CA, subject pkix.Name) tls.Certificate {
	t.Helper()
	seal, _ := certs.QualifiedStatements(certs.KindQualifiedSeal)
	return issueCert(t, ca, &x509.Certificate{
		Subject:         subject,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		ExtraExtensions: []pkix.Extension{seal},
	})
}

func issueCert(t *testing.T, ca *certs.CA, tmpl *x509.Certificate) tls.Certificate {
	t.Helper()
	cert, key, err := ca.Issue(tmpl)
	if err != nil {
		t.Fatalf("issuing client certificate %q: %v", tmpl.Subject.CommonName, err)
	}
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
}

// serverCert is the technological server certificate KB's terms ask for: serverAuth only,
// the company name and IČO in the CN, I.CA's client id in serialNumber.
func serverCert(t *testing.T, ca *certs.CA, ico string) tls.Certificate {
	t.Helper()
	return issueCert(t, ca, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "Consentgate Test s.r.o., IČO " + ico, SerialNumber: "ICA - 10123456"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
}

// companySubject is what an I.CA qualified seal carries: organisation name and the IČO as
// eIDAS organizationIdentifier.
func companySubject(ico string) pkix.Name {
	return pkix.Name{
		CommonName:   "Consentgate Test s.r.o.",
		Organization: []string{"Consentgate Test s.r.o."},
		Country:      []string{"CZ"},
		ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: certs.OIDOrganizationIdentifier, Value: "NTRCZ-" + ico},
		},
	}
}

func testConfig(t *testing.T, pki *testPKI) Config {
	t.Helper()
	creds, err := NewCredentials()
	if err != nil {
		t.Fatalf("NewCredentials: %v", err)
	}
	return Config{
		Certificate:   pki.serving,
		ICARoots:      poolOf(pki.ica),
		BanqwareRoots: poolOf(pki.banqware),
		Credentials:   creds,
	}
}

func startSet(t *testing.T, cfg Config) *Set {
	t.Helper()
	set, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := set.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return set
}

// fakeClock is the sandboxes' clock in tests; handlers read it from their own goroutines.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newClient trusts the sandboxes and presents the given client certificates. Compression
// is left to the tests, which must see Content-Encoding as it arrived.
func newClient(t *testing.T, pki *testPKI, clientCerts ...tls.Certificate) *http.Client {
	t.Helper()
	tr := &http.Transport{
		TLSClientConfig:    &tls.Config{RootCAs: pki.serverRoots, Certificates: clientCerts},
		ForceAttemptHTTP2:  true,
		DisableCompression: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport: tr,
		// Redirects are asserted, never followed: banqware sends browsers to app URLs.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
}

// newForcingClient presents cert whatever CAs the server names, as a misconfigured or
// non-Go client would.
func newForcingClient(t *testing.T, pki *testPKI, cert tls.Certificate) *http.Client {
	t.Helper()
	c := newClient(t, pki)
	c.Transport.(*http.Transport).TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &cert, nil
	}
	return c
}

type response struct {
	status int
	header http.Header
	body   []byte
	proto  int
}

// send makes one request; headers are name, value pairs.
func send(t *testing.T, c *http.Client, method, url, body string, headers ...string) response {
	t.Helper()
	resp, err := trySend(c, method, url, body, headers...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp
}

func trySend(c *http.Client, method, url, body string, headers ...string) (response, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return response{}, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b, proto: resp.ProtoMajor}, nil
}

func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	return v
}

// lastRecorded asserts that the server recorded n requests and returns the last.
func lastRecorded(t *testing.T, s *Server, n int) Request {
	t.Helper()
	reqs := s.Requests()
	if len(reqs) != n || s.Count() != n {
		t.Fatalf("%s recorded %d requests (Count %d), want %d", s.Vendor, len(reqs), s.Count(), n)
	}
	return reqs[n-1]
}

func TestStartRefusesIncompleteConfig(t *testing.T) {
	pki := newTestPKI(t)
	good := testConfig(t, pki)
	shortKey := strings.Repeat("k", biometricKeyMinLen-1)
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no serving certificate", func(c *Config) { c.Certificate = tls.Certificate{} }, "Certificate"},
		{"no I.CA roots", func(c *Config) { c.ICARoots = nil }, "ICARoots"},
		{"no banqware roots", func(c *Config) { c.BanqwareRoots = nil }, "BanqwareRoots"},
		{"empty kb api key", func(c *Config) { c.Credentials.KBAPIKey = "" }, "KBAPIKey"},
		{"empty finid secret", func(c *Config) { c.Credentials.FinIDClientSecret = "" }, "FinIDClientSecret"},
		{"short biometric key", func(c *Config) { c.Credentials.BiometricFlowAPIKey = shortKey }, "at least 47"},
		{"negative token ttl", func(c *Config) { c.FinIDTokenTTL = -time.Second }, "FinIDTokenTTL"},
		{"negative rate limit", func(c *Config) { c.AirbankRateLimit = -1 }, "AirbankRateLimit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.mutate(&cfg)
			set, err := Start(cfg)
			if err == nil {
				set.Close()
				t.Fatal("Start accepted the config")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name %q", err, tt.want)
			}
			if strings.Contains(err.Error(), shortKey) {
				t.Errorf("error %q quotes the key", err)
			}
		})
	}
}

func TestSetFindsServersByVendor(t *testing.T) {
	pki := newTestPKI(t)
	set := startSet(t, testConfig(t, pki))
	want := []string{"kb", "airbank", "biometric", "finid", "banqware"}
	all := set.All()
	if len(all) != len(want) {
		t.Fatalf("All() has %d servers, want %d", len(all), len(want))
	}
	origins := map[string]bool{}
	for i, srv := range all {
		if srv.Vendor != want[i] {
			t.Errorf("All()[%d] is %q, want %q", i, srv.Vendor, want[i])
		}
		if set.Server(want[i]) != srv {
			t.Errorf("Server(%q) is not All()[%d]", want[i], i)
		}
		u, err := url.Parse(srv.URL)
		if err != nil || u.Scheme != "https" || u.Hostname() != "127.0.0.1" || u.Port() == "" || u.Path != "" {
			t.Errorf("%s URL %q is not an https origin on 127.0.0.1", srv.Vendor, srv.URL)
		}
		origins[srv.URL] = true
	}
	if len(origins) != len(want) {
		t.Errorf("servers share origins: %v", origins)
	}
	if set.Server("unknown") != nil {
		t.Error("Server(unknown) is not nil")
	}
	for _, v := range []struct {
		id  string
		srv *Server
	}{{"kb", set.KB}, {"airbank", set.Airbank}, {"biometric", set.Biometric}, {"finid", set.FinID}, {"banqware", set.Banqware}} {
		if set.Server(v.id) != v.srv {
			t.Errorf("Server(%q) is not the matching Set field", v.id)
		}
	}
}

func TestCloseStopsEveryServer(t *testing.T) {
	pki := newTestPKI(t)
	set, err := Start(testConfig(t, pki))
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, srv := range set.All() {
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(srv.URL, "https://"), time.Second)
		if err == nil {
			conn.Close()
			t.Errorf("%s still accepts connections after Close", srv.Vendor)
		}
	}
}

func TestServersSpeakHTTP2AndRefuseOldTLS(t *testing.T) {
	pki := newTestPKI(t)
	set := startSet(t, testConfig(t, pki))
	c := newClient(t, pki)
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pki.serverRoots, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11,
	}}}
	for _, srv := range set.All() {
		if resp := send(t, c, http.MethodGet, srv.URL+"/", ""); resp.proto != 2 {
			t.Errorf("%s answered over HTTP/%d, want HTTP/2", srv.Vendor, resp.proto)
		}
		if _, err := trySend(old, http.MethodGet, srv.URL+"/", ""); err == nil {
			t.Errorf("%s accepted TLS 1.1", srv.Vendor)
		}
	}
}

// Only kb and banqware ask for a client certificate, and each names only its own CA.
func TestOnlyMTLSVendorsRequestClientCertificates(t *testing.T) {
	pki := newTestPKI(t)
	set := startSet(t, testConfig(t, pki))
	want := map[string]*certs.CA{"kb": pki.ica, "banqware": pki.banqware}
	for _, srv := range set.All() {
		var asked [][]byte
		conn, err := tls.Dial("tcp", strings.TrimPrefix(srv.URL, "https://"), &tls.Config{
			RootCAs: pki.serverRoots,
			GetClientCertificate: func(info *tls.CertificateRequestInfo) (*tls.Certificate, error) {
				asked = info.AcceptableCAs
				if asked == nil {
					asked = [][]byte{}
				}
				return &tls.Certificate{}, nil
			},
		})
		if err != nil {
			t.Fatalf("%s: dial: %v", srv.Vendor, err)
		}
		conn.Close()
		ca, mtls := want[srv.Vendor]
		switch {
		case !mtls && asked != nil:
			t.Errorf("%s requested a client certificate", srv.Vendor)
		case mtls && asked == nil:
			t.Errorf("%s did not request a client certificate", srv.Vendor)
		case mtls && (len(asked) != 1 || !bytes.Equal(asked[0], ca.Cert.RawSubject)):
			t.Errorf("%s named acceptable CAs other than %q", srv.Vendor, ca.Cert.Subject.CommonName)
		}
	}
}

// Only kb takes a TLS server certificate as a client certificate: banqware's handshake fails
// with one its own CA issued.
func TestBanqwareRefusesServerCertificate(t *testing.T) {
	pki := newTestPKI(t)
	set := startSet(t, testConfig(t, pki))
	if resp, err := trySend(newClient(t, pki, serverCert(t, pki.banqware, testCompanyICO)), http.MethodGet, set.Banqware.URL+"/", ""); err == nil {
		t.Fatalf("request succeeded with status %d", resp.status)
	}
	if n := set.Banqware.Count(); n != 0 {
		t.Errorf("banqware recorded %d requests", n)
	}
}

// A certificate from a CA the vendor does not trust never reaches the handler.
func TestUntrustedClientCertificateFailsHandshake(t *testing.T) {
	pki := newTestPKI(t)
	set := startSet(t, testConfig(t, pki))
	tests := []struct {
		name string
		srv  *Server
		cert tls.Certificate
	}{
		{"kb, unrelated CA", set.KB, clientCert(t, pki.other, companySubject(testCompanyICO))},
		{"kb, banqware's CA", set.KB, clientCert(t, pki.banqware, companySubject(testCompanyICO))},
		{"banqware, unrelated CA", set.Banqware, clientCert(t, pki.other, companySubject(testCompanyICO))},
		{"banqware, I.CA", set.Banqware, clientCert(t, pki.ica, companySubject(testCompanyICO))},
		{"kb, a server certificate from an unrelated CA", set.KB, serverCert(t, pki.other, testCompanyICO)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.srv.Reset()
			resp, err := trySend(newForcingClient(t, pki, tt.cert), http.MethodGet, tt.srv.URL+"/", "")
			if err == nil {
				t.Fatalf("request succeeded with status %d", resp.status)
			}
			if n := tt.srv.Count(); n != 0 {
				t.Errorf("%s recorded %d requests", tt.srv.Vendor, n)
			}

			// crypto/tls clients (consentgate's among them) withhold a certificate whose issuer
			// the server did not name, so the request arrives without one and is refused.
			resp = send(t, newClient(t, pki, tt.cert), http.MethodGet, tt.srv.URL+"/", "")
			if resp.status != http.StatusForbidden {
				t.Errorf("default client: status %d, want 403", resp.status)
			}
			if rec := lastRecorded(t, tt.srv, 1); rec.ClientCert != nil || rec.Status != http.StatusForbidden {
				t.Errorf("default client: recorded certificate %v, status %d", rec.ClientCert, rec.Status)
			}
		})
	}
}

func TestRecordingKeepsWhatArrived(t *testing.T) {
	pki := newTestPKI(t)
	set := startSet(t, testConfig(t, pki))
	c := newClient(t, pki)
	srv := set.FinID

	big := strings.Repeat("x", recordedBodyLimit+100)
	send(t, c, http.MethodPost, srv.URL+"/api/v1/verifications?trace=1", big, "X-Test", "yes")
	got := lastRecorded(t, srv, 1)
	if got.Method != http.MethodPost || got.Path != "/api/v1/verifications" || got.RawQuery != "trace=1" {
		t.Errorf("recorded %s %s ? %s", got.Method, got.Path, got.RawQuery)
	}
	if got.Header.Get("X-Test") != "yes" {
		t.Errorf("recorded header X-Test = %q", got.Header.Get("X-Test"))
	}
	if len(got.Body) != recordedBodyLimit || string(got.Body) != big[:recordedBodyLimit] {
		t.Errorf("recorded %d body bytes, want the first %d", len(got.Body), recordedBodyLimit)
	}
	if got.Status != http.StatusUnauthorized || got.ClientCert != nil {
		t.Errorf("recorded status %d, client cert %v", got.Status, got.ClientCert)
	}

	// Callers get copies: changing one does not change the record.
	got.Header.Set("X-Test", "changed")
	got.Body[0] = 'y'
	again := srv.Requests()[0]
	if again.Header.Get("X-Test") != "yes" || again.Body[0] != 'x' {
		t.Error("Requests returned the record itself, not a copy")
	}

	srv.Reset()
	if srv.Count() != 0 || len(srv.Requests()) != 0 {
		t.Error("Reset left requests behind")
	}
	send(t, c, http.MethodGet, srv.URL+"/nowhere", "")
	lastRecorded(t, srv, 1)
}

func TestNewCredentials(t *testing.T) {
	a, err := NewCredentials()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewCredentials()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.validate(); err != nil {
		t.Fatalf("fresh credentials do not validate: %v", err)
	}
	if len(a.BiometricFlowAPIKey) < biometricKeyMinLen {
		t.Errorf("biometric key has %d characters", len(a.BiometricFlowAPIKey))
	}
	seen := map[string]bool{}
	for _, v := range append(secretValues(a), secretValues(b)...) {
		if url.QueryEscape(v) != v {
			t.Errorf("credential %q is not URL-safe", v)
		}
		if seen[v] {
			t.Errorf("credential value repeats: %q", v)
		}
		seen[v] = true
	}
}

func secretValues(c Credentials) []string {
	return []string{c.KBAPIKey, c.KBClientID, c.KBClientSecret, c.AirbankAPIKey, c.AirbankClientID, c.AirbankClientSecret,
		c.BiometricFlowAPIKey, c.FinIDClientID, c.FinIDClientSecret}
}

// Every sandbox is driven through accepted calls and refusals, with credentials in right and
// wrong places; no response and no log line may contain a configured credential.
func TestSecretsNeverLeaveTheSandboxes(t *testing.T) {
	pki := newTestPKI(t)
	cfg := testConfig(t, pki)
	var logs bytes.Buffer
	var logMu sync.Mutex
	cfg.Logger = slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &logMu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	set := startSet(t, cfg)
	cr := cfg.Credentials
	kbCert := clientCert(t, pki.ica, companySubject(testCompanyICO))
	c := newClient(t, pki, kbCert)
	wrong := "wrong-" + cr.KBAPIKey[:8]

	var responses []response
	do := func(method, url, body string, headers ...string) {
		responses = append(responses, send(t, c, method, url, body, headers...))
	}
	// The logins, right and wrong: the client secret goes to the token endpoint only.
	token := func(vendor string) string {
		l := loginOf(t, set, cfg, vendor)
		do("GET", l.server.URL+l.loginPath+"?"+l.loginParams("st").Encode(), "")
		loc, _ := url.Parse(responses[len(responses)-1].header.Get("Location"))
		p := l.loginParams("st")
		p.Set("client_id", l.secret)
		do("GET", l.server.URL+l.loginPath+"?"+p.Encode(), "")
		form := l.codeForm(loc.Query().Get("code"))
		do("POST", l.server.URL+l.tokenPath, form.Encode(), "Content-Type", formContent, "Authorization", basicAuth(l.clientID, l.secret[1:]))
		form.Set("client_id", l.clientID)
		form.Set("client_secret", l.secret)
		do("POST", l.server.URL+l.tokenPath, form.Encode(), "Content-Type", formContent)
		return decode[oauthTokens](t, responses[len(responses)-1].body).AccessToken
	}
	kbToken, abToken := token("kb"), token("airbank")
	if kbToken == "" || abToken == "" {
		t.Fatal("the logins issued no tokens")
	}
	do("GET", set.KB.URL+kbIdentityPath, "", "apikey", cr.KBAPIKey, "Authorization", "Bearer "+kbToken)
	do("GET", set.KB.URL+kbIdentityPath, "", "apikey", wrong, "Authorization", "Bearer "+kbToken)
	do("GET", set.KB.URL+kbIdentityPath, "", "apikey", cr.KBAPIKey, "Authorization", "Bearer "+wrong)
	ab := set.Airbank.URL + airbankBasePath + "personalData"
	do("GET", ab, "", "apikey", cr.AirbankAPIKey, "Authorization", "Bearer "+abToken)
	do("GET", ab, "", "apikey", cr.AirbankClientSecret, "Authorization", "Bearer "+cr.AirbankAPIKey)
	key := cr.BiometricFlowAPIKey
	do("POST", set.Biometric.URL+biometricCreatePath+"?flow_api_key="+key, `{"api_key":"`+key+`"}`)
	do("POST", set.Biometric.URL+biometricCreatePath, `{"api_key":"`+key[1:]+`"}`)
	do("POST", set.Biometric.URL+biometricCreatePath, `{"api_key":"`+key+`","metadata":{"face2face":{"photo1":"`+key+`!"}}}`)
	do("POST", set.Biometric.URL+biometricCreatePath, `{"api_key":"`+key+`","metadata":{"edocument":{"iin":{"value":"`+key+`"}}}}`)
	do("POST", set.Biometric.URL+biometricCreatePath, `{"api_key":"`+key+`","metadata":{"general":{"interchangeable_tech":["`+key+`"]}}}`)
	do("POST", set.Biometric.URL+biometricCreatePath, `{"api_key":`+key+`}`)
	do("POST", set.Biometric.URL+biometricCreatePath, `{"api_key":"`+key+`"}`)
	sessionID := decode[map[string]any](t, responses[len(responses)-1].body)["session_id"].(string)
	do("GET", set.Biometric.URL+biometricResultPath+"?session_id="+sessionID+"&flow_api_key="+key, "")
	do("GET", set.Biometric.URL+biometricResultPath+"?session_id="+key+"&flow_api_key="+key, "")
	do("GET", set.Biometric.URL+biometricVideoPath+"?session_id="+sessionID+"&flow_api_key="+key, "")
	do("POST", set.FinID.URL+finidTokenPath, "grant_type=client_credentials&client_id="+cr.FinIDClientID+"&client_secret="+cr.FinIDClientSecret,
		"Content-Type", "application/x-www-form-urlencoded")
	do("POST", set.FinID.URL+finidTokenPath, "grant_type=client_credentials&client_id="+cr.FinIDClientID+"&client_secret=x",
		"Content-Type", "application/x-www-form-urlencoded")

	secrets := secretValues(cr)
	for i, resp := range responses {
		for _, s := range secrets {
			if bytes.Contains(resp.body, []byte(s)) {
				t.Errorf("response %d body contains a credential: %s", i, resp.body)
			}
			for name, values := range resp.header {
				if strings.Contains(strings.Join(values, " "), s) {
					t.Errorf("response %d header %s contains a credential", i, name)
				}
			}
		}
	}
	logMu.Lock()
	logged := logs.String()
	logMu.Unlock()
	if n := strings.Count(logged, `"msg":"sandbox request"`); n != len(responses) {
		t.Errorf("logged %d request lines for %d requests", n, len(responses))
	}
	for _, s := range secrets {
		if strings.Contains(logged, s) {
			t.Errorf("log contains a credential:\n%s", logged)
		}
	}
	if strings.Contains(logged, "flow_api_key") {
		t.Errorf("log contains a query string:\n%s", logged)
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
