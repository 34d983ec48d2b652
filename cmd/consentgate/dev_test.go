package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/internal/logsink"
	"github.com/consentgate/consentgate/internal/sandbox"
	"github.com/consentgate/consentgate/internal/tier"
	"github.com/consentgate/consentgate/proxy"
	"github.com/consentgate/consentgate/secrets"
)

type devEnv struct {
	*devStack
	logs *logsink.Buffer
	app  *http.Client
}

// startTestDev runs `consentgate dev` in-process on free ports and stops it when
// the test ends.
func startTestDev(t *testing.T, dir string) *devEnv {
	t.Helper()
	e, stop := startTestDevStoppable(t, dir)
	t.Cleanup(stop)
	return e
}

// startTestDevStoppable is startTestDev with the stop in the caller's hands; the
// embedded policies are copied into dir, so a test may edit them.
func startTestDevStoppable(t *testing.T, dir string) (*devEnv, func()) {
	t.Helper()
	return startTestDevOpts(t, devOptions{dir: dir})
}

// startTestDevOpts is startTestDevStoppable with options (free ports and the
// embedded policies are filled in).
func startTestDevOpts(t *testing.T, o devOptions) (*devEnv, func()) {
	t.Helper()
	dir := o.dir
	seedDevPKI(t, dir)
	writeTestPolicies(t, filepath.Join(dir, "policies"))
	logs := &logsink.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	o.gateway, o.forward, o.admin, o.callbacks, o.ca, o.policies = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", filepath.Join(dir, "no-such-dir")
	// The race detector slows OPA down many times over; the default 50 ms bound
	// would turn a busy CI machine into "policy evaluation timed out" denials.
	o.policyTimeout = 5 * time.Second
	d, err := startDev(ctx, o, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.serve(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
			d.close()
		})
	}
	e := &devEnv{devStack: d, logs: logs}
	e.app = e.clientFor(t, "onboarding-web")
	// The sandboxes count what the tests send: dev's own logins of the seeded
	// consents are done.
	for _, s := range d.sandboxes.All() {
		s.Reset()
	}
	return e, stop
}

func (e *devEnv) clientFor(t *testing.T, app string) *http.Client {
	t.Helper()
	file := e.pki.Path(certs.AppCert(app))
	pair, err := tls.LoadX509KeyPair(file, certs.KeyFile(file))
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: e.pool(t, certs.DevRootCert), Certificates: []tls.Certificate{pair}}}}
}

