package main

import (
	"net/http"
	"testing"
	"unicode"
)

// Under kyc-onboarding the birth number reaches the app as a token shaped like
// one (the profile's preserve format): the same length, digits where it has
// digits, never the number; each call makes a new token, and the outcome
// record names the field tokenized, not the token or the value.
func TestDevTokenizesTheBirthNumber(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	raw, _ := e.directAirbankPersonalData(t)["birthNumber"].(string)
	if raw == "" {
		t.Fatal("the sandbox has no birth number")
	}
	var tokens []string
	for range 2 {
		resp, body := call(t, e.app, "GET", e.gatewayURL()+"/v/airbank/openapi/glClientIdentity/v1/personalData", "", under("dev-kyc", "kyc-onboarding"))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		tok, _ := decode(t, body)["birthNumber"].(string)
		if tok == raw || len(tok) != len(raw) {
			t.Fatalf("birth number %q for %q: not a token of its shape", tok, raw)
		}
		for i := range raw {
			if unicode.IsDigit(rune(raw[i])) != unicode.IsDigit(rune(tok[i])) {
				t.Fatalf("token %q does not keep the digits of %q", tok, raw)
			}
		}
		if out := e.outcomeOf(t, resp.Header.Get("X-Request-Id")); out.Detail["tokenized"] != "birthNumber" {
			t.Errorf("outcome record: tokenized %q", out.Detail["tokenized"])
		}
		tokens = append(tokens, tok)
	}
	if tokens[0] == tokens[1] {
		t.Error("two calls gave the same token: the profile asks for random ones")
	}
	e.assertNoPII(t, raw)
}
