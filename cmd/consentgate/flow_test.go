package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/internal/sandbox"
	"github.com/consentgate/consentgate/proxy"
)

func decode(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("response %q: %v", body, err)
	}
	return m
}

// step is one call through the gateway that must succeed.
func (e *devEnv) step(t *testing.T, purpose, method, path, body string) []byte {
	t.Helper()
	resp, b := call(t, e.app, method, e.gatewayURL()+path, body, under("dev-kyc", purpose))
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: status %d: %s", method, path, resp.StatusCode, b)
	}
	vendor := strings.SplitN(strings.TrimPrefix(path, "/v/"), "/", 2)[0]
	r := lastRequest(t, e.sandboxes.Server(vendor))
	assertNoAppCredentials(t, r)
	e.assertNoSecrets(t, "response", string(b))
	if resp.Header.Get("Content-Type") != "video/mp4" {
		assertFieldsMapped(t, e.cfg.Vendor(vendor), r.Method, r.Path, b)
	}
	return b
}

// A field the vendor sends that its profile does not name is withheld, and
// said: counted per operation and logged by name (a name that could be data,
// such as a run of digits, redacted).
func TestDevUnknownResponseFieldsAreWithheldAndSaid(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	created := decode(t, e.step(t, "biometric-verification", "POST", "/v/biometric/api/v1/flows/session/create/",
		`{"metadata":{"face2face":{"photo1":"aGVsbG8gZmFjZQ=="}}}`))
	id, _ := created["session_id"].(string)
	e.sandboxes.Biometric.SetFault(sandbox.Fault{Kind: sandbox.FaultAnswer, Body: []byte(`{"id":"` + id +
		`","technologies":[{"name":"LD","description":"liveness"}],"liveness_result":{"status":"ok","spoof_model":"v7"},"risk_flags":["none"],"900315401233":{"x":1}}`)})
	resp, body := call(t, e.app, "GET", e.gatewayURL()+"/v/biometric/api/v1/flows/session/result/?session_id="+id, "", under("dev-kyc", "biometric-verification"))
	e.sandboxes.Biometric.SetFault(sandbox.Fault{})
	if resp.StatusCode != http.StatusOK || strings.Contains(string(body), "spoof_model") || strings.Contains(string(body), "risk_flags") {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	want := `"fields":["(redacted)","liveness_result.spoof_model","risk_flags"]`
	waitFor(t, "the unknown fields to be logged", func() bool { return strings.Contains(e.logs.String(), want) })
	if strings.Contains(e.logs.String(), "900315401233") {
		t.Error("a field name that could be an IIN is in the log")
	}
	_, metrics := call(t, e.clientFor(t, "auditor"), "GET", e.adminURL()+"/metrics", "", nil)
	if !strings.Contains(string(metrics), `consentgate_vendor_unknown_fields_total{operation="biometric.sessionResult",vendor="biometric"} 3`) {
		t.Error("the unknown fields are not counted")
	}
}

// Minimisation never makes a request the vendor forbids: under a consent that
// does not cover the phone, its value is withheld, and so is skip_input, which
// Biometric.Vision takes only with both values fixed; the session is created
// and the user types the phone. With both values allowed, skip_input goes.
func TestDevSkipInputGoesOnlyWithBothValues(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	const body = `{"metadata":{"edocument":{"iin":{"value":"900315401233","changeable":false},"phone":{"value":"+77011234567","changeable":false},"skip_input":true}}}`
	noPhone := e.createConsent(t, e.app, `{"subject":"customer-skip-1","vendors":["biometric"],"purposes":["biometric-verification"],
		"categories":["biometric","national_id"],"evidence":{"text":"online form"},"ttl":"1h"}`)
	for _, tt := range []struct {
		consent  string
		skipSent bool
	}{{noPhone, false}, {"dev-kyc", true}} {
		resp, out := call(t, e.app, "POST", e.gatewayURL()+"/v/biometric/api/v1/flows/session/create/", body, under(tt.consent, "biometric-verification"))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("consent %s: status %d: %s", tt.consent, resp.StatusCode, out)
		}
		sent := string(lastRequest(t, e.sandboxes.Biometric).Body)
		if strings.Contains(sent, "skip_input") != tt.skipSent || strings.Contains(sent, "+77011234567") != tt.skipSent {
			t.Errorf("consent %s: the vendor got %s", tt.consent, sent)
		}
		if !tt.skipSent {
			intent := e.intentOf(t, resp.Header.Get("X-Request-Id"))
			if !slices.Contains(intent.RequestWithheld, "metadata.edocument.skip_input") {
				t.Errorf("withheld %v does not name skip_input", intent.RequestWithheld)
			}
		}
	}
}

