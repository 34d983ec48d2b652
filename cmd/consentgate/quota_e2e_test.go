package main

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// Air Bank allows 3 calls a minute here. consentgate reads its rate-limit
// headers, and once the vendor has said the budget is spent it answers 429 with
// Retry-After itself: the vendor never sees the call it would refuse.
func TestDevVendorQuota(t *testing.T) {
	e, stop := startTestDevOpts(t, devOptions{dir: t.TempDir(), airbankLimit: 3})
	defer stop()
	path := e.gatewayURL() + "/v/airbank/openapi/glClientIdentity/v1/cards"
	for i := 1; i <= 3; i++ {
		if resp, body := call(t, e.app, "GET", path, "", under("dev-kyc", "account-aggregation")); resp.StatusCode != http.StatusOK {
			t.Fatalf("call %d: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, body := call(t, e.app, "GET", path, "", under("dev-kyc", "account-aggregation"))
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), "vendor-quota") {
		t.Fatalf("fourth call: %d %s", resp.StatusCode, body)
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
		t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	// The rate-limit headers Air Bank sends on its own 429, so the app handles
	// consentgate's refusal as it would the bank's.
	if got := resp.Header.Get("X-Rate-Limit-Limit"); got != "3" {
		t.Errorf("X-Rate-Limit-Limit %q, want the bank's stated 3", got)
	}
	if got := resp.Header.Get("X-Rate-Limit-Remaining"); got != "0" {
		t.Errorf("X-Rate-Limit-Remaining %q, want 0", got)
	}
	if got := resp.Header.Get("X-Rate-Limit-Reset"); got != resp.Header.Get("Retry-After") {
		t.Errorf("X-Rate-Limit-Reset %q, want the Retry-After seconds %q", got, resp.Header.Get("Retry-After"))
	}
	if got := e.sandboxes.Airbank.Count(); got != 3 {
		t.Errorf("Air Bank saw %d calls, want 3: the fourth must not reach it", got)
	}
	_, metrics := call(t, e.clientFor(t, "secops"), "GET", e.adminURL()+"/metrics", "", nil)
	if !strings.Contains(string(metrics), `consentgate_vendor_quota_remaining{vendor="airbank"} 0`) {
		t.Error("metrics do not show the spent quota")
	}
}
