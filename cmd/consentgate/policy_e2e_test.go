package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/secrets"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var (
	uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	hmacRE = regexp.MustCompile(`"[0-9a-f]{64}"`)
	timeRE = regexp.MustCompile(`"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"`)
)

// golden compares a minimised body with testdata/golden/name.json, after
// replacing what changes from run to run (ids, hashes under the dev key, times).
func golden(t *testing.T, name string, body []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		t.Fatalf("%s: %v: %s", name, err, body)
	}
	got := uuidRE.ReplaceAll(buf.Bytes(), []byte("<uuid>"))
	got = hmacRE.ReplaceAll(got, []byte(`"<hmac>"`))
	got = append(timeRE.ReplaceAll(got, []byte(`"<time>"`)), '\n')
	file := filepath.Join("testdata", "golden", name+".json")
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: minimised body differs from %s:\n%s", name, file, got)
	}
}

// The exact body each purpose lets through.
func TestDevPurposesGolden(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	tests := []struct {
		name, consent, purpose, path, body string
		withheld                           bool
	}{
		{"kyc-onboarding_airbank_personalData", "dev-kyc", "kyc-onboarding", "/v/airbank/openapi/glClientIdentity/v1/personalData", "", true},
		{"kyc-onboarding_kb_identity", "dev-kyc", "kyc-onboarding", "/v/kb/v1/clients/me/identity", "", true},
		{"age-verification_airbank_personalData", "dev-age", "age-verification", "/v/airbank/openapi/glClientIdentity/v1/personalData", "", true},
		{"age-verification_kb_identity", "dev-age", "age-verification", "/v/kb/v1/clients/me/identity", "", true},
		{"aml-screening_airbank_personalData", "dev-kyc", "aml-screening", "/v/airbank/openapi/glClientIdentity/v1/personalData", "", true},
		{"account-aggregation_airbank_accounts", "dev-kyc", "account-aggregation", "/v/airbank/openapi/glClientIdentity/v1/accounts", "", false},
		{"account-aggregation_airbank_cards", "dev-kyc", "account-aggregation", "/v/airbank/openapi/glClientIdentity/v1/cards", "", false},
		{"biometric-verification_finid_verify", "dev-kyc", "biometric-verification", "/v/finid/api/v1/verifications", `{"iin":"900315401233","phone":"+77011234567","photo":"aGVsbG8gZmFjZQ=="}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := "GET"
			if tt.body != "" {
				method = "POST"
			}
			resp, body := call(t, e.app, method, e.gatewayURL()+tt.path, tt.body, under(tt.consent, tt.purpose))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			// A FinID verification is answered pending: its outcome is read.
			if strings.HasSuffix(tt.path, "/verifications") {
				id, _ := decode(t, body)["id"].(string)
				resp, body = call(t, e.app, "GET", e.gatewayURL()+tt.path+"/"+id, "", under(tt.consent, tt.purpose))
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("reading the verification: status %d: %s", resp.StatusCode, body)
				}
			}
			if w := resp.Header.Get("X-Consentgate-Withheld"); (w != "0") != tt.withheld {
				t.Errorf("X-Consentgate-Withheld = %s", w)
			}
			golden(t, tt.name, e.placeholdTokens(t, resp, body))
		})
	}

	// The hashed birth number is the HMAC of the real one under the dev field key.
	_, body := call(t, e.app, "GET", e.gatewayURL()+"/v/airbank/openapi/glClientIdentity/v1/personalData", "", under("dev-kyc", "aml-screening"))
	var got map[string]any
	json.Unmarshal(body, &got)
	direct := e.directAirbankPersonalData(t)
	mac := hmac.New(sha256.New, []byte(e.secret(t, "consentgate/keys#field_hmac")))
	mac.Write([]byte(direct["birthNumber"].(string)))
	if got["birthNumber"] != hex.EncodeToString(mac.Sum(nil)) {
		t.Errorf("aml-screening birthNumber %v is not HMAC(field key, birth number)", got["birthNumber"])
	}
	if strings.Contains(string(body), direct["birthNumber"].(string)) {
		t.Error("raw birth number disclosed under aml-screening")
	}
}

func (e *devEnv) secret(t *testing.T, ref string) string {
	t.Helper()
	r, _ := secrets.ParseRef(ref)
	s, err := e.secrets.Get(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return s.Value
}

// directAirbankPersonalData is what Air Bank itself returns, unminimised.
func (e *devEnv) directAirbankPersonalData(t *testing.T) map[string]any {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.pool(t, certs.DevSandboxRootCert), ServerName: "localhost"}}}
	resp, body := call(t, c, "GET", e.sandboxes.Airbank.URL+"/openapi/glClientIdentity/v1/personalData", "", map[string]string{
		"Authorization": "Bearer " + e.directAirbankToken(t), "Apikey": e.creds.AirbankAPIKey})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("direct call: %d", resp.StatusCode)
	}
	return decode(t, body)
}

// issueApp makes a certificate for another app from the dev internal CA.
func (e *devEnv) issueApp(t *testing.T, name, role string) *http.Client {
	t.Helper()
	// Through the CA's provisioner, as apps get theirs: the intermediate
	// signs it, whose CRL the gateway checks.
	pair, err := e.authority.IssueApp(context.Background(), role, name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.pool(t, certs.DevRootCert),
		Certificates: []tls.Certificate{*pair}}}}
}

// createConsent registers a consent through the admin API as client.
func (e *devEnv) createConsent(t *testing.T, client *http.Client, body string) string {
	t.Helper()
	resp, b := call(t, client, "POST", e.adminURL()+"/v1/consents", body, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("creating consent: %d %s", resp.StatusCode, b)
	}
	return decode(t, b)["id"].(string)
}

// Every deny reason: 403 problem+json naming it, and no vendor call.
func TestDevEveryDenyReason(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	eshop := e.issueApp(t, "eshop-checkout", "app")
	stranger := e.issueApp(t, "unlisted-app", "app")
	const personal = "/v/airbank/openapi/glClientIdentity/v1/personalData"

	other := e.createConsent(t, eshop, `{"subject":"buyer-1","vendors":["airbank"],"purposes":["age-verification"],"categories":["identity"],"evidence":{"text":"checkbox"},"ttl":"24h"}`)
	revoked := e.createConsent(t, e.app, `{"subject":"user-2","vendors":["airbank"],"purposes":["kyc-onboarding"],"categories":["identity"],"evidence":{"text":"checkbox"},"ttl":"24h"}`)
	cards := e.createConsent(t, e.app, `{"subject":"user-3","vendors":["airbank"],"purposes":["kyc-onboarding"],"categories":["card"],"evidence":{"text":"checkbox"},"ttl":"24h"}`)
	if resp, b := call(t, e.app, "DELETE", e.adminURL()+"/v1/consents/"+revoked, "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d %s", resp.StatusCode, b)
	}
	past := time.Now().Add(-48 * time.Hour).UTC().Truncate(time.Second)
	if err := e.consents.Put(context.Background(), consent.Consent{ID: "expired-1", App: "onboarding-web", Subject: e.consents.SubjectHMAC("user-4"),
		Vendors: []string{"airbank"}, Purposes: []string{"kyc-onboarding"}, Categories: []string{"identity"},
		Evidence: consent.Evidence{Text: "test"}, GrantedAt: past, ExpiresAt: past.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		reason  string
		client  *http.Client
		path    string
		headers map[string]string
	}{
		{"no consent header", e.app, personal, map[string]string{"X-Purpose": "kyc-onboarding"}},
		{"unknown consent", e.app, personal, map[string]string{"X-Consent-Id": "no-such-consent", "X-Purpose": "kyc-onboarding"}},
		{"consent revoked", e.app, personal, map[string]string{"X-Consent-Id": revoked, "X-Purpose": "kyc-onboarding"}},
		{"consent expired", e.app, personal, map[string]string{"X-Consent-Id": "expired-1", "X-Purpose": "kyc-onboarding"}},
		{"vendor not in consent", e.app, "/v/finid/api/v1/verifications/abc", map[string]string{"X-Consent-Id": "dev-age", "X-Purpose": "age-verification"}},
		{"no purpose header", e.app, personal, map[string]string{"X-Consent-Id": "dev-kyc"}},
		{"unknown purpose", e.app, personal, map[string]string{"X-Consent-Id": "dev-kyc", "X-Purpose": "teleportation"}},
		{"purpose not in consent", e.app, personal, map[string]string{"X-Consent-Id": "dev-age", "X-Purpose": "kyc-onboarding"}},
		{"category not in consent", e.app, personal, map[string]string{"X-Consent-Id": cards, "X-Purpose": "kyc-onboarding"}},
		{"app not allowed vendor", stranger, personal, map[string]string{"X-Consent-Id": "dev-kyc", "X-Purpose": "kyc-onboarding"}},
		{"app not allowed purpose", eshop, personal, map[string]string{"X-Consent-Id": other, "X-Purpose": "aml-screening"}},
	}
	for _, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			before := e.sandboxes.Airbank.Count() + e.sandboxes.FinID.Count()
			resp, body := call(t, tt.client, "GET", e.gatewayURL()+tt.path, "", tt.headers)
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			var p struct {
				Type       string   `json:"type"`
				Reasons    []string `json:"reasons"`
				DecisionID string   `json:"decision_id"`
			}
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatal(err)
			}
			if p.Type != "urn:consentgate:problem:policy-denied" || !slices.Contains(p.Reasons, tt.reason) {
				t.Errorf("problem %s lacks reason %q", body, tt.reason)
			}
			if p.DecisionID == "" || p.DecisionID != resp.Header.Get("X-Consentgate-Decision-Id") {
				t.Errorf("decision id %q / header %q", p.DecisionID, resp.Header.Get("X-Consentgate-Decision-Id"))
			}
			if after := e.sandboxes.Airbank.Count() + e.sandboxes.FinID.Count(); after != before {
				t.Error("the vendor was called")
			}
		})
	}
}

// Issue 14 finding 6: another app's consent reads exactly like an unknown one,
// whatever its state, so an app cannot learn which consent ids exist; the
// detail is in the audit record only.
func TestDevAnotherAppsConsentReadsAsUnknown(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	eshop := e.issueApp(t, "eshop-checkout", "app")
	active := e.createConsent(t, eshop, `{"subject":"buyer-1","vendors":["airbank"],"purposes":["age-verification"],"categories":["identity"],"evidence":{"text":"checkbox"},"ttl":"24h"}`)
	revoked := e.createConsent(t, eshop, `{"subject":"buyer-2","vendors":["kb"],"purposes":["age-verification"],"categories":["identity"],"evidence":{"text":"checkbox"},"ttl":"24h"}`)
	if resp, b := call(t, eshop, "DELETE", e.adminURL()+"/v1/consents/"+revoked, "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d %s", resp.StatusCode, b)
	}
	const personal = "/v/airbank/openapi/glClientIdentity/v1/personalData"
	answer := func(id string) (string, string) {
		resp, body := call(t, e.app, "GET", e.gatewayURL()+personal, "", map[string]string{"X-Consent-Id": id, "X-Purpose": "age-verification"})
		var p struct {
			Status  int      `json:"status"`
			Detail  string   `json:"detail"`
			Reasons []string `json:"reasons"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%d %d %s %v", resp.StatusCode, p.Status, p.Detail, p.Reasons), resp.Header.Get("X-Request-Id")
	}
	unknown, _ := answer("no-such-consent-x")
	for name, id := range map[string]string{"active": active, "revoked": revoked} {
		got, requestID := answer(id)
		if got != unknown {
			t.Errorf("another app's %s consent answers %q; an unknown one %q", name, got, unknown)
		}
		if out := e.outcomeOf(t, requestID); out.Error != "consent of another app" {
			t.Errorf("%s: the audit record says %q", name, out.Error)
		}
	}
}

// An app registers a consent, uses it, revokes it: the very next call is refused.
func TestDevConsentLifecycleThroughAdminAPI(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	id := e.createConsent(t, e.app, `{"subject":"customer-77","vendors":["airbank"],"purposes":["account-aggregation"],"categories":["account"],"evidence":{"text":"online form","reference":"form-2026-77"},"ttl":"720h"}`)
	e.authorize(t, "airbank", id)
	path := "/v/airbank/openapi/glClientIdentity/v1/accounts"
	if resp, body := call(t, e.app, "GET", e.gatewayURL()+path, "", under(id, "account-aggregation")); resp.StatusCode != http.StatusOK {
		t.Fatalf("call under a fresh consent: %d %s", resp.StatusCode, body)
	}
	resp, body := call(t, e.app, "GET", e.adminURL()+"/v1/consents?subject=customer-77", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), id) || strings.Contains(string(body), "customer-77") {
		t.Fatalf("list by subject: %d %s", resp.StatusCode, body)
	}
	if resp, body := call(t, e.app, "DELETE", e.adminURL()+"/v1/consents/"+id, "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}
	before := e.sandboxes.Airbank.Count()
	resp, body = call(t, e.app, "GET", e.gatewayURL()+path, "", under(id, "account-aggregation"))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "consent revoked") {
		t.Fatalf("call after revocation: %d %s", resp.StatusCode, body)
	}
	if e.sandboxes.Airbank.Count() != before {
		t.Error("the vendor was called after revocation")
	}
	// Another app cannot see or revoke it; the auditor can read it.
	if resp, _ := call(t, e.issueApp(t, "pfm-mobile", "app"), "GET", e.adminURL()+"/v1/consents/"+id, "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("other app reading the consent: %d", resp.StatusCode)
	}
	if resp, _ := call(t, e.clientFor(t, "auditor"), "GET", e.adminURL()+"/v1/consents/"+id, "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("auditor reading the consent: %d", resp.StatusCode)
	}
	if strings.Contains(e.logs.String(), "customer-77") {
		t.Error("the raw subject reached the log")
	}
}

