package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// KB's verify mode through the gateway. Under identity-confirmation the data the
// end user typed in reaches KB and only whether it matches reaches the app; the
// hand-over of KB's own values is refused before KB is called, and so is the
// verify mode under a purpose that does not verify; a field the operation does
// not declare never leaves, and the app is told; a consent verifies 5 times a
// day, not enough to guess a birth number.
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

	// kyc-onboarding sees the birth number masked: the verify mode would give
	// it away one guess at a time.
	resp, body = call(t, e.app, "POST", e.gatewayURL()+"/v/kb/v1/clients/me/identity/verification",
		`{"birthNumber":"9107256547"}`, under("dev-kyc", "kyc-onboarding"))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "purpose does not verify") {
		t.Errorf("verify under kyc-onboarding: %d %s", resp.StatusCode, body)
	}
	if n := e.sandboxes.KB.Count(); n != 0 {
		t.Errorf("KB was called %d times for refused calls", n)
	}

	// A field the verify mode does not declare (an e-mail) stays here, and the
	// app is told that something was not sent.
	resp, body = call(t, e.app, "POST", e.gatewayURL()+"/v/kb/v1/clients/me/identity/verification",
		fmt.Sprintf(`{"surname":%q,"email":"jana@example.cz"}`, held.Surname), under("dev-kyc", "identity-confirmation"))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Consentgate-Request-Withheld") != "1" {
		t.Fatalf("verify with an undeclared field: %d, request withheld %q (%v): %s", resp.StatusCode, resp.Header.Get("X-Consentgate-Request-Withheld"), e.outcomeOf(t, resp.Header.Get("X-Request-Id")).RequestWithheld, body)
	}
	sent = lastRequest(t, e.sandboxes.KB)
	if !strings.Contains(string(sent.Body), held.Surname) || strings.Contains(string(sent.Body), "jana@") {
		t.Errorf("KB got %s: want the surname only", sent.Body)
	}

	// Two verifications so far: three more today, then 429 and KB is not asked.
	for i := range 4 {
		resp, body = call(t, e.app, "POST", e.gatewayURL()+"/v/kb/v1/clients/me/identity/verification",
			`{"birthNumber":"910725654`+strconv.Itoa(i)+`"}`, under("dev-kyc", "identity-confirmation"))
	}
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), "consent-call-limit") || resp.Header.Get("Retry-After") == "" {
		t.Errorf("the sixth verification: %d, Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if n := e.sandboxes.KB.Count(); n != 4 { // since the reset: the e-mail one and three
		t.Errorf("KB verified %d times since the first, want 4", n)
	}
}
