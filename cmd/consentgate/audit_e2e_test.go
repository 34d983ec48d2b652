package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/logsink"
)

// runCmd runs the CLI in-process and returns stdout+stderr.
func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out := &logsink.Buffer{}
	err := run(context.Background(), args, out, out)
	return out.String(), err
}

// The end-to-end story of the audit log: calls leave records; after the gateway
// stops, the file verifies with only the public key; an export holds no secret
// and no raw personal value; search finds a person by app user id and by birth
// number; tampering with the export is caught with the sequence number.
func TestDevAuditTrail(t *testing.T) {
	dir := t.TempDir()
	e, stop := startTestDevStoppable(t, dir)
	defer stop()
	direct := e.directAirbankPersonalData(t)
	calls := []struct{ consent, purpose, path string }{
		{"dev-kyc", "kyc-onboarding", "/v/airbank/openapi/glClientIdentity/v1/personalData"},
		{"dev-age", "age-verification", "/v/airbank/openapi/glClientIdentity/v1/personalData"},
		{"dev-kyc", "kyc-onboarding", "/v/kb/v1/clients/me/identity"},
		{"dev-kyc", "account-aggregation", "/v/airbank/openapi/glClientIdentity/v1/accounts"},
		{"", "kyc-onboarding", "/v/airbank/openapi/glClientIdentity/v1/personalData"}, // denied
	}
	for _, c := range calls {
		h := map[string]string{"X-Purpose": c.purpose}
		if c.consent != "" {
			h["X-Consent-Id"] = c.consent
		}
		call(t, e.app, "GET", e.gatewayURL()+c.path, "", h)
	}
	// Every record so far reaches the dev SIEM through the audit stream.
	head := e.running.audit.Head().Seq
	for deadline := time.Now().Add(10 * time.Second); uint64(e.inbox.siemRecords.Load()) < head; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the dev SIEM has %d of %d records", e.inbox.siemRecords.Load(), head)
		}
	}
	// The running gateway exports through the admin API to the auditor only.
	if out, err := runCmd(t, "audit", "export", "--admin", e.adminURL(),
		"--cert", e.pki.Path("apps/onboarding-web.crt"), "--key", e.pki.Path("apps/onboarding-web.key"), "--cacert", e.pki.Path("ca.crt")); err == nil {
		t.Errorf("an app certificate exported the audit log: %s", out)
	}
	live := filepath.Join(dir, "live.jsonl")
	if out, err := runCmd(t, "audit", "export", "--admin", e.adminURL(), "--out", live,
		"--cert", e.pki.Path("apps/auditor.crt"), "--key", e.pki.Path("apps/auditor.key"), "--cacert", e.pki.Path("ca.crt")); err != nil {
		t.Fatalf("auditor export: %v %s", err, out)
	}
	// Tail follows the log: the records so far, then stops with the context.
	tailCtx, cancelTail := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	tailOut := &logsink.Buffer{}
	run(tailCtx, []string{"audit", "tail", "--admin", e.adminURL(),
		"--cert", e.pki.Path("apps/auditor.crt"), "--key", e.pki.Path("apps/auditor.key"), "--cacert", e.pki.Path("ca.crt")}, tailOut, tailOut)
	cancelTail()
	if !strings.Contains(tailOut.String(), `"seq":1,`) || !strings.Contains(tailOut.String(), `"kind":"outcome"`) {
		t.Errorf("audit tail printed:\n%.500s", tailOut.String())
	}
	stop() // final checkpoint

	pub := filepath.Join(dir, "audit.pub")
	out, err := runCmd(t, "audit", "verify", "--db", filepath.Join(dir, "audit.db"), "--pubkey", pub, "--require-vouched")
	if err != nil || !strings.Contains(out, "verified:") || strings.Contains(out, "incomplete requests") {
		t.Fatalf("verify --db: %v\n%s", err, out)
	}
	if out, err := runCmd(t, "audit", "verify", "--export", live, "--pubkey", pub); err != nil {
		t.Fatalf("verify the live export: %v\n%s", err, out)
	}
	exp := filepath.Join(dir, "audit.jsonl")
	if out, err := runCmd(t, "audit", "export", "--db", filepath.Join(dir, "audit.db"), "--out", exp); err != nil {
		t.Fatalf("export: %v %s", err, out)
	}
	data, err := os.ReadFile(exp)
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{`"kind":"intent"`, `"kind":"outcome"`, `"kind":"consent"`, `"kind":"policy"`, `"kind":"system"`, `"kind":"admin"`} {
		if !bytes.Contains(data, []byte(kind)) {
			t.Errorf("export has no %s record", kind)
		}
	}
	e.assertNoSecrets(t, "audit export", string(data))
	for _, field := range []string{"birthNumber", "names", "surname", "birthDate", "birthPlace"} {
		if v, _ := direct[field].(string); v != "" && bytes.Contains(data, []byte(v)) {
			t.Errorf("audit export holds the raw %s", field)
		}
	}
	if bytes.Contains(data, []byte(devSubject)) {
		t.Error("audit export holds the raw subject")
	}

	// Search by the app's user id and by the birth number the vendor returned.
	cfgFile := writeDevConfig(t, dir)
	out, err = runCmd(t, "audit", "search", "--config", cfgFile, "--db", filepath.Join(dir, "audit.db"), "--pubkey", pub, "--subject", devSubject)
	if err != nil || !strings.Contains(out, `"kind":"consent"`) || !strings.Contains(out, `"kind":"outcome"`) {
		t.Fatalf("search by subject: %v\n%s", err, out)
	}
	out, err = runCmd(t, "audit", "search", "--config", cfgFile, "--export", exp, "--pubkey", pub, "--subject", direct["birthNumber"].(string))
	if err != nil || !strings.Contains(out, `"operation":"airbank.personalData"`) {
		t.Fatalf("search by birth number: %v\n%s", err, out)
	}

	// CSV is a view for spreadsheets.
	out, err = runCmd(t, "audit", "export", "--db", filepath.Join(dir, "audit.db"), "--format", "csv")
	if err != nil || !strings.HasPrefix(out, "seq,time,node,kind,") || !strings.Contains(out, ",outcome,") {
		t.Errorf("csv export: %v\n%.300s", err, out)
	}

	// The processing report counts the disclosures and the denial per purpose.
	out, err = runCmd(t, "audit", "report", "--export", exp, "--pubkey", pub)
	if err != nil || !strings.Contains(out, "| kyc-onboarding | airbank | onboarding-web | ") ||
		!strings.Contains(out, "| age-verification | airbank | onboarding-web | derived_age | 1 | 0 | 0 |") {
		t.Errorf("report: %v\n%s", err, out)
	}

	// Tamper with one record of the export: caught, with its sequence number.
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	i := len(lines) / 2
	var rec map[string]any
	json.Unmarshal([]byte(lines[i]), &rec)
	lines[i] = strings.Replace(lines[i], `"status":200`, `"status":201`, 1)
	if lines[i] == strings.Split(strings.TrimSpace(string(data)), "\n")[i] {
		lines[i] = strings.Replace(lines[i], `"node":"dev-1"`, `"node":"dev-2"`, 1)
	}
	tampered := filepath.Join(dir, "tampered.jsonl")
	os.WriteFile(tampered, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
	out, err = runCmd(t, "audit", "verify", "--export", tampered, "--pubkey", pub)
	if err == nil || !strings.Contains(err.Error(), "NOT VERIFIED") {
		t.Fatalf("a tampered export verified: %v\n%s", err, out)
	}
	seq, ok := rec["seq"].(float64)
	if !ok {
		t.Fatalf("tampered line %d is not a record: %s", i, lines[i])
	}
	if want := fmt.Sprintf("record %d:", int(seq)); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the tampered record (%s)", err, want)
	}

	// Issue 14 finding 11: report and search read nothing from an export that
	// does not verify; --unverified reads it and says so in every result.
	for _, args := range [][]string{
		{"audit", "report", "--export", tampered, "--pubkey", pub},
		{"audit", "search", "--config", cfgFile, "--export", tampered, "--pubkey", pub, "--subject", devSubject},
		{"audit", "report", "--export", tampered},
	} {
		out, err := runCmd(t, args...)
		if err == nil || strings.Contains(out, "| kyc-onboarding |") || strings.Contains(out, `"kind"`) {
			t.Errorf("%v: %v\n%.300s", args, err, out)
		}
	}
	out, err = runCmd(t, "audit", "report", "--export", tampered, "--unverified")
	if err != nil || !strings.Contains(out, "**UNVERIFIED:**") {
		t.Errorf("report --unverified: %v\n%.300s", err, out)
	}
	out, err = runCmd(t, "audit", "search", "--config", cfgFile, "--export", tampered, "--unverified", "--subject", devSubject)
	if err != nil || strings.Count(out, `"unverified":true`) != strings.Count(out, `"seq":`) || !strings.Contains(out, `"unverified":true`) {
		t.Errorf("search --unverified: %v\n%.300s", err, out)
	}
}