func (e *devEnv) pool(t *testing.T, name string) *x509.CertPool {
	t.Helper()
	p, err := certs.LoadPool(e.pki.Path(name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// secretValues are every value the app must never see.
func (e *devEnv) secretValues(t *testing.T) map[string]string {
	t.Helper()
	c := e.creds
	out := map[string]string{
		"kb api key": c.KBAPIKey, "kb client secret": c.KBClientSecret,
		"airbank api key": c.AirbankAPIKey, "airbank client secret": c.AirbankClientSecret,
		"biometric key": c.BiometricFlowAPIKey, "finid client secret": c.FinIDClientSecret,
		"token seal key":          e.devSecret(t, "consentgate/keys", "token_seal"),
		"banqware callback token": e.devSecret(t, "vendors/banqware", "callback_token"),
	}
	for name, v := range e.vendorTokens(t) {
		out[name] = v
	}
	for _, f := range []string{certs.DevKBCert, certs.DevBanqwareCert} {
		key, err := os.ReadFile(certs.KeyFile(e.pki.Path(f)))
		if err != nil {
			t.Fatal(err)
		}
		// The base64 body of the key, without PEM armour.
		lines := strings.Split(strings.TrimSpace(string(key)), "\n")
		out[f+" key"] = strings.Join(lines[1:len(lines)-1], "")[:40]
	}
	return out
}

// devSecret reads a value from the secrets.yaml dev generated, not from the
// running provider, which may be a Vault that is down on purpose.
func (e *devEnv) devSecret(t *testing.T, path, key string) string {
	t.Helper()
	store, err := secrets.OpenFile(filepath.Join(e.cfg.DataDir, "secrets.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.Get(context.Background(), secrets.Ref{Path: path, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return s.Value
}

func (e *devEnv) assertNoSecrets(t *testing.T, where, text string) {
	t.Helper()
	for name, v := range e.secretValues(t) {
		if v != "" && strings.Contains(text, v) {
			t.Errorf("%s contains the %s", where, name)
		}
	}
}

// call is send with a JSON Content-Type for a body, and the headers given.
func call(t *testing.T, c *http.Client, method, url, body string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	h := http.Header{}
	if body != "" {
		h.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		h.Set(k, v)
	}
	return send(t, c, method, url, body, h)
}

// appSentCredentials are what a careless or malicious app sends itself.
var appSentCredentials = map[string]string{
	"Authorization": "Bearer app-sent-token",
	"Apikey":        "app-sent-apikey",
	"X-Api-Key":     "app-sent-x-api-key",
}

// under is the headers of a call under the dev-kyc consent for purpose, plus the
// credentials a careless app sends.
func under(consentID, purpose string) map[string]string {
	h := map[string]string{"X-Consent-Id": consentID, "X-Purpose": purpose}
	for k, v := range appSentCredentials {
		h[k] = v
	}
	return h
}

func lastRequest(t *testing.T, s *sandbox.Server) sandbox.Request {
	t.Helper()
	reqs := s.Requests()
	if len(reqs) == 0 {
		t.Fatalf("%s sandbox saw no request", s.Vendor)
	}
	return reqs[len(reqs)-1]
}

func assertNoAppCredentials(t *testing.T, r sandbox.Request) {
	t.Helper()
	for k, vs := range r.Header {
		for _, v := range vs {
			if strings.Contains(v, "app-sent") {
				t.Errorf("app-sent credential reached the vendor in %s", k)
			}
		}
	}
	if strings.Contains(string(r.Body), "app-sent") || strings.Contains(r.RawQuery, "app-sent") {
		t.Error("app-sent credential reached the vendor in the body or query")
	}
}

func TestDevEveryVendorThroughTheGateway(t *testing.T) {
	assertEveryVendor(t, startTestDev(t, t.TempDir()))
}

// assertEveryVendor calls each vendor through the gateway and checks that the
// sandbox got the right credentials and the app none of them.
func assertEveryVendor(t *testing.T, e *devEnv) {
	t.Helper()
	c := e.creds
	tests := []struct {
		purpose, vendor, method, path, body string
		wantField                           string
		check                               func(t *testing.T, r sandbox.Request)
	}{
		{"kyc-onboarding", "kb", "GET", "/v1/clients/me/identity", "", "birthNumber", func(t *testing.T, r sandbox.Request) {
			if r.ClientCert == nil {
				t.Fatal("kb saw no client certificate")
			}
			if ico, src, _ := certs.ICO(r.ClientCert); ico != certs.DevICO || src != certs.ICOFromCommonName {
				t.Errorf("kb client certificate IČO %q from %q, want %s from the CN", ico, src, certs.DevICO)
			}
			// The technological server certificate KB's terms ask for, and the log says it is one.
			if certs.KindOf(r.ClientCert) != certs.KindServer || certs.AllowsClientAuth(r.ClientCert) {
				t.Errorf("kb got a %s certificate, not the serverAuth-only server certificate", certs.KindOf(r.ClientCert))
			}
			if !strings.Contains(e.logs.String(), `"msg":"vendor client certificate in use","vendor":"kb","kind":"server","issuer_family":"ica","server_certificate_as_client":true`) {
				t.Error("the log does not say kb's client certificate is a server certificate")
			}
			if r.Header.Get("Apikey") != c.KBAPIKey || !e.issuedBearer(t, "kb", r.Header.Get("Authorization")) {
				t.Error("kb did not get the API key and the bearer token its login issued")
			}
		}},
		{"kyc-onboarding", "airbank", "GET", "/openapi/glClientIdentity/v1/personalData", "", "birthNumber", func(t *testing.T, r sandbox.Request) {
			if r.Header.Get("Apikey") != c.AirbankAPIKey || !e.issuedBearer(t, "airbank", r.Header.Get("Authorization")) {
				t.Error("airbank did not get the API key and the bearer token its login issued")
			}
			if r.ClientCert != nil {
				t.Error("airbank got a client certificate it does not ask for")
			}
		}},
		{"account-aggregation", "airbank", "GET", "/openapi/glClientIdentity/v1/accounts", "", "iban", nil},
		{"account-aggregation", "airbank", "GET", "/openapi/glClientIdentity/v1/cards", "", "cardNumber", nil},
		{"biometric-verification", "biometric", "POST", "/api/v1/flows/session/create/", `{"api_key":"app-sent-key","metadata":{"edocument":{"iin":{"value":"900315401233","changeable":false}}}}`, "session_id", func(t *testing.T, r sandbox.Request) {
			var body map[string]any
			if err := json.Unmarshal(r.Body, &body); err != nil || body["api_key"] != c.BiometricFlowAPIKey {
				t.Errorf("biometric did not get the flow API key in the body (%v)", err)
			}
		}},
		{"biometric-verification", "finid", "POST", "/api/v1/verifications", `{"iin":"900315401233","phone":"+77011234567","photo":"aGVsbG8gZmFjZQ=="}`, "pending", func(t *testing.T, r sandbox.Request) {
			auth := r.Header.Get("Authorization")
			if !strings.HasPrefix(auth, "Bearer ") || strings.Contains(auth, c.FinIDClientSecret) {
				t.Errorf("finid Authorization = %q", auth)
			}
		}},
		{"account-aggregation", "banqware", "POST", "/user-resources/api/user", `{"clientId":"onboarding-example"}`, "userId", func(t *testing.T, r sandbox.Request) {
			if r.ClientCert == nil || r.ClientCert.Subject.CommonName != "onboarding-example" {
				t.Errorf("banqware client certificate = %v", r.ClientCert)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.vendor+tt.path, func(t *testing.T) {
			resp, body := call(t, e.app, tt.method, e.gatewayURL()+"/v/"+tt.vendor+tt.path, tt.body, under("dev-kyc", tt.purpose))
			if resp.Header.Get("X-Consentgate-Decision-Id") == "" || resp.Header.Get("X-Consentgate-Withheld") == "" {
				t.Error("decision id or withheld count missing")
			}
			if resp.StatusCode/100 != 2 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if !strings.Contains(string(body), tt.wantField) {
				t.Errorf("response lacks %s: %s", tt.wantField, body)
			}
			r := lastRequest(t, e.sandboxes.Server(tt.vendor))
			assertNoAppCredentials(t, r)
			if tt.check != nil {
				tt.check(t, r)
			}
			e.assertNoSecrets(t, "response", string(body))
			assertFieldsMapped(t, e.cfg.Vendor(tt.vendor), r.Method, r.Path, body)
		})
	}
	e.assertNoSecrets(t, "log", e.logs.String())
}

// assertFieldsMapped checks that every field the sandbox returned has a data
// category in the vendor profile: policies speak in categories, and an unmapped
// field would be invisible to them.
func assertFieldsMapped(t *testing.T, v *configs.Vendor, method, path string, body []byte) {
	t.Helper()
	var doc any
	if json.Unmarshal(body, &doc) != nil {
		return
	}
	var fields map[string]string
	for _, op := range v.Operations {
		if op.Method == method && templateMatches(op.Path, strings.TrimPrefix(path, basePath(v))) {
			fields = op.Fields.Response
		}
	}
	var unmapped []string
	for _, p := range leafPaths(doc, "") {
		if !mapped(fields, p) {
			unmapped = append(unmapped, p)
		}
	}
	sort.Strings(unmapped)
	if len(unmapped) > 0 {
		t.Errorf("vendor %s %s %s: response fields without a data category in the profile: %v", v.ID, method, path, unmapped)
	}
}

func basePath(v *configs.Vendor) string {
	i := strings.Index(v.BaseURL[len("https://"):], "/")
	if i < 0 {
		return ""
	}
	return v.BaseURL[len("https://")+i:]
}

func templateMatches(tmpl, path string) bool {
	a, b := strings.Split(tmpl, "/"), strings.Split(path, "/")
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !strings.HasPrefix(a[i], "{") && a[i] != b[i] {
			return false
		}
	}
	return true
}

func mapped(fields map[string]string, p string) bool {
	for f := p; ; {
		if _, ok := fields[f]; ok {
			return true
		}
		i := strings.LastIndex(f, ".")
		if i < 0 {
			return false
		}
		f = f[:i]
	}
}

func leafPaths(v any, prefix string) []string {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch x := v.(type) {
	case map[string]any:
		var out []string
		for k, val := range x {
			out = append(out, leafPaths(val, join(k))...)
		}
		return out
	case []any:
		var out []string
		seen := map[string]bool{}
		for _, el := range x {
			for _, p := range leafPaths(el, prefix+"[]") {
				if !seen[p] {
					seen[p] = true
					out = append(out, p)
				}
			}
		}
		if len(x) == 0 || out == nil {
			return []string{prefix}
		}
		return out
	default:
		return []string{prefix}
	}
}

func TestDevDirectCallsWithoutCredentialsAreRefused(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	direct := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: e.pool(t, certs.DevSandboxRootCert), ServerName: "localhost"}}}
	calls := map[string]struct{ method, path, body string }{
		"kb":        {"GET", "/v1/clients/me/identity", ""},
		"airbank":   {"GET", "/openapi/glClientIdentity/v1/personalData", ""},
		"biometric": {"POST", "/api/v1/flows/session/create/", `{"metadata":{}}`},
		"finid":     {"POST", "/api/v1/verifications", `{"iin":"900315401233","phone":"+77011234567","photo":"aGVsbG8="}`},
		"banqware":  {"POST", "/sandbox/user-resources/api/user", `{"clientId":"x"}`},
	}
	for vendor, c := range calls {
		t.Run(vendor, func(t *testing.T) {
			s := e.sandboxes.Server(vendor)
			resp, body := call(t, direct, c.method, s.URL+c.path, c.body, nil)
			if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
				t.Errorf("direct call without credentials: %d %s", resp.StatusCode, body)
			}
			if s.Count() != 1 {
				t.Errorf("sandbox counted %d requests, want 1", s.Count())
			}
		})
	}
}

func TestDevRefusalsDoNotReachSandboxes(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	// dev's own logins of the seeded consents have reached kb and airbank.
	before := map[string]int{}
	for _, s := range e.sandboxes.All() {
		before[s.Vendor] = s.Count()
	}
	for _, path := range []string{"/v/unknown/x", "/v/airbank/openapi/glClientIdentity/v1/secrets", "/v/kb/v1/clients/me/identity/../../admin"} {
		resp, body := call(t, e.app, "GET", e.gatewayURL()+path, "", nil)
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d", path, resp.StatusCode)
		}
		if resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: Content-Type %q", path, resp.Header.Get("Content-Type"))
		}
		e.assertNoSecrets(t, "error body", string(body))
	}
	// Role auditor may not call vendors.
	resp, _ := call(t, e.clientFor(t, "auditor"), "GET", e.gatewayURL()+"/v/airbank/openapi/glClientIdentity/v1/personalData", "", nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("auditor: status %d", resp.StatusCode)
	}
	// No client certificate: the gateway, admin and forward listeners fail the
	// handshake, the gateway's too at the OAuth2 callback path: browsers come back
	// to the callbacks listener, which serves them that and no vendor route.
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.pool(t, certs.DevRootCert)}}}
	for _, addr := range []string{e.adminURL() + "/v1/policy/status", "https://" + e.srv.Addr(proxy.ListenForward) + "/",
		e.gatewayURL() + "/v/airbank/openapi/glClientIdentity/v1/personalData", e.gatewayURL() + "/oauth/airbank/callback"} {
		if resp, err := noCert.Get(addr); err == nil {
			resp.Body.Close()
			t.Errorf("%s answered a request without a client certificate", addr)
		}
	}
	for _, path := range []string{"/v/airbank/openapi/glClientIdentity/v1/personalData", "/v/kb/v1/clients/me/identity", "/oauth/airbank/callbackx", "/oauth/finid/callback"} {
		resp, body := call(t, noCert, "GET", e.callbacksURL()+path, "", under("dev-kyc", "kyc-onboarding"))
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s on the callbacks listener: %d %s", path, resp.StatusCode, body)
		}
	}
	for _, s := range e.sandboxes.All() {
		if s.Count() != before[s.Vendor] {
			t.Errorf("%s sandbox was called %d times", s.Vendor, s.Count()-before[s.Vendor])
		}
	}
	// The forward listener refuses a host no vendor profile owns.
	if resp, _ := call(t, e.app, "GET", "https://"+e.srv.Addr(proxy.ListenForward)+"/", "", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("forward listener: status %d", resp.StatusCode)
	}
}

