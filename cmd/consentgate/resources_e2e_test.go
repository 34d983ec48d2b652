package main

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/proxy"
)

// banqwareCustomer is the dev end user's journey at banqware under dev-kyc: a hub
// user, a bank consent the user authorises, an update whose callback reaches
// the app. It returns the three ids the hub handed out.
func (e *devEnv) banqwareCustomer(t *testing.T) (uid, cid, upid string) {
	t.Helper()
	const redirect = "https://onboarding.example/banqware/return"
	callbackURL := "https://" + e.srv.Addr(proxy.ListenCallbacks) + "/callbacks/banqware/updates"
	e.step(t, "account-aggregation", "PUT", "/v/banqware/management-resources/api/tenant/urls", `{"redirectUrls":["`+redirect+`"],"updateCallbackUrls":["`+callbackURL+`"]}`)
	user := decode(t, e.step(t, "account-aggregation", "POST", "/v/banqware/user-resources/api/user", `{"clientId":"client-42"}`))
	uid, _ = user["userId"].(string)
	consent := decode(t, e.step(t, "account-aggregation", "POST", "/v/banqware/consent-resources/api/user/id/"+uid+"/consent",
		`{"bankId":"KOMBCZPP","bankIdType":"BIC","redirectUrl":"`+redirect+`"}`))
	cid, _ = consent["consentId"].(string)
	if consent["status"] != "requested" {
		t.Fatalf("consent %v", consent)
	}
	// The user authorises at the bank: the browser, not consentgate, opens this URL.
	browser := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.pool(t, certs.DevSandboxRootCert), ServerName: "localhost"}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := browser.Get(consent["authorizationUrl"].(string))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorisation: %d", resp.StatusCode)
	}
	if got := decode(t, e.step(t, "account-aggregation", "GET", "/v/banqware/consent-resources/api/user/id/"+uid+"/consent/"+cid, "")); got["status"] != "given" {
		t.Fatalf("consent after authorisation: %v", got)
	}
	upd := decode(t, e.step(t, "account-aggregation", "POST", "/v/banqware/update-resources/api/user/id/"+uid+"/consent/"+cid+"/update", `{"callbackUrl":"`+callbackURL+`"}`))
	upid, _ = upd["updateId"].(string)
	waitFor(t, "the update callback at the app", func() bool { return len(e.inbox.messages()) > 0 })
	return uid, cid, upid
}