// writeDevConfig writes the dev configuration as a file, for the CLI commands
// that take --config (they read the dev secrets file through it).
func writeDevConfig(t *testing.T, dir string) string {
	t.Helper()
	if _, err := devPolicies(filepath.Join(dir, "none"), false, dir); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("../../configs/dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(src))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "data_dir:"):
			line = "data_dir: " + dir
		case strings.HasPrefix(line, "  - vendors/"):
			line = "  - " + filepath.Join(mustAbs(t, "../../configs"), strings.TrimPrefix(line, "  - "))
		}
		b.WriteString(line + "\n")
	}
	file := filepath.Join(dir, "dev-config.yaml")
	writeTestFile(t, file, b.String())
	return file
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// When the audit log cannot be written, /readyz says so, calls stop before the
// vendor with 503, and consent changes are refused.
func TestDevAuditUnwritable(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	if resp, _ := call(t, e.app, "GET", e.adminURL()+"/readyz", "", nil); resp.StatusCode != 200 {
		t.Fatalf("readyz before: %d", resp.StatusCode)
	}
	if err := e.audit.Close(); err != nil {
		t.Fatal(err)
	}
	if resp, _ := call(t, e.app, "GET", e.adminURL()+"/readyz", "", nil); resp.StatusCode != 503 {
		t.Errorf("readyz with the audit log closed: %d", resp.StatusCode)
	}
	resp, body := call(t, e.app, "GET", e.gatewayURL()+"/v/kb/v1/clients/me/identity", "", under("dev-kyc", "kyc-onboarding"))
	if resp.StatusCode != 503 || !strings.Contains(string(body), "audit-unavailable") || e.sandboxes.KB.Count() != 0 {
		t.Errorf("call with the audit log closed: %d %s (kb calls %d)", resp.StatusCode, body, e.sandboxes.KB.Count())
	}
	resp, body = call(t, e.app, "POST", e.adminURL()+"/v1/consents", `{"subject":"u","vendors":["kb"],"purposes":["kyc-onboarding"],"categories":["identity"],"evidence":{"text":"x"},"ttl":"1h"}`, nil)
	if resp.StatusCode != 503 {
		t.Errorf("consent created without an audit record: %d %s", resp.StatusCode, body)
	}
}