func TestDevBiometricSessionResultAndVideo(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	created := decode(t, e.step(t, "biometric-verification", "POST", "/v/biometric/api/v1/flows/session/create/",
		`{"metadata":{"face2face":{"photo1":"aGVsbG8gZmFjZQ=="},"edocument":{"iin":{"value":"900315401233","changeable":false}}}}`))
	id, _ := created["session_id"].(string)
	if id == "" {
		t.Fatalf("no session_id: %v", created)
	}
	result := decode(t, e.step(t, "biometric-verification", "GET", "/v/biometric/api/v1/flows/session/result/?session_id="+id+"&flow_api_key=app-sent-key", ""))
	if result["id"] != id {
		t.Errorf("result for %v, want %s", result["id"], id)
	}
	r := lastRequest(t, e.sandboxes.Biometric)
	if !strings.Contains(r.RawQuery, "flow_api_key="+e.creds.BiometricFlowAPIKey) {
		t.Error("result call did not carry the injected flow_api_key")
	}
	video := e.step(t, "biometric-verification", "GET", "/v/biometric/api/v1/liveness/video/download/?session_id="+id, "")
	if len(video) < 1024 {
		t.Errorf("video of %d bytes", len(video))
	}
	// The profile lets the file's name through (the session id), nothing else of
	// the vendor's own headers.
	resp, _ := call(t, e.app, "GET", e.gatewayURL()+"/v/biometric/api/v1/liveness/video/download/?session_id="+id, "", under("dev-kyc", "biometric-verification"))
	if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, id+".mp4") {
		t.Errorf("Content-Disposition %q", cd)
	}
	// A session consentgate never saw created is not asked for (issue 13 §2).
	before := e.sandboxes.Biometric.Count()
	resp, body := call(t, e.app, "GET", e.gatewayURL()+"/v/biometric/api/v1/flows/session/result/?session_id=00000000-0000-0000-0000-000000000000", "", under("dev-kyc", "biometric-verification"))
	if resp.StatusCode != http.StatusForbidden || e.sandboxes.Biometric.Count() != before {
		t.Errorf("unknown session: %d %s", resp.StatusCode, body)
	}
	e.assertNoSecrets(t, "vendor error", string(body))
	e.assertNoSecrets(t, "log", e.logs.String())
}

// A FinID verification is pending, then succeeded with the person or failed
// with a reason. Only a succeeded one discloses the person: a failed one
// passes no personal data, even when the vendor sends some along.
func TestDevFinIDFailureDisclosesNothing(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	verify := func(photo string) string {
		v := decode(t, e.step(t, "biometric-verification", "POST", "/v/finid/api/v1/verifications",
			`{"iin":"900315401233","phone":"+77011234567","photo":"`+base64.StdEncoding.EncodeToString([]byte(photo))+`"}`))
		if v["status"] != "pending" || v["person"] != nil {
			t.Fatalf("the request's answer: %v", v)
		}
		return v["id"].(string)
	}
	read := func(id string) (map[string]any, string) {
		resp, b := call(t, e.app, "GET", e.gatewayURL()+"/v/finid/api/v1/verifications/"+id, "", under("dev-kyc", "biometric-verification"))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		return decode(t, b), string(b)
	}
	ok, _ := read(verify("a face"))
	if ok["status"] != "succeeded" || ok["person"] == nil {
		t.Errorf("a succeeded verification: %v", ok)
	}
	failedID := verify("SPOOF mask")
	failed, _ := read(failedID)
	if failed["status"] != "failed" || failed["reason"] != "liveness_failed" || failed["person"] != nil {
		t.Errorf("a failed verification: %v", failed)
	}
	// A vendor that sends the person along with a failure.
	e.sandboxes.FinID.SetFault(sandbox.Fault{Kind: sandbox.FaultAnswer, Body: []byte(`{"id":"` + failedID +
		`","status":"failed","reason":"photo_mismatch","person":{"iin":"900315401233","surname":"Nurlanova","phone":"+77011234567"}}`)})
	leaky, body := read(failedID)
	e.sandboxes.FinID.SetFault(sandbox.Fault{})
	// Under biometric-verification the policy passes the IIN and phone masked:
	// from a failure not even that.
	if leaky["reason"] != "photo_mismatch" || leaky["person"] != nil || strings.Contains(body, "900315401233") || strings.Contains(body, "Nurlanova") {
		t.Errorf("a failure passed personal data: %s", body)
	}
	e.assertNoPII(t, "900315401233", "Nurlanova")
}

