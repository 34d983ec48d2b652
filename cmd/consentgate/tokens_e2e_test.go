package main

import (
	"net/http"
	"strings"
	"testing"
	"unicode"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/certs"
)

// Under kyc-onboarding the birth number and the document number reach the app
// as tokens shaped like them (the profile's preserve format): the same length,
// digits where they have digits, never the values; the document's other fields
// pass as they are (tokenize:identifiers); each call makes new tokens, and the
// outcome record names the fields tokenized, not the tokens or the values.
func TestDevTokenizesTheBirthNumberAndDocumentNumber(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	direct := e.directAirbankPersonalData(t)
	rawBN, _ := direct["birthNumber"].(string)
	rawDoc, _ := direct["primaryPersonalDocument"].(map[string]any)
	rawDN, _ := rawDoc["number"].(string)
	if rawBN == "" || rawDN == "" {
		t.Fatalf("the sandbox has no birth number or document number: %v", direct)
	}
	var tokens []string
	for range 2 {
		resp, body := call(t, e.app, "GET", e.gatewayURL()+"/v/airbank/openapi/glClientIdentity/v1/personalData", "", under("dev-kyc", "kyc-onboarding"))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		got := decode(t, body)
		doc, _ := got["primaryPersonalDocument"].(map[string]any)
		bn, _ := got["birthNumber"].(string)
		dn, _ := doc["number"].(string)
		assertShapedToken(t, bn, rawBN)
		assertShapedToken(t, dn, rawDN)
		if doc["type"] != rawDoc["type"] || doc["validTo"] != rawDoc["validTo"] {
			t.Errorf("document %v: its type and validity should pass as %v", doc, rawDoc)
		}
		if out := e.outcomeOf(t, resp.Header.Get("X-Request-Id")); out.Detail["tokenized"] != "birthNumber,primaryPersonalDocument.number" {
			t.Errorf("outcome record: tokenized %q", out.Detail["tokenized"])
		}
		tokens = append(tokens, bn+dn)
	}
	if tokens[0] == tokens[1] {
		t.Error("two calls gave the same tokens: the profile asks for random ones")
	}
	e.assertNoPII(t, rawBN)
	e.assertNoPII(t, rawDN)
}

// assertShapedToken fails unless tok is a token of raw's shape: the same
// length, digits where raw has them, and not raw.
func assertShapedToken(t *testing.T, tok, raw string) {
	t.Helper()
	if tok == raw || len(tok) != len(raw) {
		t.Fatalf("%q for %q: not a token of its shape", tok, raw)
	}
	for i := range raw {
		if unicode.IsDigit(rune(raw[i])) != unicode.IsDigit(rune(tok[i])) {
			t.Fatalf("token %q does not keep the digits of %q", tok, raw)
		}
	}
}