// /metrics counts calls by vendor, operation, decision and status, and shows the
// policy, audit and certificate figures, with no personal value or secret.
func TestDevMetrics(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	call(t, e.app, "GET", e.gatewayURL()+"/v/airbank/openapi/glClientIdentity/v1/personalData", "", under("dev-kyc", "kyc-onboarding"))
	call(t, e.app, "GET", e.gatewayURL()+"/v/airbank/openapi/glClientIdentity/v1/personalData", "", nil)
	resp, body := call(t, e.clientFor(t, "secops"), "GET", e.adminURL()+"/metrics", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("metrics: %d", resp.StatusCode)
	}
	// Issue 14 finding 9: operators' figures, not any certificate's: an app,
	// listed or not, gets 403 on /metrics and on the policy status.
	for name, c := range map[string]*http.Client{"app": e.app, "unlisted app": e.issueApp(t, "unlisted-app", "app")} {
		for _, path := range []string{"/metrics", "/v1/policy/status"} {
			if resp, b := call(t, c, "GET", e.adminURL()+path, "", nil); resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s %s: %d %.80s", name, path, resp.StatusCode, b)
			}
		}
	}
	if resp, _ := call(t, e.clientFor(t, "auditor"), "GET", e.adminURL()+"/v1/policy/status", "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("auditor policy status: %d", resp.StatusCode)
	}
	m := string(body)
	for _, want := range []string{
		`consentgate_requests_total{decision="allow",operation="airbank.personalData",status="200",vendor="airbank"} 1`,
		`consentgate_requests_total{decision="deny",operation="airbank.personalData",status="403",vendor="airbank"} 1`,
		`consentgate_stage_seconds_count{stage="policy"} 2`,
		`consentgate_stage_seconds_count{stage="upstream"} 1`,
		`consentgate_policy_decisions_total{result="allow"} 1`,
		`consentgate_policy_reload_failures_total 0`,
		`consentgate_audit_writable 1`,
		`consentgate_vendor_certificate_expiry_days{vendor="kb"} 36`, // the dev seal is valid a year
		`consentgate_audit_commits_total`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	e.assertNoSecrets(t, "metrics", m)
	if strings.Contains(m, devSubject) || strings.Contains(m, "dev-kyc") {
		t.Error("metrics carry a subject or consent id")
	}
}