func TestDevFinIDTokenIsFetchedOnceAndReused(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	v := decode(t, e.step(t, "biometric-verification", "POST", "/v/finid/api/v1/verifications", `{"iin":"900315401233","phone":"+77011234567","photo":"aGVsbG8gZmFjZQ=="}`))
	id, _ := v["id"].(string)
	got := decode(t, e.step(t, "biometric-verification", "GET", "/v/finid/api/v1/verifications/"+id, ""))
	if got["id"] != id {
		t.Errorf("verification %v, want %s", got["id"], id)
	}
	tokens := 0
	for _, r := range e.sandboxes.FinID.Requests() {
		if r.Path == "/oauth/token" {
			tokens++
		}
	}
	if tokens != 1 {
		t.Errorf("%d token requests for two calls, want 1 (the token must be cached)", tokens)
	}
	e.assertNoSecrets(t, "log", e.logs.String())
}

func TestDevBanqwareConsentFlow(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	uid, cid, upid := e.banqwareCustomer(t)
	// The update callback arrives at the app through consentgate.
	msg := e.inbox.messages()[0]
	if msg.Path != "/banqware" || msg.Header.Get("X-Consentgate-Vendor") != "banqware" ||
		!strings.Contains(msg.Body, upid) || !strings.Contains(msg.Body, `"status":"completed"`) {
		t.Errorf("the app got %s %s", msg.Path, msg.Body)
	}
	if got := decode(t, e.step(t, "account-aggregation", "GET", "/v/banqware/update-resources/api/user/id/"+uid+"/update/"+upid, "")); got["status"] != "completed" {
		t.Fatalf("update: %v", got)
	}
	accounts := e.step(t, "account-aggregation", "GET", "/v/banqware/account-info-resources/api/user/id/"+uid+"/accounts", "")
	if !bytes.Contains(accounts, []byte("CZ")) {
		t.Errorf("accounts: %s", accounts)
	}
	e.step(t, "account-aggregation", "GET", "/v/banqware/kyc-resources/api/user/id/"+uid+"/kyc", "")
	e.step(t, "account-aggregation", "DELETE", "/v/banqware/consent-resources/api/user/id/"+uid+"/consent/"+cid, "")
	// Erased: the data acquired with the consent is gone.
	resp2, _ := call(t, e.app, "GET", e.gatewayURL()+"/v/banqware/kyc-resources/api/user/id/"+uid+"/kyc", "", under("dev-kyc", "account-aggregation"))
	if resp2.StatusCode/100 == 2 {
		t.Error("KYC data still served after the consent was deleted")
	}
	for _, r := range e.sandboxes.Banqware.Requests() {
		if strings.HasPrefix(r.Path, "/sandbox/authorize/") {
			continue
		}
		if r.ClientCert == nil {
			t.Errorf("%s %s reached banqware without our client certificate", r.Method, r.Path)
		}
	}
}

