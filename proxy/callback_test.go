package proxy

import (
	"crypto/tls"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/audit"
)

func TestCallbacks(t *testing.T) {
	env := newTestEnv(t)
	vendorSide := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: env.trust}}}
	body := `{"id":"u-1","status":"completed"}`
	tests := []struct {
		name    string
		path    string
		token   string
		status  int
		reaches bool
	}{
		{"allowed source with the secret", "/callbacks/echo/status", "callback-secret-0123456789", 200, true},
		{"wrong shared secret", "/callbacks/echo/status", "guess", 401, false},
		{"no shared secret", "/callbacks/echo/status", "", 401, false},
		{"source outside the vendor's networks", "/callbacks/walled/status", "", 403, false},
		{"no such callback", "/callbacks/echo/other", "callback-secret-0123456789", 404, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := env.seen.count()
			h := map[string]string{"Content-Type": "application/json", "X-Forwarded-For": "198.51.100.7"}
			if tt.token != "" {
				h["X-Callback-Token"] = tt.token
			}
			resp, got := do(t, vendorSide, "POST", env.callbacksURL+tt.path, body, h)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, got)
			}
			if reached := env.seen.count() > before; reached != tt.reaches {
				t.Fatalf("the app was reached: %v, want %v", reached, tt.reaches)
			}
			if tt.reaches {
				r, sent := env.seen.last(t)
				if r.URL.Path != "/app-inbox" || r.Header.Get("X-Consentgate-Vendor") != "echo" || !strings.Contains(sent, `"status":"completed"`) {
					t.Errorf("the app got %s %v %s", r.URL.Path, r.Header, sent)
				}
				if xff := r.Header.Get("X-Forwarded-For"); xff != "127.0.0.1" {
					t.Errorf("X-Forwarded-For %q, want the source consentgate saw, not the caller's claim", xff)
				}
				if r.Header.Get("X-Callback-Token") != "" {
					t.Error("the vendor's secret was forwarded to the app")
				}
			}
		})
	}
	// Every callback, refused or not, is in the audit log.
	var outcomes, refused int
	for _, r := range env.exportAll(t) {
		if r.Kind == audit.KindOutcome && strings.HasPrefix(r.Operation, "echo.status") {
			outcomes++
		}
		if r.Kind == audit.KindOutcome && r.Vendor == "walled" && r.Status == 403 {
			refused++
		}
	}
	if outcomes != 3 || refused != 1 {
		t.Errorf("audit outcomes: %d echo callbacks (want 3), %d refused walled (want 1)", outcomes, refused)
	}
	// Apps cannot call a callback operation through the gateway.
	if resp, _ := do(t, env.client, "POST", env.gatewayURL+"/v/echo/status", body, map[string]string{"Content-Type": "application/json"}); resp.StatusCode != 404 {
		t.Errorf("an app called a callback operation: %d", resp.StatusCode)
	}
}

// Issue 14 finding 2: anyone who reaches the callbacks listener could grow the
// audit log without limit, an fsynced record per refused callback. Refusals of
// unknown callers are recorded at a rate per source; the rest are counted, the
// next record says how many, and a real callback is still recorded.
func TestRefusedCallbacksAreRecordedAtARate(t *testing.T) {
	clock := &testClock{t: time.Now()}
	env := newTestEnv(t, func(o *Options) { o.Now = clock.Now })
	vendorSide := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: env.trust}}}
	records := func() (refused int, unrecorded int64) {
		for _, r := range env.exportAll(t) {
			if r.Kind == audit.KindOutcome && (r.Status == 401 || r.Status == 404 || r.Status == 403) {
				refused++
			}
			if n, err := strconv.ParseInt(r.Detail["unrecorded_before"], 10, 64); err == nil {
				unrecorded += n
			}
		}
		return refused, unrecorded
	}
	before, _ := records()
	const flood = 200
	for i := 0; i < flood; i++ {
		path := []string{"/callbacks/echo/status", "/callbacks/echo/other", "/callbacks/walled/status"}[i%3]
		resp, _ := do(t, vendorSide, "POST", env.callbacksURL+path, `{"id":"u-1"}`, map[string]string{"X-Callback-Token": "guess"})
		if resp.StatusCode/100 != 4 {
			t.Fatalf("a forged callback got %d", resp.StatusCode)
		}
	}
	refused, _ := records()
	if n := refused - before; n > refusedPerSourceBurst+2 {
		t.Errorf("%d forged callbacks wrote %d records, want at most about the burst (%d)", flood, n, refusedPerSourceBurst)
	}
	// A while later the next refusal is recorded, saying how many were not.
	clock.Add(10 * time.Second)
	do(t, vendorSide, "POST", env.callbacksURL+"/callbacks/echo/other", `{}`, nil)
	if _, unrecorded := records(); unrecorded < flood-refusedPerSourceBurst-2 {
		t.Errorf("the records account for %d unrecorded refusals, want about %d", unrecorded, flood-refusedPerSourceBurst)
	}
	// The vendor itself is not held back.
	if resp, body := do(t, vendorSide, "POST", env.callbacksURL+"/callbacks/echo/status", `{"id":"u-1","status":"completed"}`,
		map[string]string{"Content-Type": "application/json", "X-Callback-Token": "callback-secret-0123456789"}); resp.StatusCode != 200 {
		t.Errorf("the genuine callback after the flood: %d %s", resp.StatusCode, body)
	}
}