var readyRE = regexp.MustCompile(`^ready gateway=https://127\.0\.0\.1:\d+ forward=https://127\.0\.0\.1:\d+ admin=https://127\.0\.0\.1:\d+ callbacks=https://127\.0\.0\.1:\d+ ca=https://localhost:\d+ policies=(\S+)$`)

// The printed curl commands must work when pasted: run them.
func TestDevPrintsReadyLineAndWorkingCurlCommands(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	var out bytes.Buffer
	e.printReady(&out)
	sc := bufio.NewScanner(&out)
	sc.Scan()
	if m := readyRE.FindStringSubmatch(sc.Text()); m == nil || m[1] != e.cfg.Policy.Dir {
		t.Fatalf("ready line %q (policies watched: %s)", sc.Text(), e.cfg.Policy.Dir)
	}
	var vendors []string
	console := false
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "curl ") {
			t.Fatalf("unexpected line %q", line)
		}
		if _, err := exec.LookPath("curl"); err != nil {
			tier.Needs(t, "curl")
			t.Fatalf("curl is needed to prove the printed commands work: %v", err)
		}
		if strings.HasSuffix(line, e.adminURL()+"/console/") {
			// The last line opens the console as the dev auditor.
			got, err := exec.Command("sh", "-c", line+" -w '\n%{http_code}'").Output()
			if err != nil || !strings.HasSuffix(string(got), "\n200") || !strings.Contains(string(got), "auditor (auditor)") {
				t.Errorf("%s: %v\n%s", line, err, got)
			}
			console = true
			continue
		}
		m := regexp.MustCompile(`/v/([a-z]+)/`).FindStringSubmatch(line)
		vendors = append(vendors, m[1])
		// Pasted twice, each works: no example collides with its own first run.
		var body string
		for range 2 {
			got, err := exec.Command("sh", "-c", line+" -w '\n%{http_code}'").Output()
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			var code string
			body, code, _ = strings.Cut(strings.TrimSpace(string(got)), "\n")
			if !strings.HasPrefix(code, "2") {
				t.Errorf("%s: status %s: %s", m[1], code, body)
			}
		}
		if !json.Valid([]byte(body)) || e.sandboxes.Server(m[1]).Count() == 0 {
			t.Errorf("%s: no vendor data: %s", m[1], body)
		}
		e.assertNoSecrets(t, "curl output", body)
	}
	if want := []string{"kb", "airbank", "biometric", "finid", "banqware"}; !slices.Equal(vendors, want) || !console {
		t.Errorf("curl commands for %v and the console %v, want %v and the console", vendors, console, want)
	}
}

