package proxy

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"

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
