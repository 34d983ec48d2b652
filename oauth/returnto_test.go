package oauth

import (
	"net/url"
	"testing"

	"github.com/consentgate/consentgate/configs"
)

func TestReturnTargets(t *testing.T) {
	rt := map[string][]*url.URL{}
	for _, s := range []string{"https://app.test/done/", "https://app.test/exact", "http://127.0.0.1/cb/"} {
		u, err := configs.ReturnToURL(s)
		if err != nil {
			t.Fatal(err)
		}
		rt["web"] = append(rt["web"], u)
	}
	tests := []struct {
		app, url string
		want     bool
	}{
		{"web", "https://app.test/done/x?s=1", true},
		{"web", "https://APP.test/done/", true},
		{"web", "https://app.test:443/done/", true},
		{"web", "https://app.test/exact", true},
		{"web", "https://app.test/exact?s=1", true},
		{"web", "https://app.test/exact/more", false},
		{"web", "https://app.test/done", false},
		{"web", "https://app.test/donex", false},
		{"web", "https://app.test.evil.test/done/", false},
		{"web", "https://app.test:444/done/", false},
		{"web", "http://app.test/done/", false},
		{"web", "https://app.test/done/#frag", false},
		{"web", "https://app.test/done/%2e%2e/admin", false},
		{"web", `https://app.test/done/..\admin`, false},
		{"web", "http://127.0.0.1:53124/cb/x", true}, // loopback: any port (RFC 8252)
		{"web", "http://localhost:53124/cb/x", false},
		{"other", "https://app.test/done/x", false},
		{"web", "javascript:alert(1)", false},
		{"web", "//app.test/done/", false},
	}
	for _, tt := range tests {
		if got := returnAllowed(rt[tt.app], tt.url); got != tt.want {
			t.Errorf("allowed(%s, %s) = %v, want %v", tt.app, tt.url, got, tt.want)
		}
	}
}
