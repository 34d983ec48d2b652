package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// KB's verify mode through the gateway. Under identity-confirmation the data the
// end user typed in reaches KB and only whether it matches reaches the app; the
// hand-over of KB's own values is refused before KB is called; a field the
// operation does not declare, or of a category the purpose does not send,
// never leaves.
func TestDevKBVerifyMode(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	// What the bank holds, as kyc-onboarding hands it over.
	_, body := call(t, e.app, "GET", e.gatewayURL()+"/v/kb/v1/clients/me/identity", "", under("dev-kyc", "kyc-onboarding"))
	var held struct{ GivenName, Surname string }
	if err := json.Unmarshal(body, &held); err != nil || held.Surname == "" {
		t.Fatalf("identity %s: %v", body, err)
	}
	e.sandboxes.KB.Reset()

	const wrongPostalCode = "10999"
	typed := fmt.Sprintf(`{"givenName":%q,"surname":%q,"permanentAddress":{"postalCode":%q}}`, held.GivenName, held.Surname, wrongPostalCode)
	resp, body := call(t, e.app, "POST", e.gatewayURL()+"/v/kb/v1/clients/me/identity/verification", typed, under("dev-kyc", "identity-confirmation"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("verify: %d %s", resp.StatusCode, body)
	}
	want := `{"matches":{"givenName":true,"permanentAddress":{"postalCode":false},"surname":true},"verified":false}`
	if got := strings.TrimSpace(string(body)); got != want {
		t.Errorf("the app got %s, want %s", got, want)
	}
	sent := lastRequest(t, e.sandboxes.KB)
	if !strings.Contains(string(sent.Body), wrongPostalCode) || !strings.Contains(string(sent.Body), held.Surname) {
		t.Errorf("KB did not get what was typed in: %s", sent.Body)
	}
	out := e.outcomeOf(t, resp.Header.Get("X-Request-Id"))
	if !slices.Contains(out.RequestDisclosed, "surname") || !slices.Contains(out.Disclosed, "matches.surname") {
		t.Errorf("outcome record: sent %v, disclosed %v", out.RequestDisclosed, out.Disclosed)
	}

	// The hand-over under the same purpose: refused, and KB never asked.
	e.sandboxes.KB.Reset()
	resp, body = call(t, e.app, "GET", e.gatewayURL()+"/v/kb/v1/clients/me/identity", "", under("dev-kyc", "identity-confirmation"))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "purpose only verifies") {
		t.Errorf("hand-over under identity-confirmation: %d %s", resp.StatusCode, body)
	}
	if n := e.sandboxes.KB.Count(); n != 0 {
		t.Errorf("KB was called %d times for a refused call", n)
	}

	// A field the verify mode does not declare (an e-mail), and one of a category
	// the purpose does not send (account-aggregation: no national_id), stay here;
	// KB verifies what remains, and the purpose takes no verification result.
	resp, body = call(t, e.app, "POST", e.gatewayURL()+"/v/kb/v1/clients/me/identity/verification",
		fmt.Sprintf(`{"surname":%q,"birthNumber":"9107256547","email":"jana@example.cz"}`, held.Surname), under("dev-kyc", "account-aggregation"))
	if resp.StatusCode != http.StatusOK || strings.Contains(string(body), "matches") {
		t.Fatalf("verify under account-aggregation: %d %s", resp.StatusCode, body)
	}
	sent = lastRequest(t, e.sandboxes.KB)
	if !strings.Contains(string(sent.Body), held.Surname) || strings.Contains(string(sent.Body), "9107256547") || strings.Contains(string(sent.Body), "jana@") {
		t.Errorf("KB got %s: want the surname only", sent.Body)
	}
}