// Issue 13 §2: one end user's consent must not reach another's vendor data by
// naming its ids. Before, a second app under its own consent for another person
// read the first app's customer's IBANs and deleted the customer's bank consent.
func TestDevVendorIdsBelongToTheirEndUserAndApp(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	uid, cid, upid := e.banqwareCustomer(t)
	session := decode(t, e.step(t, "biometric-verification", "POST", "/v/biometric/api/v1/flows/session/create/", `{"metadata":{}}`))["session_id"].(string)
	verification := decode(t, e.step(t, "biometric-verification", "POST", "/v/finid/api/v1/verifications",
		`{"iin":"900315401233","phone":"+77011234567","photo":"aGVsbG8gZmFjZQ=="}`))["id"].(string)

	pfm := e.issueApp(t, "pfm-mobile", "app")
	pfmConsent := e.createConsent(t, pfm, `{"subject":"someone-else","vendors":["banqware"],"purposes":["account-aggregation"],"categories":["account","identity"],"evidence":{"text":"checkbox"},"ttl":"24h"}`)
	pfmUser := decode(t, mustCall(t, pfm, "POST", e.gatewayURL()+"/v/banqware/user-resources/api/user", `{"clientId":"pfm-1"}`, pfmConsent, "account-aggregation"))["userId"].(string)
	// The same app, under another customer's consent.
	otherCustomer := e.createConsent(t, e.app, `{"subject":"another-customer","vendors":["banqware","biometric","finid"],"purposes":["account-aggregation","biometric-verification","kyc-onboarding"],"categories":["account","identity","biometric","national_id","contact"],"evidence":{"text":"checkbox"},"ttl":"24h"}`)

	const banqware = "/v/banqware"
	tests := []struct {
		name            string
		client          *http.Client
		consent         string
		purpose, method string
		path            string
		vendor          string
		kind            string
	}{
		{"another app reads the customer's accounts", pfm, pfmConsent, "account-aggregation", "GET", banqware + "/account-info-resources/api/user/id/" + uid + "/accounts", "banqware", "resource-not-owned"},
		{"another app reads the customer's KYC", pfm, pfmConsent, "account-aggregation", "GET", banqware + "/kyc-resources/api/user/id/" + uid + "/kyc", "banqware", "resource-not-owned"},
		{"another app deletes the customer's bank consent", pfm, pfmConsent, "account-aggregation", "DELETE", banqware + "/consent-resources/api/user/id/" + uid + "/consent/" + cid, "banqware", "resource-not-owned"},
		{"another app reads the customer's update", pfm, pfmConsent, "account-aggregation", "GET", banqware + "/update-resources/api/user/id/" + uid + "/update/" + upid, "banqware", "resource-not-owned"},
		{"its own user with the customer's consent id", pfm, pfmConsent, "account-aggregation", "GET", banqware + "/consent-resources/api/user/id/" + pfmUser + "/consent/" + cid, "banqware", "resource-not-owned"},
		{"same app, another customer's consent", e.app, otherCustomer, "account-aggregation", "GET", banqware + "/account-info-resources/api/user/id/" + uid + "/accounts", "banqware", "resource-not-owned"},
		{"another customer's liveness session, by query", e.app, otherCustomer, "biometric-verification", "GET", "/v/biometric/api/v1/flows/session/result/?session_id=" + session, "biometric", "resource-not-owned"},
		{"another customer's FinID verification, by path", e.app, otherCustomer, "kyc-onboarding", "GET", "/v/finid/api/v1/verifications/" + verification, "finid", "resource-not-owned"},
		{"an id consentgate never saw", e.app, "dev-kyc", "account-aggregation", "GET", banqware + "/account-info-resources/api/user/id/u-never-seen/accounts", "banqware", "resource-unknown"},
		{"an encoded id", e.app, otherCustomer, "account-aggregation", "GET", banqware + "/account-info-resources/api/user/id/" + strings.ReplaceAll(uid, "-", "%2D") + "/accounts", "banqware", "resource-not-owned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := e.sandboxes.Server(tt.vendor)
			before := s.Count()
			resp, body := call(t, tt.client, tt.method, e.gatewayURL()+tt.path, "", map[string]string{"X-Consent-Id": tt.consent, "X-Purpose": tt.purpose})
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			assertProblem(t, resp, body, tt.kind)
			if s.Count() != before {
				t.Errorf("the vendor was called")
			}
			if out := e.outcomeOf(t, resp.Header.Get("X-Request-Id")); out.Status != http.StatusForbidden || out.Error != tt.kind {
				t.Errorf("outcome record: status %d, error %q", out.Status, out.Error)
			}
		})
	}
	// The owner still can, and its follow-up calls are recorded under its consent.
	resp, body := call(t, e.app, "GET", e.gatewayURL()+banqware+"/account-info-resources/api/user/id/"+uid+"/accounts", "", under("dev-kyc", "account-aggregation"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the owner: %d %s", resp.StatusCode, body)
	}
	if out := e.outcomeOf(t, resp.Header.Get("X-Request-Id")); out.ConsentID != "dev-kyc" || !e.names(t, out.SubjectHMAC, devSubject) {
		t.Errorf("the owner's call is recorded under %s / %s", out.ConsentID, out.SubjectHMAC)
	}
}

