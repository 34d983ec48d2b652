package sandbox

import (
	"net/http"
	"testing"
)

// After a rotation the vendor accepts the new key only, as a real vendor does
// once the old key is revoked in its portal.
func TestRotateAPIKey(t *testing.T) {
	pki := newTestPKI(t)
	cfg := testConfig(t, pki)
	set := startSet(t, cfg)
	c := newClient(t, pki)
	const rotated = "rotated-airbank-key-0123456789abcdef"
	bearer := "Bearer " + loginToken(t, set, cfg, "airbank", c).AccessToken
	url := set.Airbank.URL + airbankBasePath + "cards"
	if resp := send(t, c, http.MethodGet, url, "", "apikey", cfg.Credentials.AirbankAPIKey, "Authorization", bearer); resp.status != http.StatusOK {
		t.Fatalf("before rotation: %d", resp.status)
	}
	if err := set.Airbank.RotateAPIKey(rotated); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, key string
		want      int
	}{
		{"old key", cfg.Credentials.AirbankAPIKey, http.StatusUnauthorized},
		{"new key", rotated, http.StatusOK},
	}
	for _, tt := range tests {
		if resp := send(t, c, http.MethodGet, url, "", "apikey", tt.key, "Authorization", bearer); resp.status != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, resp.status, tt.want)
		}
	}
	if err := set.FinID.RotateAPIKey(rotated); err == nil {
		t.Error("finid has no API key, yet rotating it succeeded")
	}
}
