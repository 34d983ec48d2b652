package main

import (
	"context"
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/internal/logsink"
)

// `consentgate ca revoke` stops an app certificate: the CA makes a new CRL,
// the gateway reads it at its next refresh and refuses the certificate at the
// handshake, on the gateway and the admin listener alike, while the app's
// other certificate keeps working.
func TestCARevokeStopsAnAppCertificate(t *testing.T) {
	e, stop := startTestDevOpts(t, devOptions{dir: t.TempDir(), crlRefresh: time.Second})
	t.Cleanup(stop)
	pair, err := e.authority.IssueApp(context.Background(), "app", "onboarding-web", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "stolen.crt")
	if err := os.WriteFile(file, certs.EncodeCertificates(pair.Leaf), 0o644); err != nil {
		t.Fatal(err)
	}
	client := func(keepAlive bool) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: e.pool(t, certs.DevRootCert), Certificates: []tls.Certificate{*pair}}, DisableKeepAlives: !keepAlive, ForceAttemptHTTP2: true}}
	}
	// stolen dials anew for every call; open keeps the HTTP/2 connection it
	// opened before the revocation.
	stolen, open := client(false), client(true)
	// Any answer means the handshake took the certificate; no vendor is needed.
	status := func(c *http.Client) (int, error) {
		resp, err := c.Get(e.gatewayURL() + "/v/nobody/x")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	for _, c := range []*http.Client{stolen, open} {
		if code, err := status(c); err != nil || code != http.StatusNotFound {
			t.Fatalf("before the revocation: %d %v", code, err)
		}
	}

	out := &logsink.Buffer{}
	if err := run(context.Background(), []string{"ca", "revoke", "--dir", e.pki.Dir, "--ca", e.ca.URL(), "--cert", file, "--reason", "key stolen"}, out, out); err != nil {
		t.Fatalf("ca revoke: %v\n%s", err, out)
	}
	if !strings.Contains(out.String(), "revoked serial "+pair.Leaf.SerialNumber.String()) {
		t.Errorf("ca revoke said: %s", out)
	}
	waitFor(t, "the gateway to refuse the revoked certificate", func() bool {
		_, err := status(stolen)
		return err != nil
	})
	// Under TLS 1.3 the client learns of the refusal as an alert or as a
	// broken pipe, whichever comes first; the gateway's log says which check.
	if _, err := status(stolen); err == nil {
		t.Error("the revoked certificate was taken")
	}
	waitFor(t, "the handshake refusal to be logged", func() bool {
		return strings.Contains(e.logs.String(), "certificate revoked: serial "+pair.Leaf.SerialNumber.String())
	})
	// The connection opened before: still up, but refused at every request.
	if code, err := status(open); err != nil || code != http.StatusUnauthorized {
		t.Errorf("the connection opened before the revocation: %d %v, want 401 identity-required on it", code, err)
	}
	if code, err := status(e.app); err != nil || code != http.StatusNotFound {
		t.Errorf("the app's other certificate after the revocation: %d %v", code, err)
	}
	if resp, err := stolen.Get(e.adminURL() + "/healthz"); err == nil {
		resp.Body.Close()
		t.Error("the admin listener took the revoked certificate")
	}
}