// Inbound callbacks belong to the consent that created what they name, and go
// only to the app that owns it.
func TestDevCallbacksAreAttributedToTheOwningConsent(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	uid, cid, upid := e.banqwareCustomer(t)
	// The outcome is recorded once the app has answered the forwarded callback.
	var callback *audit.Record
	waitFor(t, "the callback's outcome record", func() bool {
		for _, r := range e.auditRecords(t) {
			if r.Operation == "banqware.updateCallback" && r.Kind == audit.KindOutcome {
				callback = &r
			}
		}
		return callback != nil
	})
	if callback == nil || callback.ConsentID != "dev-kyc" || !e.names(t, callback.SubjectHMAC, devSubject) {
		t.Fatalf("the hub's callback is recorded as %+v", callback)
	}

	pfm := e.issueApp(t, "pfm-mobile", "app")
	pfmConsent := e.createConsent(t, pfm, `{"subject":"someone-else","vendors":["banqware"],"purposes":["account-aggregation"],"categories":["account"],"evidence":{"text":"checkbox"},"ttl":"24h"}`)
	pfmUser := decode(t, mustCall(t, pfm, "POST", e.gatewayURL()+"/v/banqware/user-resources/api/user", `{"clientId":"pfm-1"}`, pfmConsent, "account-aggregation"))["userId"].(string)

	hub := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.pool(t, certs.DevRootCert)}}}
	url := e.callbacksURL() + "/callbacks/banqware/updates?consentgate_token=" + e.devSecret(t, "vendors/banqware", "callback_token")
	for _, tt := range []struct{ name, body, kind string }{
		{"names another app's user", `{"userId":"` + pfmUser + `","status":"completed"}`, "resource-not-owned"},
		{"mixes two end users", `{"userId":"` + pfmUser + `","consentId":"` + cid + `","updateId":"` + upid + `","status":"completed"}`, "resource-not-owned"},
		{"names ids nobody created", `{"userId":"u-forged","updateId":"x","status":"completed"}`, "resource-unknown"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.inbox.messages())
			resp, body := call(t, hub, "POST", url, tt.body, nil)
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			assertProblem(t, resp, body, tt.kind)
			if len(e.inbox.messages()) != before {
				t.Error("the callback was forwarded to the app")
			}
		})
	}
	// The hub's own callback for the customer's update still goes through.
	before := len(e.inbox.messages())
	if resp, body := call(t, hub, "POST", url, `{"userId":"`+uid+`","consentId":"`+cid+`","updateId":"`+upid+`","status":"completed"}`, nil); resp.StatusCode/100 != 2 {
		t.Fatalf("a genuine callback: %d %s", resp.StatusCode, body)
	}
	if len(e.inbox.messages()) != before+1 {
		t.Error("a genuine callback was not forwarded")
	}
}

// mustCall is a call under consent and purpose that must succeed.
func mustCall(t *testing.T, c *http.Client, method, url, body, consentID, purpose string) []byte {
	t.Helper()
	resp, b := call(t, c, method, url, body, map[string]string{"X-Consent-Id": consentID, "X-Purpose": purpose})
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	return b
}