// A security team tightens the policy and replays the recorded decisions
// against the candidate first: the calls that would now be refused are named.
func TestDevPolicyReplay(t *testing.T) {
	dir := t.TempDir()
	e, stop := startTestDevStoppable(t, dir)
	call(t, e.app, "GET", e.gatewayURL()+"/v/airbank/openapi/glClientIdentity/v1/personalData", "", under("dev-kyc", "kyc-onboarding"))
	call(t, e.app, "GET", e.gatewayURL()+"/v/airbank/openapi/glClientIdentity/v1/accounts", "", under("dev-kyc", "account-aggregation"))
	call(t, e.app, "GET", e.gatewayURL()+"/v/airbank/openapi/glClientIdentity/v1/cards", "", nil) // denied
	stop()
	exp := filepath.Join(dir, "audit.jsonl")
	if out, err := runCmd(t, "audit", "export", "--db", filepath.Join(dir, "audit.db"), "--out", exp); err != nil {
		t.Fatalf("export: %v %s", err, out)
	}
	cfg := writeDevConfig(t, dir)

	// The same policy: nothing changes.
	out, err := runCmd(t, "policy", "replay", "--policy", filepath.Join(dir, "policies"), "--audit", exp, "--config", cfg)
	if err != nil || !strings.Contains(out, "3 decisions replayed, 0 would change") {
		t.Fatalf("replay with the same policy: %v\n%s", err, out)
	}
	// A candidate without kyc-onboarding for the app.
	candidate := filepath.Join(dir, "candidate")
	if _, err := devPolicies(filepath.Join(dir, "none"), false, candidate); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(candidate, "policies", "data.yaml"))
	edited := strings.Replace(string(data), "      - kyc-onboarding\n", "", 1)
	if edited == string(data) {
		t.Fatal("candidate edit did not apply")
	}
	writeTestFile(t, filepath.Join(candidate, "policies", "data.yaml"), edited)
	out, err = runCmd(t, "policy", "replay", "--policy", filepath.Join(candidate, "policies"), "--audit", exp, "--config", cfg)
	if err != nil || !strings.Contains(out, "3 decisions replayed, 1 would change (1 newly denied, 0 newly allowed)") ||
		!strings.Contains(out, "airbank.personalData purpose=kyc-onboarding app=onboarding-web: allow") ||
		!strings.Contains(out, "app not allowed purpose") {
		t.Fatalf("replay with the candidate: %v\n%s", err, out)
	}
}