func TestDevSecondRunReusesPKIAndSecrets(t *testing.T) {
	dir := t.TempDir()
	first, stop := startTestDevStoppable(t, dir)
	stop()
	root, _ := os.ReadFile(first.pki.Path(certs.DevRootCert))
	creds := first.creds
	info, err := os.Stat(filepath.Join(dir, "secrets.yaml"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("secrets.yaml: %v %v", info, err)
	}
	second := startTestDev(t, dir)
	again, _ := os.ReadFile(second.pki.Path(certs.DevRootCert))
	if !bytes.Equal(root, again) || second.creds != creds {
		t.Error("second run did not reuse the PKI and secrets")
	}
	resp, body := call(t, second.app, "GET", second.gatewayURL()+"/v/airbank/openapi/glClientIdentity/v1/cards", "", under("dev-kyc", "account-aggregation"))
	if resp.StatusCode != http.StatusOK {
		t.Errorf("second run: %d %s", resp.StatusCode, body)
	}
}

// devPKITemplate is a dev PKI (internal CA included) made once per test
// process: creating the CA's provisioner key runs a deliberately slow KDF, which
// the race detector makes take seconds, and most tests are not about it.
var devPKITemplate struct {
	once sync.Once
	dir  string
	err  error
}

// seedDevPKI gives a new dev folder a copy of the template PKI, as if dev had
// run there before; a folder that already has one keeps it.
func seedDevPKI(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "pki")); err == nil {
		return
	}
	devPKITemplate.once.Do(func() {
		tmpl, err := os.MkdirTemp("", "consentgate-dev-pki-")
		if err != nil {
			devPKITemplate.err = err
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		d, err := startDev(ctx, devOptions{dir: tmpl, gateway: "127.0.0.1:0", forward: "127.0.0.1:0", admin: "127.0.0.1:0",
			callbacks: "127.0.0.1:0", ca: "127.0.0.1:0", policies: filepath.Join(tmpl, "no-such-dir")}, slog.New(slog.DiscardHandler))
		if err != nil {
			devPKITemplate.err = err
			return
		}
		d.close()
		devPKITemplate.dir = filepath.Join(tmpl, "pki")
	})
	if devPKITemplate.err != nil {
		t.Fatalf("making the template dev PKI: %v", devPKITemplate.err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(dir, "pki"), os.DirFS(devPKITemplate.dir)); err != nil {
		t.Fatal(err)
	}
}

// A taken port ends dev at once, naming the flag that moves it, before the
// slow work (the PKI, the CA) starts; so does a --policies folder that is not
// there.
func TestDevRefusesBadStartBeforeSlowWork(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	free := "127.0.0.1:0"
	for name, o := range map[string]devOptions{
		"--admin " + held.Addr().String(): {gateway: free, forward: free, admin: held.Addr().String(), callbacks: free, ca: free},
		"--ca " + held.Addr().String():    {gateway: free, forward: free, admin: free, callbacks: free, ca: held.Addr().String()},
		"--policies ":                     {gateway: free, forward: free, admin: free, callbacks: free, ca: free, policies: "no-such-folder", policiesGiven: true},
	} {
		o.dir = t.TempDir()
		d, err := startDev(context.Background(), o, slog.New(slog.DiscardHandler))
		if err == nil {
			d.close()
			t.Fatalf("%s: dev started", name)
		}
		if !strings.Contains(err.Error(), name) {
			t.Errorf("the error does not name %q: %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(o.dir, "pki")); !os.IsNotExist(err) {
			t.Errorf("%s: the PKI was made before the refusal (%v)", name, err)
		}
	}
}

// A start that fails late releases all it started: every listener's port can
// be bound again, and the next start opens the audit log and the registry
// (bbolt locks them) and runs.
func TestDevReleasesEverythingOnAFailedStart(t *testing.T) {
	dir := t.TempDir()
	seedDevPKI(t, dir)
	// Writing the auditor's copy of the checkpoint key, after everything is up, fails.
	if err := os.Mkdir(filepath.Join(dir, "audit.pub"), 0o700); err != nil {
		t.Fatal(err)
	}
	o := devOptions{dir: dir, gateway: freeAddr(t), forward: freeAddr(t), admin: freeAddr(t), callbacks: freeAddr(t), ca: freeAddr(t),
		policies: filepath.Join(dir, "no-such-dir"), policyTimeout: 5 * time.Second}
	log := slog.New(slog.DiscardHandler)
	if d, err := startDev(context.Background(), o, log); err == nil || !strings.Contains(err.Error(), "audit.pub") {
		if d != nil {
			d.close()
		}
		t.Fatalf("start with an unwritable audit.pub: %v", err)
	}
	for _, addr := range []string{o.gateway, o.forward, o.admin, o.callbacks, o.ca} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("%s is still held after the failed start: %v", addr, err)
			continue
		}
		ln.Close()
	}
	if err := os.Remove(filepath.Join(dir, "audit.pub")); err != nil {
		t.Fatal(err)
	}
	d, err := startDev(context.Background(), o, log)
	if err != nil {
		t.Fatalf("the start after a failed one: %v", err)
	}
	d.close()
}

// writeTestPolicies puts the shipped policies where dev looks for its copy,
// with the tests' app pages (on loopback, any port) among the onboarding
// app's return URLs: the policy data is where an app's return URLs live.
func writeTestPolicies(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); err == nil {
		return
	}
	if err := configs.WritePolicies(dir); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data.yaml")
	raw, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	const shipped = "oauth_return_to: [https://onboarding.example-bank.cz/kyc/bank-linked]"
	if !strings.Contains(string(raw), shipped) {
		t.Fatalf("data.yaml no longer holds %q", shipped)
	}
	edited := strings.Replace(string(raw), shipped, "oauth_return_to: [https://onboarding.example-bank.cz/kyc/bank-linked, http://127.0.0.1/]", 1)
	if err := os.WriteFile(data, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
}
