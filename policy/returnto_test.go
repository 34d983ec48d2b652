package policy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/configs"
)

// An app's return URLs live in the policy data beside what else it may do; a
// revision with one that is not a safe return URL is not put into service.
func TestReturnTargets(t *testing.T) {
	for _, tc := range []struct {
		name, urls string
		want       string // "" = loads
	}{
		{"https prefix and exact page", `[https://app.example.test/done/, https://app.example.test/page]`, ""},
		{"loopback http (RFC 8252)", `[http://127.0.0.1/cb]`, ""},
		{"with a query", `["https://app.example.test/done/?x=1"]`, `data.apps.web.oauth_return_to[0]: "https://app.example.test/done/?x=1": an allowed return URL carries no query`},
		{"in clear", `[http://app.example.test/done/]`, `data.apps.web.oauth_return_to[0]: "http://app.example.test/done/" must use https`},
		{"dot segments", `[https://app.example.test/ok/, https://app.example.test/done/../admin/]`, `data.apps.web.oauth_return_to[1]: "https://app.example.test/done/../admin/": the path holds a dot segment`},
		{"user info", `[https://me@app.example.test/]`, `must not carry user info`},
		{"not a list", `https://app.example.test/`, `data.apps.web.oauth_return_to: not a list of URLs`},
		{"not a string", `[42]`, `data.apps.web.oauth_return_to[0]: "" is not an absolute URL`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := configs.WritePolicies(dir); err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(filepath.Join(dir, "data.yaml"))
			if err != nil || !strings.Contains(string(raw), "\napps:\n") {
				t.Fatalf("data.yaml has no apps: %v", err)
			}
			writePolicy(t, dir, "data.yaml", strings.Replace(string(raw), "\napps:\n", "\napps:\n  web:\n    oauth_return_to: "+tc.urls+"\n", 1))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			e, err := New(ctx, Options{Source: Source{Dir: dir}})
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := e.ReturnTo("web"); len(got) != strings.Count(tc.urls, ",")+1 {
				t.Errorf("ReturnTo(web) = %v", got)
			}
			if got := e.ReturnTo("onboarding-web"); len(got) != 1 || got[0].String() != "https://onboarding.example-bank.cz/kyc/bank-linked" {
				t.Errorf("the shipped onboarding-web may return to %v", got)
			}
			if got := e.ReturnTo("nobody"); got != nil {
				t.Errorf("an app not listed may return to %v", got)
			}
		})
	}
}
