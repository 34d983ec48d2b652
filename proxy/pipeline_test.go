package proxy

import (
	"bytes"
	"context"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/policy"
	"github.com/consentgate/consentgate/refusal"
)

func do(t testing.TB, c *http.Client, method, url, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// assertNoSecret fails if any injected secret value appears in out.
func assertNoSecret(t *testing.T, where, out string) {
	t.Helper()
	for name, v := range testSecrets {
		if strings.Contains(out, v) {
			t.Errorf("%s contains the %s secret", where, name)
		}
	}
}

func TestCredentialsInjectedAndAppCredentialsRemoved(t *testing.T) {
	env := newTestEnv(t)
	resp, body := do(t, env.client, "GET", env.gatewayURL+"/v/echo/things/42?x=1&flow_api_key=app-query-key&API_KEY=app-q2", "", map[string]string{
		"Authorization":   "Bearer app-own-token",
		"Apikey":          "app-own-apikey",
		"X-Api-Key":       "app-own-x-api-key",
		"Cookie":          "app=cookie",
		"X-Consent-Id":    "consent-123",
		"X-Purpose":       "kyc-onboarding",
		"Accept-Encoding": "gzip",
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	got, _ := env.seen.last(t)
	if got.Header.Get("Apikey") != testSecrets["api_key"] {
		t.Errorf("vendor saw apikey %q", got.Header.Get("Apikey"))
	}
	if got.Header.Get("Authorization") != "Bearer "+testSecrets["bearer"] {
		t.Errorf("vendor saw Authorization %q", got.Header.Get("Authorization"))
	}
	for _, h := range []string{"X-Api-Key", "Cookie", "X-Consent-Id", "X-Purpose"} {
		if v := got.Header.Get(h); v != "" {
			t.Errorf("vendor saw app header %s: %q", h, v)
		}
	}
	if got.ProtoMajor != 2 {
		t.Errorf("upstream spoken over %s, want HTTP/2 where the vendor offers it", got.Proto)
	}
	if got.URL.Path != "/base/things/42" || got.URL.Query().Get("x") != "1" {
		t.Errorf("vendor saw %s?%s", got.URL.Path, got.URL.RawQuery)
	}
	if q := got.URL.Query(); q.Has("flow_api_key") || q.Has("API_KEY") {
		t.Errorf("app query credentials reached the vendor: %s", got.URL.RawQuery)
	}
	if strings.Contains(body, "app-own") {
		t.Error("an app-sent credential reached the vendor")
	}
	// The echo upstream returned our secrets in the body and a header.
	assertNoSecret(t, "response body", body)
	if !strings.Contains(body, redacted) {
		t.Errorf("echoed secret not redacted: %s", body)
	}
	if resp.Header.Get("X-Echo-Key") != redacted {
		t.Errorf("echoed header = %q", resp.Header.Get("X-Echo-Key"))
	}
	if resp.Header.Get("Set-Cookie") != "" {
		t.Error("vendor cookie passed to the app")
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id")
	}
	assertNoSecret(t, "log", env.logs.String())
	if strings.Contains(env.logs.String(), "things/42") || strings.Contains(env.logs.String(), "x=1") {
		t.Error("log carries the concrete path or query")
	}
	if !strings.Contains(env.logs.String(), `"operation":"echo.thing"`) || !strings.Contains(env.logs.String(), `"app":"web"`) {
		t.Errorf("canonical log line lacks the operation or app: %s", env.logs.String())
	}
}

func TestBodyAndQueryCredentials(t *testing.T) {
	env := newTestEnv(t)
	resp, body := do(t, env.client, "POST", env.gatewayURL+"/v/echo/sessions/", `{"api_key":"app-key","Api_Key":"x","metadata":{"n":12345678901234567890}}`,
		map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	_, sent := env.seen.last(t)
	var obj map[string]any
	if err := json.Unmarshal([]byte(sent), &obj); err != nil {
		t.Fatalf("vendor body %q: %v", sent, err)
	}
	if obj["api_key"] != testSecrets["body_key"] || obj["Api_Key"] != nil {
		t.Errorf("vendor body = %s", sent)
	}
	if !strings.Contains(sent, "12345678901234567890") {
		t.Errorf("large number altered: %s", sent)
	}
	assertNoSecret(t, "response body", body)

	resp, body = do(t, env.client, "GET", env.gatewayURL+"/v/echo/results/?session_id=s-1", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	got, _ := env.seen.last(t)
	if got.URL.Query().Get("flow_api_key") != testSecrets["query"] || got.URL.Query().Get("session_id") != "s-1" {
		t.Errorf("vendor query = %s", got.URL.RawQuery)
	}
	// The body credential is for session creation only.
	if strings.Contains(got.URL.RawQuery, testSecrets["body_key"]) {
		t.Error("body credential leaked into another operation")
	}
	assertNoSecret(t, "response body", body)
	assertNoSecret(t, "log", env.logs.String())
}

func TestRefusalsNeverReachTheVendor(t *testing.T) {
	env := newTestEnv(t)
	tests := []struct {
		name, method, path, body string
		header                   map[string]string
		status                   int
		kind                     refusal.Kind
	}{
		{"unknown vendor", "GET", "/v/nobody/things/1", "", nil, 404, refusal.NoRoute},
		{"not gateway mode", "GET", "/things/1", "", nil, 404, refusal.NoRoute},
		{"unknown operation", "GET", "/v/echo/other", "", nil, 404, refusal.NoRoute},
		{"wrong method", "DELETE", "/v/echo/things/1", "", nil, 404, refusal.NoRoute},
		{"missing trailing slash", "GET", "/v/echo/results", "", nil, 404, refusal.NoRoute},
		{"encoded dot-dot", "GET", "/v/echo/things/%2e%2e", "", nil, 400, refusal.BadRequest},
		{"encoded slash", "GET", "/v/echo/things/a%2Fb", "", nil, 400, refusal.BadRequest},
		{"body too large", "POST", "/v/echo/sessions/", `{"x":"` + strings.Repeat("a", 300) + `"}`, map[string]string{"Content-Type": "application/json"}, 413, refusal.TooLarge},
		{"body not JSON where a field is injected", "POST", "/v/echo/sessions/", `not json`, map[string]string{"Content-Type": "application/json"}, 400, refusal.MalformedBody},
		{"secret missing", "GET", "/v/nosecret/x", "", nil, 503, refusal.Credentials},
		{"policy denies", "GET", "/v/echo/things/1", "", map[string]string{"X-Consent-Id": "deny-me"}, 403, refusal.PolicyDenied},
		{"consent registry fails", "GET", "/v/echo/things/1", "", map[string]string{"X-Consent-Id": "broken"}, 503, refusal.ConsentStore},
		{"malformed consent id", "GET", "/v/echo/things/1", "", map[string]string{"X-Consent-Id": "../etc"}, 400, refusal.BadRequest},
		{"malformed purpose", "GET", "/v/echo/things/1", "", map[string]string{"X-Purpose": "KYC Onboarding"}, 400, refusal.BadRequest},
		{"request body not JSON", "POST", "/v/echo/sessions/", `{"a":`, map[string]string{"Content-Type": "application/json"}, 400, refusal.MalformedBody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := env.seen.count()
			resp, body := do(t, env.client, tt.method, env.gatewayURL+tt.path, tt.body, tt.header)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			var p problem
			if err := json.Unmarshal([]byte(body), &p); err != nil {
				t.Fatalf("problem body %q: %v", body, err)
			}
			if p.Type != tt.kind.Type() || p.Status != tt.status || p.RequestID == "" {
				t.Errorf("problem = %+v", p)
			}
			if env.seen.count() != before {
				t.Error("the vendor was called")
			}
			assertNoSecret(t, "error body", body)
		})
	}
	assertNoSecret(t, "log", env.logs.String())
}

func TestUpstreamFailures(t *testing.T) {
	env := newTestEnv(t)
	resp, body := do(t, env.client, "GET", env.gatewayURL+"/v/down/x", "", nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, string(refusal.VendorUnreachable)) {
		t.Fatalf("unreachable vendor: %d %s", resp.StatusCode, body)
	}
	// The dial error must not carry the URL, whose query holds the key.
	assertNoSecret(t, "error body", body)
	assertNoSecret(t, "log", env.logs.String())
	if !strings.Contains(env.logs.String(), "connection refused") {
		t.Errorf("log does not say why: %s", env.logs.String())
	}

	resp, body = do(t, env.client, "GET", env.gatewayURL+"/v/echo/compressed", "", nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, string(refusal.VendorRefused)) || strings.Contains(body, "brotli") {
		t.Fatalf("uninspectable response: %d %s", resp.StatusCode, body)
	}
}

func TestOnlyAppRoleMayCallVendors(t *testing.T) {
	env := newTestEnv(t)
	auditor := env.clientWith(t, env.ca, "spiffe://test.local/auditor/alice", time.Hour)
	resp, body := do(t, auditor, "GET", env.gatewayURL+"/v/echo/things/1", "", nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, string(refusal.RoleNotAllowed)) {
		t.Fatalf("auditor: %d %s", resp.StatusCode, body)
	}
	if env.seen.count() != 0 {
		t.Error("the vendor was called")
	}
}

func TestHandshakeRefusals(t *testing.T) {
	env := newTestEnv(t)
	other, err := certs.NewCA(pkix.Name{CommonName: "other CA"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	noCert := env.clientWith(t, env.ca, "spiffe://test.local/app/web", time.Hour)
	noCert.Transport.(*http.Transport).TLSClientConfig.Certificates = nil
	tests := []struct {
		name   string
		client *http.Client
	}{
		{"no certificate", noCert},
		{"certificate from another CA", env.clientWith(t, other, "spiffe://test.local/app/web", time.Hour)},
		{"expired certificate", env.clientWith(t, env.ca, "spiffe://test.local/app/web", -time.Minute)},
		{"other trust domain", env.clientWith(t, env.ca, "spiffe://evil.example/app/web", time.Hour)},
		{"unknown role", env.clientWith(t, env.ca, "spiffe://test.local/root/web", time.Hour)},
		{"no SPIFFE id", env.clientWith(t, env.ca, "", time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := tt.client.Get(env.gatewayURL + "/v/echo/things/1")
			if err == nil {
				resp.Body.Close()
				t.Fatalf("handshake succeeded, status %d", resp.StatusCode)
			}
		})
	}
	if env.seen.count() != 0 {
		t.Error("the vendor was called")
	}
}

func TestScrubReaderAcrossReads(t *testing.T) {
	secret := "SECRET-abcdef-123456"
	tests := []struct{ in, want string }{
		{"before " + secret + " after", "before " + redacted + " after"},
		{secret + secret, redacted + redacted},
		{"no secret here", "no secret here"},
		{"partial SECRET-abc at end", "partial SECRET-abc at end"},
		{strings.Repeat("x", 70000) + secret, strings.Repeat("x", 70000) + redacted},
	}
	for _, tt := range tests {
		for name, r := range map[string]io.Reader{
			"one byte": iotest.OneByteReader(strings.NewReader(tt.in)),
			"half":     iotest.HalfReader(strings.NewReader(tt.in)),
			"whole":    strings.NewReader(tt.in),
		} {
			got, err := io.ReadAll(newScrubber([]string{secret, "short"}).reader(io.NopCloser(r)))
			if err != nil || string(got) != tt.want {
				t.Errorf("%s reads of %.30q: got %.40q, %v", name, tt.in, got, err)
			}
		}
	}
	if got := newScrubber([]string{"abc"}).string("abc"); got != "abc" {
		t.Errorf("values shorter than %d bytes must not be scrubbed, got %q", minScrubLen, got)
	}
}

func TestUnparsableVendorResponseIsNotPassedOn(t *testing.T) {
	env := newTestEnv(t)
	resp, body := do(t, env.client, "GET", env.gatewayURL+"/v/echo/html", "", nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, string(refusal.VendorRefused)) {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if strings.Contains(body, "9157144238") || strings.Contains(body, "html") {
		t.Errorf("vendor body leaked: %s", body)
	}
}

func TestReportOnlyRouteForwardsAndLogsWouldDeny(t *testing.T) {
	env := newTestEnv(t)
	resp, body := do(t, env.client, "GET", env.gatewayURL+"/v/echo/report-only", "", map[string]string{"X-Consent-Id": "deny-me"})
	if resp.StatusCode != http.StatusOK || env.seen.count() != 1 {
		t.Fatalf("report-only deny: %d %s (vendor calls %d)", resp.StatusCode, body, env.seen.count())
	}
	if resp.Header.Get("X-Consentgate-Decision-Id") == "" {
		t.Error("no decision id")
	}
	logs := env.logs.String()
	if !strings.Contains(logs, `"would_deny":true`) || !strings.Contains(logs, `"reasons":["test deny"]`) {
		t.Errorf("log lacks would_deny: %s", logs)
	}
	// The same deny on an enforced route is refused.
	resp, body = do(t, env.client, "GET", env.gatewayURL+"/v/echo/things/1", "", map[string]string{"X-Consent-Id": "deny-me"})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `"reasons":["test deny"]`) || !strings.Contains(body, `"decision_id":"`) {
		t.Fatalf("enforced deny: %d %s", resp.StatusCode, body)
	}
}

// exportAll is the whole audit log as the auditor would get it.
func (e *testEnv) exportAll(t *testing.T) []audit.Record {
	t.Helper()
	var buf bytes.Buffer
	if err := e.audit.Export(context.Background(), &buf, audit.Filter{}); err != nil {
		t.Fatal(err)
	}
	var out []audit.Record
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var r struct {
			Type string `json:"type"`
			audit.Record
		}
		if err := json.Unmarshal([]byte(line), &r); err == nil && r.Kind != "" {
			out = append(out, r.Record)
		}
	}
	return out
}

func TestEveryCallHasIntentAndOutcomeRecords(t *testing.T) {
	env := newTestEnv(t)
	resp, body := do(t, env.client, "GET", env.gatewayURL+"/v/echo/things/42?x=9157144238", "", map[string]string{"Apikey": "app-own-apikey"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	do(t, env.client, "GET", env.gatewayURL+"/v/nobody/x", "", nil)
	recs := env.exportAll(t)
	var intent, outcome, refused *audit.Record
	for i := range recs {
		r := &recs[i]
		switch {
		case r.Kind == audit.KindIntent && r.Operation == "echo.thing":
			intent = r
		case r.Kind == audit.KindOutcome && r.Operation == "echo.thing":
			outcome = r
		case r.Kind == audit.KindOutcome && r.Status == http.StatusNotFound:
			refused = r
		}
	}
	if intent == nil || outcome == nil || refused == nil {
		t.Fatalf("records missing: intent %v outcome %v refused %v", intent != nil, outcome != nil, refused != nil)
	}
	if intent.Seq >= outcome.Seq || intent.RequestID != outcome.RequestID || outcome.RequestID != resp.Header.Get("X-Request-Id") {
		t.Errorf("intent %d / outcome %d do not pair", intent.Seq, outcome.Seq)
	}
	if outcome.DecisionID != resp.Header.Get("X-Consentgate-Decision-Id") || outcome.PolicyRevision == "" || outcome.Status != 200 || outcome.App != "web" {
		t.Errorf("outcome record = %+v", outcome)
	}
	if outcome.PathTemplate != "/things/{id}" {
		t.Errorf("path_template %q", outcome.PathTemplate)
	}
	// What came of each call, and a refusal's kind, for the console's filters.
	if outcome.Detail["outcome"] != "forwarded" || outcome.Detail["refusal"] != "" ||
		refused.Detail["outcome"] != "refused" || refused.Detail["refusal"] != string(refusal.NoRoute) {
		t.Errorf("outcome details: forwarded %v, refused %v", outcome.Detail, refused.Detail)
	}
	raw, _ := json.Marshal(recs)
	assertNoSecret(t, "audit export", string(raw))
	if strings.Contains(string(raw), "9157144238") || strings.Contains(string(raw), "app-own-apikey") {
		t.Error("the audit log holds a raw query value or an app-sent credential")
	}
}

// If the audit log cannot be written, the vendor is not called and the app
// gets 503 problem+json.
func TestAuditUnwritableStopsTheCall(t *testing.T) {
	env := newTestEnv(t)
	if err := env.audit.Close(); err != nil {
		t.Fatal(err)
	}
	resp, body := do(t, env.client, "GET", env.gatewayURL+"/v/echo/things/1", "", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, string(refusal.AuditUnavailable)) {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
	if env.seen.count() != 0 {
		t.Error("the vendor was called without an intent record")
	}
	if !strings.Contains(env.logs.String(), "AUDIT LOG UNWRITABLE") {
		t.Error("the failure was not logged loudly")
	}
}

// A vendor host that resolves to an internal address is not dialled unless the
// profile pins it: the vendor is never reached.
func TestUnpinnedInternalAddressRefused(t *testing.T) {
	env := newTestEnv(t)
	resp, body := do(t, env.client, "GET", env.gatewayURL+"/v/inward/things/1", "", nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, string(refusal.VendorUnreachable)) {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if env.seen.count() != 0 {
		t.Fatal("the internal address was dialled")
	}
	if !strings.Contains(env.logs.String(), "upstream address refused") {
		t.Errorf("the log does not say why: %s", env.logs.String())
	}
}

// An overloaded policy engine is not a denial: the app gets 503 policy-busy
// with Retry-After, the vendor is not called, the outcome is audited, and the
// next call once the engine is free goes through.
func TestOverloadedPolicyEngineAnswers503(t *testing.T) {
	dir := t.TempDir()
	// "hold" keeps the one evaluation slot busy for as long as its caller waits.
	writeFile(t, filepath.Join(dir, "policy.rego"), []byte(testPolicy+`
decision := {"allow": false, "reasons": ["never"]} if {
	input.consent_id == "hold"
	some x in numbers.range(1, 5000)
	some y in numbers.range(1, 5000)
	x * y < 0
}
`), 0o644)
	engine, err := policy.New(context.Background(), policy.Options{Source: policy.Source{Dir: dir}, Timeout: time.Minute,
		MaxConcurrent: 1, QueueWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	env := newTestEnv(t, func(o *Options) { o.Policy = engine })
	holdCtx, release := context.WithCancel(context.Background())
	held := make(chan struct{})
	go func() {
		defer close(held)
		engine.DecideRaw(holdCtx, map[string]any{"app": map[string]any{"id": "web"}, "consent_id": "hold"})
	}()
	defer func() { release(); <-held }()

	var resp *http.Response
	var body string
	var before int
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Until the holding evaluation has its slot, calls may still pass.
		before = env.seen.count()
		resp, body = do(t, env.client, "GET", env.gatewayURL+"/v/echo/things/1", "", nil)
		if resp.StatusCode != http.StatusOK || time.Now().After(deadline) {
			break
		}
	}
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, refusal.PolicyBusy.Type()) {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if resp.Header.Get("Retry-After") != "1" || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("Retry-After %q, Content-Type %q", resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"))
	}
	if env.seen.count() != before {
		t.Error("the vendor was called while the policy could not decide")
	}
	var outcome *audit.Record
	for _, r := range env.exportAll(t) {
		if r.Kind == audit.KindOutcome && r.RequestID == resp.Header.Get("X-Request-Id") {
			outcome = &r
		}
	}
	if outcome == nil || outcome.Status != http.StatusServiceUnavailable || outcome.Allow == nil || *outcome.Allow {
		t.Fatalf("outcome record of the busy call: %+v", outcome)
	}

	release()
	<-held
	if resp, body := do(t, env.client, "GET", env.gatewayURL+"/v/echo/things/1", "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("after the engine freed: status %d: %s", resp.StatusCode, body)
	}
}

// problem is an RFC 9457 answer as an app reads it.
type problem struct {
	Type       string   `json:"type"`
	Title      string   `json:"title"`
	Status     int      `json:"status"`
	Detail     string   `json:"detail"`
	RequestID  string   `json:"request_id"`
	DecisionID string   `json:"decision_id"`
	Reasons    []string `json:"reasons"`
}

// A vendor's own answer headers reach the app only where the operation
// declares them: one echoing a person's data (X-Customer-Name), or any other
// nobody declared, is withheld and counted in the outcome record, unnamed;
// standard headers and rate limits pass.
func TestVendorResponseHeadersAreMinimised(t *testing.T) {
	env := newTestEnv(t)
	resp, _ := do(t, env.client, "POST", env.gatewayURL+"/v/echo/verify", `{"iin":"1"}`, map[string]string{"Content-Type": "application/json"})
	if resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type withheld: %v", resp.Header)
	}
	for _, h := range []string{"X-Echo-Key", "X-Customer-Name", "Set-Cookie"} {
		if v := resp.Header.Get(h); v != "" {
			t.Errorf("the vendor's %s reached the app: %q", h, v)
		}
	}
	if resp.Header.Get("X-Ratelimit-Remaining") != "99" {
		t.Errorf("rate limit header withheld: %v", resp.Header)
	}
	var out audit.Record
	for _, r := range env.exportAll(t) {
		if r.Kind == audit.KindOutcome && r.Operation == "echo.verify" {
			out = r
		}
	}
	if out.Detail["response_headers_withheld"] != "3" || strings.Contains(fmt.Sprint(out), "Novák") {
		t.Errorf("outcome record: %v", out.Detail)
	}
}