type policyStatus struct {
	Revision       string `json:"revision"`
	ReloadFailures int    `json:"reload_failures"`
	LastError      string `json:"last_error"`
}

func (e *devEnv) policyStatus(t *testing.T) policyStatus {
	t.Helper()
	resp, body := call(t, e.clientFor(t, "auditor"), "GET", e.adminURL()+"/v1/policy/status", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("policy status: %d %s", resp.StatusCode, body)
	}
	var s policyStatus
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(25 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// Edits are picked up without restart; a broken edit keeps the revision in
// service; under concurrent calls no request fails or goes undecided.
func TestDevPolicyHotReload(t *testing.T) {
	dir := t.TempDir()
	e := startTestDev(t, dir)
	pdir := filepath.Join(dir, "policies")
	data, err := os.ReadFile(filepath.Join(pdir, "data.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	first := e.policyStatus(t).Revision

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	calls := 0
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				// kb: the Air Bank sandbox would rightly answer 429 at this rate.
				resp, body := call(t, e.app, "GET", e.gatewayURL()+"/v/kb/v1/clients/me/identity", "", under("dev-kyc", "kyc-onboarding"))
				mu.Lock()
				calls++
				if resp.StatusCode != http.StatusOK {
					failures = append(failures, resp.Status+" "+string(body))
				}
				mu.Unlock()
			}
		}()
	}
	// A broken edit: the revision stays and the error names file and line.
	broken := filepath.Join(pdir, "broken.rego")
	if err := os.WriteFile(broken, []byte("package consentgate\n\nallow_all := {\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the failed reload", func() bool { return e.policyStatus(t).ReloadFailures > 0 })
	st := e.policyStatus(t)
	if st.Revision != first || !strings.Contains(st.LastError, "broken.rego:") {
		t.Errorf("after a broken edit: %+v", st)
	}
	os.Remove(broken)
	// A good edit: eshop-checkout may now aggregate accounts; a new revision.
	edited := bytes.Replace(data, []byte("    purposes: [age-verification]"), []byte("    purposes: [age-verification, account-aggregation]"), 1)
	if bytes.Equal(edited, data) {
		t.Fatal("edit did not apply")
	}
	if err := os.WriteFile(filepath.Join(pdir, "data.yaml"), edited, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new revision", func() bool { return e.policyStatus(t).Revision != first })
	time.Sleep(200 * time.Millisecond)
	cancel()
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d calls failed during reloads, first: %s", len(failures), calls, failures[0])
	}
	if calls < 10 {
		t.Fatalf("only %d calls ran during the reloads", calls)
	}
	if !strings.Contains(e.logs.String(), "policy reload failed; keeping the current revision") {
		t.Error("the failed reload was not logged")
	}
}

// A purpose added by a reload is usable at once, with no restart: the consent
// registry's purposes follow the revision in service. A revision that maps a
// category to an action consentgate cannot apply is refused at the line, and
// the one in service stays.
func TestDevReloadedPurposeIsUsableAtOnce(t *testing.T) {
	dir := t.TempDir()
	e := startTestDev(t, dir)
	file := filepath.Join(dir, "policies", "data.yaml")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	const grant = `{"subject":"user-9","vendors":["kb"],"purposes":["loyalty-check"],"categories":["identity"],"evidence":{"text":"checkbox"},"ttl":"1h"}`
	if resp, b := call(t, e.app, "POST", e.adminURL()+"/v1/consents", grant, nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("consent for an unknown purpose: %d %s", resp.StatusCode, b)
	}
	first := e.policyStatus(t).Revision

	bogus := bytes.Replace(data, []byte("purposes:\n  kyc-onboarding:"), []byte("purposes:\n  loyalty-check:\n    categories:\n      identity: publish\n  kyc-onboarding:"), 1)
	bogus = bytes.Replace(bogus, []byte("      - kyc-onboarding\n"), []byte("      - kyc-onboarding\n      - loyalty-check\n"), 1)
	if bytes.Equal(bogus, data) {
		t.Fatal("edit did not apply")
	}
	// Replaced whole, as a deploy does: a reload that caught the file half
	// written would fail for another reason than the one tested.
	if err := replaceFile(file, bogus); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refused reload", func() bool { return e.policyStatus(t).ReloadFailures > 0 })
	st := e.policyStatus(t)
	if st.Revision != first || !strings.Contains(st.LastError, "data.yaml:") || !strings.Contains(st.LastError, `"publish"`) {
		t.Fatalf("after an edit with an unknown action: %+v", st)
	}
	if resp, _ := call(t, e.app, "POST", e.adminURL()+"/v1/consents", grant, nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a refused revision's purpose was accepted: %d", resp.StatusCode)
	}

	good := bytes.Replace(bogus, []byte("identity: publish"), []byte("identity: keep"), 1)
	if err := replaceFile(file, good); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new revision", func() bool { return e.policyStatus(t).Revision != first })
	if st := e.policyStatus(t); st.LastError != "" {
		t.Errorf("a good revision after a refused one still reports: %q", st.LastError)
	}
	id := e.createConsent(t, e.app, grant)
	e.authorize(t, "kb", id)
	resp, body := call(t, e.app, "GET", e.gatewayURL()+"/v/kb/v1/clients/me/identity", "", under(id, "loyalty-check"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a call under the reloaded purpose: %d %s", resp.StatusCode, body)
	}
}

// placeholdTokens replaces the tokens in a response (the fields its outcome
// record names tokenized, top-level or nested objects) with "<token>": they are
// new on every call, and a golden file holds what stays.
func (e *devEnv) placeholdTokens(t *testing.T, resp *http.Response, body []byte) []byte {
	t.Helper()
	paths := e.outcomeOf(t, resp.Header.Get("X-Request-Id")).Detail["tokenized"]
	if paths == "" {
		return body
	}
	var doc any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	for _, path := range strings.Split(paths, ",") {
		v := doc
		for _, key := range strings.Split(path, ".") {
			v = v.(map[string]any)[key]
		}
		tok, ok := v.(string)
		if !ok || tok == "" {
			t.Fatalf("tokenized %s holds %v, not a token", path, v)
		}
		quoted, _ := json.Marshal(tok)
		body = bytes.ReplaceAll(body, quoted, []byte(`"<token>"`))
	}
	return body
}

// replaceFile puts data at file in one rename.
func replaceFile(file string, data []byte) error {
	tmp := file + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}
