package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/internal/sandbox"
)

// consentErasure is GET /v1/consents/{id}'s erasure field, as the app reads it.
func (e *devEnv) consentErasure(t *testing.T, id string) []map[string]any {
	t.Helper()
	resp, body := call(t, e.app, "GET", e.adminURL()+"/v1/consents/"+id, "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("consent %s: %d %s", id, resp.StatusCode, body)
	}
	var c struct {
		Erasure []map[string]any `json:"erasure"`
	}
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	return c.Erasure
}

// Issue 13 §3: revoking a consent erases what the vendor holds under it. Before,
// revoking changed nothing at banqware, and the app's own DELETE of the bank
// consent was then refused ("consent revoked").
func TestDevWithdrawalReachesTheVendor(t *testing.T) {
	dir := t.TempDir()
	e := startTestDev(t, dir)
	uid, cid, _ := e.banqwareCustomer(t)
	app := e.pki.Path(certs.AppCert("onboarding-web"))
	cli := func(verb string) string {
		t.Helper()
		out, err := runCmd(t, "consents", verb, "--admin", e.adminURL(), "--cert", app, "--key", certs.KeyFile(app),
			"--cacert", e.pki.Path(certs.DevRootCert), "dev-kyc")
		if err != nil {
			t.Fatalf("consents %s: %v %s", verb, err, out)
		}
		return out
	}
	if out := cli("revoke"); !strings.Contains(out, `"status":"revoked"`) {
		t.Fatalf("revoke: %s", out)
	}
	erasePath := "/sandbox/consent-resources/api/user/id/" + uid + "/consent/" + cid
	waitFor(t, "the bank consent deleted at banqware", func() bool {
		for _, r := range e.sandboxes.Banqware.Requests() {
			if r.Method == "DELETE" && r.Path == erasePath && r.Status == http.StatusNoContent {
				return true
			}
		}
		return false
	})
	var status []map[string]any
	waitFor(t, "the erasure marked done", func() bool {
		status = e.consentErasure(t, "dev-kyc")
		return len(status) > 0 && status[0]["status"] == "done"
	})
	if out := cli("get"); !strings.Contains(out, `"erasure":[{"consent_id":"dev-kyc","vendor":"banqware","kind":"consent","status":"done"`) {
		t.Errorf("consents get: %s", out)
	}
	byVendor := map[string]map[string]any{}
	for _, s := range status {
		byVendor[s["vendor"].(string)] = s
	}
	if s := byVendor["banqware"]; s["kind"] != "consent" || s["attempts"] != 1.0 {
		t.Errorf("banqware erasure %v", s)
	}
	for _, v := range []string{"kb", "airbank", "biometric", "finid"} {
		if s := byVendor[v]; s["status"] != "unavailable" || s["reason"] == "" {
			t.Errorf("%s: %v, want unavailable with the profile's reason", v, s)
		}
	}
	// The erasure went through the pipeline: recorded under the consent, by the outbox.
	var erasures []audit.Record
	for _, r := range e.auditRecords(t) {
		if r.Operation == "banqware.deleteConsent" && r.Detail["initiator"] == "erasure" {
			erasures = append(erasures, r)
		}
	}
	if len(erasures) != 2 || erasures[1].Kind != audit.KindOutcome || erasures[1].Status != http.StatusNoContent ||
		erasures[1].ConsentID != "dev-kyc" || !e.names(t, erasures[1].SubjectHMAC, devSubject) {
		t.Errorf("erasure records %+v", erasures)
	}
	// The person's report says so, from the log, with the auditor certificate.
	auditor := e.pki.Path(certs.AppCert("auditor"))
	out, err := runCmd(t, "audit", "report", "--admin", e.adminURL(), "--cert", auditor, "--key", certs.KeyFile(auditor), "--pubkey", filepath.Join(dir, "audit.pub"),
		"--cacert", e.pki.Path(certs.DevRootCert), "--config", writeDevConfig(t, dir), "--subject", devSubject)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, want := range []string{"| dev-kyc | onboarding-web | revoked ", "banqware: done", "finid: unavailable (FinID's documents name no erasure call",
		// The hub calls carried ids and statuses only: no disclosure.
		"| account-aggregation | banqware | onboarding-web |  | 0 | 5 | 0 | 0 |"} {
		if !strings.Contains(out, want) {
			t.Errorf("the person's report lacks %q:\n%s", want, out)
		}
	}
	// The app may still erase under its withdrawn consent, and do nothing else.
	before := e.sandboxes.Banqware.Count()
	resp, body := call(t, e.app, "DELETE", e.gatewayURL()+"/v/banqware/consent-resources/api/user/id/"+uid+"/consent/"+cid, "", under("dev-kyc", ""))
	if resp.Header.Get("Content-Type") == "application/problem+json" || e.sandboxes.Banqware.Count() != before+1 {
		t.Errorf("the app's own erasure after revocation: %d %s", resp.StatusCode, body)
	}
	resp, body = call(t, e.app, "GET", e.gatewayURL()+"/v/banqware/account-info-resources/api/user/id/"+uid+"/accounts", "", under("dev-kyc", "account-aggregation"))
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a read under the revoked consent: %d %s", resp.StatusCode, body)
	}
}

