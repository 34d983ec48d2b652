package main

import (
	"net/http"
	"strings"
	"testing"
)

// The console is on the admin listener, behind its mTLS: an auditor's
// certificate opens it, an app's does not.
func TestDevConsoleOnTheAdminListener(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	resp, body := call(t, e.clientFor(t, "auditor"), "GET", e.adminURL()+"/console/integrity", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") ||
		!strings.Contains(string(body), "Verify the whole log now") {
		t.Errorf("an auditor: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Security-Policy"), body)
	}
	if resp, _ := call(t, e.app, "GET", e.adminURL()+"/console/", "", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("an app: %d", resp.StatusCode)
	}
}