// Issue 13 §4: a vendor callback is authenticated by more than its source
// address. The hub calls back the URLs registered through consentgate, which
// carry a token the app never sees; a callback without it is refused.
func TestDevCallbacksNeedTheRegisteredToken(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	uid, cid, upid := e.banqwareCustomer(t)
	token := e.devSecret(t, "vendors/banqware", "callback_token")
	// The hub got tokened URLs; the app saw them redacted.
	var registered bool
	for _, r := range e.sandboxes.Banqware.Requests() {
		if r.Method == "PUT" && strings.Contains(string(r.Body), "consentgate_token="+token) {
			registered = true
		}
	}
	if !registered {
		t.Error("the callback URL registered with the hub carries no token")
	}
	e.assertNoSecrets(t, "log", e.logs.String())
	// Every answer of the hub is scrubbed of it: the update echoes its callbackUrl.
	e.step(t, "account-aggregation", "GET", "/v/banqware/update-resources/api/user/id/"+uid+"/update/"+upid, "")
	// A URL on another host never gets the token (the granted app registers it).
	before := e.sandboxes.Banqware.Count()
	host, port, _ := net.SplitHostPort(e.srv.Addr(proxy.ListenCallbacks))
	e.step(t, "account-aggregation", "PUT", "/v/banqware/management-resources/api/tenant/urls",
		`{"redirectUrls":["https://onboarding.example/banqware/return"],"updateCallbackUrls":["https://attacker.example/callbacks/banqware/updates","https://`+host+`.attacker.example:`+port+`/callbacks/banqware/updates"]}`)
	if r := e.sandboxes.Banqware.Requests()[before]; strings.Contains(string(r.Body), token) || !strings.Contains(string(r.Body), "attacker.example") {
		t.Errorf("the hub got %s", r.Body)
	}
	if !strings.Contains(e.inbox.messages()[0].Body, upid) {
		t.Errorf("the genuine callback did not reach the app: %+v", e.inbox.messages())
	}

	hub := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.pool(t, certs.DevRootCert)}}}
	base := e.callbacksURL() + "/callbacks/banqware/updates"
	body := `{"userId":"` + uid + `","consentId":"` + cid + `","updateId":"` + upid + `","status":"completed"}`
	// With the token, ids that are not ids, or none, are not forwarded either.
	for name, forged := range map[string]string{
		"an array of ids": `{"userId":["` + uid + `"],"status":"completed"}`,
		"an object":       `{"userId":{"x":"` + uid + `"},"status":"completed"}`,
		"no ids":          `{"status":"completed"}`,
	} {
		before := len(e.inbox.messages())
		resp, answer := call(t, hub, "POST", base+"?consentgate_token="+token, forged, nil)
		if resp.StatusCode/100 != 4 || len(e.inbox.messages()) != before {
			t.Errorf("%s: %d %s, forwarded %v", name, resp.StatusCode, answer, len(e.inbox.messages()) != before)
		}
	}
	for name, url := range map[string]string{
		"no token":        base,
		"a wrong token":   base + "?consentgate_token=" + strings.Repeat("0", len(token)),
		"another name":    base + "?token=" + token,
		"token truncated": base + "?consentgate_token=" + token[:len(token)-1],
	} {
		before := len(e.inbox.messages())
		resp, answer := call(t, hub, "POST", url, body, nil)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: %d %s", name, resp.StatusCode, answer)
		}
		if len(e.inbox.messages()) != before {
			t.Errorf("%s: forwarded to the app", name)
		}
	}
}

// A rotated secret is used for the next request after a reload (SIGHUP), without
// a restart; a reload of a broken file keeps the values in use.
func TestDevSecretRotationWithoutRestart(t *testing.T) {
	dir := t.TempDir()
	e := startTestDev(t, dir)
	file := filepath.Join(dir, "secrets.yaml")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	const rotated = "rotated-airbank-api-key-0123456789"
	if err := os.WriteFile(file, bytes.Replace(data, []byte(e.creds.AirbankAPIKey), []byte(rotated), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	e.reload(context.Background())
	resp, body := call(t, e.app, "GET", e.gatewayURL()+"/v/airbank/openapi/glClientIdentity/v1/cards", "", under("dev-kyc", "account-aggregation"))
	if got := lastRequest(t, e.sandboxes.Airbank).Header.Get("Apikey"); got != rotated {
		t.Fatalf("vendor saw apikey %q after rotation", got)
	}
	// The sandbox still expects the old key: the vendor's refusal is passed on,
	// with the rotated key scrubbed.
	if resp.StatusCode != http.StatusUnauthorized || bytes.Contains(body, []byte(rotated)) {
		t.Errorf("after rotation: %d %s", resp.StatusCode, body)
	}
	if err := os.WriteFile(file, []byte("vendors/airbank: [broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.reload(context.Background())
	call(t, e.app, "GET", e.gatewayURL()+"/v/airbank/openapi/glClientIdentity/v1/cards", "", under("dev-kyc", "account-aggregation"))
	if got := lastRequest(t, e.sandboxes.Airbank).Header.Get("Apikey"); got != rotated {
		t.Errorf("a broken secrets file replaced the values in use: vendor saw %q", got)
	}
	if !strings.Contains(e.logs.String(), "reloading secrets file failed") {
		t.Error("the failed reload was not logged")
	}
}