// A gateway killed (SIGKILL) while the vendor is being asked to erase loses no
// erasure: the outbox entry survives in the store, and the restarted gateway
// asks again once the attempt's lease has run out.
func TestReliabilityErasureSurvivesSIGKILL(t *testing.T) {
	gw, fw, admin := freeAddr(t), freeAddr(t), freeAddr(t)
	dir, file, sb := serveWithSandboxes(t, gw, fw, admin)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, file, string(data)+"consents:\n  erasure_interval: 200ms\n  erasure_lease: 2s\n")
	cmd := startCommand(t, "serve", "--config", file, "--log-level", "error")
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	app := processClient(t, dir)
	adminURL, gatewayURL := "https://"+admin, "https://"+gw+"/v/banqware"
	status, _, body, err := appCall(context.Background(), app, adminURL+"/v1/consents", "POST",
		`{"subject":"erasure-user","vendors":["banqware"],"purposes":["account-aggregation"],"categories":["account"],"evidence":{"text":"checkbox"},"ttl":"24h"}`, nil)
	if err != nil || status != http.StatusCreated {
		t.Fatalf("consent: %d %s %v", status, body, err)
	}
	consentID := decode(t, body)["id"].(string)
	step := func(method, path, reqBody string) map[string]any {
		t.Helper()
		status, _, body, err := appCall(context.Background(), app, gatewayURL+path, method, reqBody, under(consentID, "account-aggregation"))
		if err != nil || status/100 != 2 {
			t.Fatalf("%s %s: %d %s %v", method, path, status, body, err)
		}
		return decode(t, body)
	}
	step("PUT", "/management-resources/api/tenant/urls", `{"redirectUrls":["https://onboarding.example/r"],"updateCallbackUrls":[]}`)
	uid := step("POST", "/user-resources/api/user", `{"clientId":"erasure-1"}`)["userId"].(string)
	cid := step("POST", "/consent-resources/api/user/id/"+uid+"/consent", `{"bankId":"KOMBCZPP","bankIdType":"BIC","redirectUrl":"https://onboarding.example/r"}`)["consentId"].(string)
	erasePath := "/sandbox/consent-resources/api/user/id/" + uid + "/consent/" + cid
	deletes := func(answered int) int {
		n := 0
		for _, r := range sb.Banqware.Requests() {
			if r.Method == "DELETE" && r.Path == erasePath && r.Status == answered {
				n++
			}
		}
		return n
	}

	// The vendor hangs on the erasure; the gateway dies in the middle of it.
	sb.Banqware.SetFault(sandbox.Fault{Kind: sandbox.FaultHang})
	if status, _, body, err := appCall(context.Background(), app, adminURL+"/v1/consents/"+consentID, "DELETE", "", nil); err != nil || status != http.StatusOK {
		t.Fatalf("revoke: %d %s %v", status, body, err)
	}
	waitFor(t, "the erasure under way at banqware", func() bool { return deletes(0) > 0 })
	cmd.Process.Kill()
	cmd.Wait()

	sb.Banqware.SetFault(sandbox.Fault{})
	cmd = startCommand(t, "serve", "--config", file, "--log-level", "error")
	waitFor(t, "the erasure asked again after the restart", func() bool { return deletes(http.StatusNoContent) == 1 })
	waitFor(t, "the erasure recorded as done", func() bool {
		status, _, body, err := appCall(context.Background(), app, adminURL+"/v1/consents/"+consentID, "GET", "", nil)
		return err == nil && status == http.StatusOK && strings.Contains(string(body), `"status":"done"`)
	})
}