// A token the app got from Air Bank under kyc-onboarding goes back toward KB's
// verify mode under identity-confirmation, which reveals national_id: KB gets
// the birth number, never the token, and the intent record names the token by
// id. The same token in a field of another category stops the call before KB.
func TestDevRevealsTokensToTheVendor(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	raw, _ := e.directAirbankPersonalData(t)["birthNumber"].(string)
	_, personal := call(t, e.app, "GET", e.gatewayURL()+"/v/airbank/openapi/glClientIdentity/v1/personalData", "", under("dev-kyc", "kyc-onboarding"))
	tok, _ := decode(t, personal)["birthNumber"].(string)
	if tok == "" || tok == raw {
		t.Fatalf("no token: %s", personal)
	}
	e.sandboxes.KB.Reset()
	verify := e.gatewayURL() + "/v/kb/v1/clients/me/identity/verification"
	resp, body := call(t, e.app, "POST", verify, `{"birthNumber":"`+tok+`"}`, under("dev-kyc", "identity-confirmation"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("verify with a token: %d %s", resp.StatusCode, body)
	}
	sent := string(lastRequest(t, e.sandboxes.KB).Body)
	if !strings.Contains(sent, raw) || strings.Contains(sent, tok) {
		t.Errorf("KB got %s: want the birth number %s, not the token", sent, raw)
	}
	if in := e.intentOf(t, resp.Header.Get("X-Request-Id")); !strings.HasPrefix(in.Detail["revealed"], "birthNumber=") || strings.Contains(in.Detail["revealed"], tok) {
		t.Errorf("intent record: revealed %q", in.Detail["revealed"])
	}

	resp, body = call(t, e.app, "POST", verify, `{"identityDocument":{"number":"`+tok+`"}}`, under("dev-kyc", "identity-confirmation"))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "token-not-revealable") || strings.Contains(string(body), raw) {
		t.Errorf("a national_id token as a document number: %d %s", resp.StatusCode, body)
	}
	if n := e.sandboxes.KB.Count(); n != 1 {
		t.Errorf("KB was called %d times, want once", n)
	}

	// The document number's token goes back as a document number.
	rawDN, _ := e.directAirbankPersonalData(t)["primaryPersonalDocument"].(map[string]any)["number"].(string)
	docTok, _ := decode(t, personal)["primaryPersonalDocument"].(map[string]any)["number"].(string)
	resp, body = call(t, e.app, "POST", verify, `{"identityDocument":{"number":"`+docTok+`"}}`, under("dev-kyc", "identity-confirmation"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("verify with a document number token: %d %s", resp.StatusCode, body)
	}
	if sent := string(lastRequest(t, e.sandboxes.KB).Body); rawDN == "" || !strings.Contains(sent, rawDN) || strings.Contains(sent, docTok) {
		t.Errorf("KB got %s: want the document number %s, not the token", sent, rawDN)
	}
	e.assertNoPII(t, raw)
	e.assertNoPII(t, rawDN)
}

// An admin reveals one token to a person with `consentgate tokens reveal`: the
// audit log records the reason and the token's id first; an auditor may not;
// once the consent is revoked there is no value to reveal.
func TestDevAdminRevealsAToken(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	raw, _ := e.directAirbankPersonalData(t)["birthNumber"].(string)
	_, body := call(t, e.app, "GET", e.gatewayURL()+"/v/airbank/openapi/glClientIdentity/v1/personalData", "", under("dev-kyc", "kyc-onboarding"))
	tok, _ := decode(t, body)["birthNumber"].(string)
	reveal := func(who string) (string, error) {
		cert := e.pki.Path(certs.AppCert(who))
		return runCmd(t, "tokens", "reveal", "--admin", e.adminURL(), "--cert", cert, "--key", certs.KeyFile(cert),
			"--cacert", e.pki.Path(certs.DevRootCert), "--reason", "support case 4711", "--token", tok)
	}
	out, err := reveal("secops")
	if err != nil || !strings.Contains(out, `"value":"`+raw+`"`) || !strings.Contains(out, `"field":"birthNumber"`) {
		t.Fatalf("admin reveal: %v\n%s", err, out)
	}
	var rec audit.Record
	for _, r := range e.auditRecords(t) {
		if r.Kind == audit.KindAdmin && r.Detail["action"] == "token revealed" {
			rec = r
		}
	}
	if rec.Detail["reason"] != "support case 4711" || len(rec.Detail["token_id"]) != 16 || strings.Contains(rec.Detail["token_id"], tok) ||
		rec.ConsentID != "dev-kyc" || rec.App != "secops" {
		t.Errorf("audit record of the reveal: %+v", rec)
	}
	if out, err := reveal("auditor"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("an auditor revealed a token: %v\n%s", err, out)
	}
	auditor := e.pki.Path(certs.AppCert("auditor"))
	out, err = runCmd(t, "tokens", "list", "--admin", e.adminURL(), "--cert", auditor, "--key", certs.KeyFile(auditor),
		"--cacert", e.pki.Path(certs.DevRootCert), "dev-kyc")
	// The listing names the token by the id the audit record gave it.
	if err != nil || !strings.Contains(out, `"id":"`+rec.Detail["token_id"]+`"`) || strings.Contains(out, tok) || strings.Contains(out, raw) {
		t.Errorf("tokens list: %v\n%s", err, out)
	}
	if _, err := runCmd(t, "consents", "revoke", "--admin", e.adminURL(), "--cert", e.pki.Path(certs.AppCert("secops")),
		"--key", certs.KeyFile(e.pki.Path(certs.AppCert("secops"))), "--cacert", e.pki.Path(certs.DevRootCert), "dev-kyc"); err != nil {
		t.Fatal(err)
	}
	if out, err := reveal("secops"); err == nil || !strings.Contains(err.Error(), "404") || strings.Contains(out+err.Error(), raw) {
		t.Errorf("reveal after revocation: %v\n%s", err, out)
	}
	e.assertNoPII(t, raw)
}

// `consentgate subjects erase` withdraws every consent of the end user: the
// request is recorded with its reason and the subject's HMAC, never the id;
// each consent's revocation says its data key was destroyed; the tokens the
// app got no longer reveal and the next call is refused before the vendor. An
// auditor may not erase.
func TestDevErasesAnEndUser(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	_, body := call(t, e.app, "GET", e.gatewayURL()+"/v/airbank/openapi/glClientIdentity/v1/personalData", "", under("dev-kyc", "kyc-onboarding"))
	tok, _ := decode(t, body)["birthNumber"].(string)
	erase := func(who string) (string, error) {
		cert := e.pki.Path(certs.AppCert(who))
		t.Setenv("ERASE_SUBJECT", devSubject)
		return runCmd(t, "subjects", "erase", "--admin", e.adminURL(), "--cert", cert, "--key", certs.KeyFile(cert),
			"--cacert", e.pki.Path(certs.DevRootCert), "--reason", "GDPR request 77", "--subject-env", "ERASE_SUBJECT")
	}
	if out, err := erase("auditor"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("an auditor erased an end user: %v\n%s", err, out)
	}
	out, err := erase("secops")
	if err != nil || !strings.Contains(out, `"dev-kyc"`) || !strings.Contains(out, `"dev-age"`) || strings.Contains(out, devSubject) {
		t.Fatalf("erase: %v\n%s", err, out)
	}
	var asked audit.Record
	destroyed := map[string]bool{}
	for _, r := range e.auditRecords(t) {
		if r.Kind == audit.KindAdmin && r.Detail["action"] == "subject erasure" {
			asked = r
		}
		if r.Kind == audit.KindConsent && r.Detail["data_key_destroyed"] == "true" {
			destroyed[r.ConsentID] = true
		}
	}
	if asked.Detail["reason"] != "GDPR request 77" || asked.SubjectHMAC == "" || asked.App != "secops" {
		t.Errorf("the erasure's record: %+v", asked)
	}
	if !destroyed["dev-kyc"] {
		t.Errorf("no record says dev-kyc's data key was destroyed (%v)", destroyed)
	}
	cert := e.pki.Path(certs.AppCert("secops"))
	if out, err := runCmd(t, "tokens", "reveal", "--admin", e.adminURL(), "--cert", cert, "--key", certs.KeyFile(cert),
		"--cacert", e.pki.Path(certs.DevRootCert), "--reason", "check", "--token", tok); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("a token of the erased end user revealed: %v\n%s", err, out)
	}
	e.sandboxes.Airbank.Reset()
	resp, body := call(t, e.app, "GET", e.gatewayURL()+"/v/airbank/openapi/glClientIdentity/v1/personalData", "", under("dev-kyc", "kyc-onboarding"))
	if resp.StatusCode != http.StatusForbidden || e.sandboxes.Airbank.Count() != 0 {
		t.Errorf("a call after the erasure: %d %s, Air Bank called %d times", resp.StatusCode, body, e.sandboxes.Airbank.Count())
	}
	e.assertNoPII(t, devSubject)
}
