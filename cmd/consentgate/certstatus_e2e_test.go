package main

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/internal/logsink"
)

// certs status lists what the running gateway uses, from its admin listener:
// its serving certificate, the internal CA and the CRL's signer, and per
// vendor the client certificate (kind, key location, revocation) and CAs.
func TestCertsStatus(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	auditor := e.pki.Path(certs.AppCert("auditor"))
	args := []string{"certs", "status", "--admin", e.adminURL(), "--cert", auditor, "--key", certs.KeyFile(auditor), "--cacert", e.pki.Path(certs.DevRootCert)}
	out := &logsink.Buffer{}
	if err := run(context.Background(), append(args, "--json"), out, out); err != nil {
		t.Fatalf("certs status: %v\n%s", err, out)
	}
	var list []certs.InUse
	if err := json.Unmarshal([]byte(out.String()), &list); err != nil {
		t.Fatal(err)
	}
	seen := map[string]certs.InUse{}
	for _, c := range list {
		seen[c.Role+" "+c.Vendor] = c
	}
	for _, want := range []string{"serving ", "client-ca ", "client-crl-issuer ", "vendor-client kb", "vendor-client banqware", "vendor-ca kb"} {
		if _, ok := seen[want]; !ok {
			t.Errorf("no %q in %d certificates", want, len(list))
		}
	}
	kb := seen["vendor-client kb"]
	if kb.Kind != certs.KindServer || kb.Key != "secret:vendors/kb#client_key" || !strings.HasPrefix(kb.Revocation, certs.RevocationNotChecked) || kb.DaysLeft < 300 {
		t.Errorf("kb's client certificate: %+v", kb)
	}
	if crl := seen["client-crl-issuer "]; crl.Revocation != "the CRL it signs: current" {
		t.Errorf("the CRL's state: %+v", crl)
	}
	out = &logsink.Buffer{}
	if err := run(context.Background(), args, out, out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "vendor-client") || !strings.Contains(out.String(), "secret:vendors/kb#client_key") {
		t.Errorf("the table:\n%s", out)
	}
	// Every series the shipped alert rules watch is one the gateway exports.
	rules, err := os.ReadFile("../../deploy/prometheus/consentgate-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	resp, metrics := call(t, e.clientFor(t, "auditor"), "GET", e.adminURL()+"/metrics", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	for _, name := range regexp.MustCompile(`consentgate_[a-z_]+`).FindAllString(string(rules), -1) {
		if !strings.Contains(string(metrics), "\n"+name) {
			t.Errorf("the alert rules watch %s, which the gateway does not export", name)
		}
	}
	app := e.pki.Path(certs.AppCert("onboarding-web"))
	args[5], args[7] = app, certs.KeyFile(app)
	if err := run(context.Background(), args, out, out); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("an app asked for the certificates: %v", err)
	}
}