// An auditor finds every call about a person with the auditor certificate
// alone: the gateway hashes the person's id behind an audited admin route. The
// follow-up calls and the hub's callbacks are the person's; nobody else's are.
func TestDevAuditorSearchesAPersonWithTheCertificateAlone(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	e.banqwareCustomer(t)
	other := e.createConsent(t, e.app, `{"subject":"another-customer","vendors":["banqware"],"purposes":["account-aggregation"],"categories":["account"],"evidence":{"text":"checkbox"},"ttl":"24h"}`)
	mustCall(t, e.app, "POST", e.gatewayURL()+"/v/banqware/user-resources/api/user", `{"clientId":"c-2"}`, other, "account-aggregation")

	auditor := e.pki.Path(certs.AppCert("auditor"))
	args := []string{"audit", "search", "--subject", devSubject, "--pubkey", filepath.Join(e.cfg.DataDir, "audit.pub"), "--admin", e.adminURL(),
		"--cert", auditor, "--key", certs.KeyFile(auditor), "--cacert", e.pki.Path(certs.DevRootCert)}
	out, err := runCmd(t, args...)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	ops := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var r audit.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if !e.names(t, r.SubjectHMAC, devSubject) && !slices.ContainsFunc(r.Identifiers, func(id string) bool { return e.names(t, id, devSubject) }) {
			t.Errorf("record %d is about someone else: %s", r.Seq, line)
		}
		if r.ConsentID == other {
			t.Errorf("record %d is the other customer's call", r.Seq)
		}
		ops[r.Operation] = true
	}
	for _, op := range []string{"banqware.createUser", "banqware.createConsent", "banqware.requestUpdate", "banqware.updateCallback"} {
		if !ops[op] {
			t.Errorf("the search misses %s: found %v", op, ops)
		}
	}
	// The lookup itself is recorded, with the HMAC and not the id.
	var lookups int
	for _, r := range e.auditRecords(t) {
		if r.Kind == audit.KindAdmin && r.Detail["action"] == "subject lookup" && r.App == "auditor" && e.names(t, r.SubjectHMAC, devSubject) {
			lookups++
		}
	}
	if lookups != 1 {
		t.Errorf("%d subject lookups recorded, want 1", lookups)
	}
	e.assertNoPII(t, devSubject)
	// Apps may not hash ids with the gateway's key.
	if resp, body := call(t, e.app, "POST", e.adminURL()+"/v1/audit/subject-hmac", `{"subject":"x"}`, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("an app hashed a subject: %d %s", resp.StatusCode, body)
	}
}

// Ids created before consentgate was installed are bound by an admin; then the
// owner's app may use them and nobody else may.
func TestDevImportedVendorIds(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	admin := e.pki.Path(certs.AppCert("secops"))
	importArgs := func(cert, consentID string, ids ...string) []string {
		return append([]string{"resources", "import", "--admin", e.adminURL(), "--cert", cert, "--key", certs.KeyFile(cert),
			"--cacert", e.pki.Path(certs.DevRootCert), "--vendor", "banqware", "--kind", "user", "--consent", consentID}, ids...)
	}
	const accounts = "/v/banqware/account-info-resources/api/user/id/u-legacy/accounts"
	if resp, body := call(t, e.app, "GET", e.gatewayURL()+accounts, "", under("dev-kyc", "account-aggregation")); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("before the import: %d %s", resp.StatusCode, body)
	}
	if out, err := runCmd(t, importArgs(admin, "dev-kyc", "u-legacy")...); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	before := e.sandboxes.Banqware.Count()
	resp, body := call(t, e.app, "GET", e.gatewayURL()+accounts, "", under("dev-kyc", "account-aggregation"))
	if resp.Header.Get("Content-Type") == "application/problem+json" || e.sandboxes.Banqware.Count() != before+1 {
		t.Errorf("after the import the vendor was not asked: %d %s", resp.StatusCode, body)
	}
	other := e.createConsent(t, e.app, `{"subject":"another-customer","vendors":["banqware"],"purposes":["account-aggregation"],"categories":["account"],"evidence":{"text":"checkbox"},"ttl":"24h"}`)
	if out, err := runCmd(t, importArgs(admin, other, "u-legacy")...); err == nil || !strings.Contains(err.Error(), "409") {
		t.Errorf("moved a bound id to another person: %v %s", err, out)
	}
	app := e.pki.Path(certs.AppCert("onboarding-web"))
	if out, err := runCmd(t, importArgs(app, "dev-kyc", "u-other")...); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("an app imported an id: %v %s", err, out)
	}
	var imports int
	for _, r := range e.auditRecords(t) {
		if r.Kind == audit.KindAdmin && r.Detail["action"] == "resource import" {
			imports++
		}
	}
	if imports != 1 {
		t.Errorf("%d imports recorded, want 1", imports)
	}
}

// Issue 14 finding 3: an operation on the tenant, not on an end user, is for
// apps granted it by name. Before, any app allowed banqware replaced the
// tenant's redirect and callback URLs with its own host.
func TestDevTenantOperationsNeedAnExplicitGrant(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	pfm := e.issueApp(t, "pfm-mobile", "app")
	const tenantURLs = "/v/banqware/management-resources/api/tenant/urls"
	body := `{"redirectUrls":["https://evil.example/r"],"updateCallbackUrls":["https://evil.example/cb"]}`
	before := e.sandboxes.Banqware.Count()
	for name, headers := range map[string]map[string]string{
		"no consent":       nil,
		"its own consent":  {"X-Consent-Id": e.createConsent(t, pfm, `{"subject":"x","vendors":["banqware"],"purposes":["account-aggregation"],"categories":["account"],"evidence":{"text":"checkbox"},"ttl":"24h"}`), "X-Purpose": "account-aggregation"},
		"a purpose it has": {"X-Purpose": "account-aggregation"},
	} {
		resp, answer := call(t, pfm, "PUT", e.gatewayURL()+tenantURLs, body, headers)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(answer), "app not allowed tenant operation") {
			t.Errorf("%s: %d %s", name, resp.StatusCode, answer)
		}
	}
	if e.sandboxes.Banqware.Count() != before {
		t.Error("the hub's tenant settings were changed by an app not granted them")
	}
	// The app granted the operation may; it is recorded as an admin action.
	resp, answer := call(t, e.app, "PUT", e.gatewayURL()+tenantURLs, `{"redirectUrls":["https://onboarding.example/r"],"updateCallbackUrls":[]}`, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the granted app: %d %s", resp.StatusCode, answer)
	}
	var admin *audit.Record
	for _, r := range e.auditRecords(t) {
		if r.Kind == audit.KindAdmin && r.Detail["action"] == "tenant operation" && r.Operation == "banqware.tenantUrls" {
			admin = &r
		}
	}
	if admin == nil || admin.App != "onboarding-web" || admin.Status != http.StatusOK {
		t.Errorf("admin record %+v", admin)
	}
}

// banqware lets the clientId stand for the userId in every path; the clientId
// is bound to the consent too, so an app may name its user either way, and
// another end user's clientId is refused like their userId.
func TestDevBanqwareClientIDStandsForUserID(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	const redirect = "https://onboarding.example/banqware/return"
	callbackURL := "https://" + e.srv.Addr(proxy.ListenCallbacks) + "/callbacks/banqware/updates"
	e.step(t, "account-aggregation", "PUT", "/v/banqware/management-resources/api/tenant/urls", `{"redirectUrls":["`+redirect+`"],"updateCallbackUrls":["`+callbackURL+`"]}`)
	e.step(t, "account-aggregation", "POST", "/v/banqware/user-resources/api/user", `{"clientId":"client-77"}`)
	consent := decode(t, e.step(t, "account-aggregation", "POST", "/v/banqware/consent-resources/api/user/id/client-77/consent",
		`{"bankId":"KOMBCZPP","bankIdType":"BIC","redirectUrl":"`+redirect+`"}`))
	if consent["status"] != "requested" {
		t.Fatalf("a consent created for the clientId: %v", consent)
	}
	other := e.createConsent(t, e.app, `{"subject":"customer-bq-2","vendors":["banqware"],"purposes":["account-aggregation"],
		"categories":["account","identity","contact","address","document","national_id"],"evidence":{"text":"online form"},"ttl":"1h"}`)
	before := e.sandboxes.Banqware.Count()
	resp, body := call(t, e.app, "POST", e.gatewayURL()+"/v/banqware/consent-resources/api/user/id/client-77/consent",
		`{"bankId":"KOMBCZPP","bankIdType":"BIC","redirectUrl":"`+redirect+`"}`, under(other, "account-aggregation"))
	if resp.StatusCode != http.StatusForbidden || e.sandboxes.Banqware.Count() != before {
		t.Errorf("another end user's clientId: %d %s", resp.StatusCode, body)
	}
}
