package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/internal/tier"
	"github.com/consentgate/consentgate/proxy"
)

// proxyClient is an app that cannot change its vendor base URL but sets
// HTTPS_PROXY: its certificate serves the proxy's mTLS, and the internal CA
// verifies both the proxy and the vendor-host certificates the proxy mints.
func (e *devEnv) proxyClient(t *testing.T) *http.Client {
	t.Helper()
	file := e.pki.Path(certs.AppCert("onboarding-web"))
	pair, err := tls.LoadX509KeyPair(file, certs.KeyFile(file))
	if err != nil {
		t.Fatal(err)
	}
	proxyURL, _ := url.Parse("https://" + e.srv.Addr(proxy.ListenForward))
	return &http.Client{Transport: &http.Transport{
		Proxy:           http.ProxyURL(proxyURL),
		TLSClientConfig: &tls.Config{RootCAs: e.pool(t, certs.DevRootCert), Certificates: []tls.Certificate{pair}},
	}}
}

func TestDevForwardProxy(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	c := e.proxyClient(t)

	// A Go client with HTTPS_PROXY reaches Air Bank by its real host name and
	// gets exactly what the gateway would give it.
	resp, body := call(t, c, "GET", "https://api.airbank.cz/openapi/glClientIdentity/v1/personalData", "", under("dev-age", "age-verification"))
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `{"age_over_18":true}` {
		t.Fatalf("through the forward proxy: %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Consentgate-Decision-Id") == "" || e.sandboxes.Airbank.Count() != 1 {
		t.Errorf("decision id %q, airbank calls %d", resp.Header.Get("X-Consentgate-Decision-Id"), e.sandboxes.Airbank.Count())
	}
	assertNoAppCredentials(t, lastRequest(t, e.sandboxes.Airbank))

	// The same policy applies: no consent, no call.
	resp, body = call(t, c, "GET", "https://api.airbank.cz/openapi/glClientIdentity/v1/cards", "", nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "no consent header") || e.sandboxes.Airbank.Count() != 1 {
		t.Errorf("no consent through the proxy: %d %s", resp.StatusCode, body)
	}

	// banqware's base path (/sandbox) is part of the vendor's URL.
	resp, body = call(t, c, "POST", "https://api.banqware.com/sandbox/user-resources/api/user", `{"clientId":"x"}`, under("dev-kyc", "account-aggregation"))
	if resp.StatusCode/100 != 2 || !strings.Contains(string(body), "userId") {
		t.Errorf("banqware through the proxy: %d %s", resp.StatusCode, body)
	}

	// A host no profile owns: refused before any tunnel.
	if resp, err := c.Get("https://example.com/"); err == nil {
		resp.Body.Close()
		t.Error("CONNECT to a host no profile owns was tunnelled")
	} else if !strings.Contains(err.Error(), "Forbidden") {
		t.Errorf("refusal: %v", err)
	}
	// A vendor host on another port: refused too.
	if resp, err := c.Get("https://api.airbank.cz:8080/"); err == nil {
		resp.Body.Close()
		t.Error("CONNECT to a vendor host on another port was tunnelled")
	}
}

// The documented curl use: --proxy with the app certificate, by the vendor's
// real host name, over HTTPS and (upgraded) plain HTTP.
func TestDevForwardProxyWithCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		tier.Needs(t, "curl")
		t.Fatalf("curl is needed to prove the forward proxy works with it: %v", err)
	}
	e := startTestDev(t, t.TempDir())
	app := e.pki.Path(certs.AppCert("onboarding-web"))
	ca := e.pki.Path(certs.DevRootCert)
	for _, target := range []string{
		"https://api.airbank.cz/openapi/glClientIdentity/v1/cards",
		"http://api.airbank.cz/openapi/glClientIdentity/v1/cards",
	} {
		out, err := exec.Command("curl", "-sS", "--proxy", "https://"+e.srv.Addr(proxy.ListenForward),
			"--proxy-cert", app, "--proxy-key", certs.KeyFile(app), "--proxy-cacert", ca,
			"--cacert", ca, "--cert", app, "--key", certs.KeyFile(app),
			"-H", "X-Consent-Id: dev-kyc", "-H", "X-Purpose: account-aggregation", target).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "cardNumber") {
			t.Errorf("curl %s: %v\n%s", target, err, out)
		}
	}
	if got := e.sandboxes.Airbank.Count(); got != 2 {
		t.Errorf("airbank saw %d calls, want 2", got)
	}
}

// Inside a CONNECT tunnel, requests get the same framing guard as on the
// gateway listener: one that carries both Content-Length and Transfer-Encoding
// is refused and never reaches the vendor.
func TestDevForwardProxyRefusesAmbiguousFraming(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	cfg := e.proxyClient(t).Transport.(*http.Transport).TLSClientConfig.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	outer, err := tls.Dial("tcp", e.srv.Addr(proxy.ListenForward), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer outer.Close()
	outer.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(outer, "CONNECT api.banqware.com:443 HTTP/1.1\r\nHost: api.banqware.com:443\r\n\r\n")
	br := bufio.NewReader(outer)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	innerCfg := &tls.Config{RootCAs: cfg.RootCAs, ServerName: "api.banqware.com", NextProtos: []string{"http/1.1"}}
	inner := tls.Client(tunnelConn{outer, br}, innerCfg)
	body := `{"clientId":"x"}`
	fmt.Fprintf(inner, "POST /sandbox/user-resources/api/user HTTP/1.1\r\nHost: api.banqware.com\r\nContent-Type: application/json\r\n"+
		"X-Consent-Id: dev-kyc\r\nX-Purpose: account-aggregation\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(body), body)
	resp, err = http.ReadResponse(bufio.NewReader(inner), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(got), "Content-Length and Transfer-Encoding") {
		t.Errorf("ambiguous request in the tunnel: %d %s", resp.StatusCode, got)
	}
	if n := e.sandboxes.Banqware.Count(); n != 0 {
		t.Errorf("banqware called %d times", n)
	}
}

// tunnelConn reads a tunnel's bytes through the reader that read its CONNECT
// response, which may hold some of them already.
type tunnelConn struct {
	net.Conn
	r io.Reader
}

func (c tunnelConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Issue 14 finding 9: the forward proxy's CA key was the internal root's, so
// anyone holding it minted an admin certificate. The interception CA now signs
// server certificates only: a client certificate from it fails every handshake.
func TestDevForwardCACannotMintClientCertificates(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	certPEM, err := os.ReadFile(e.cfg.ResolvePath(e.cfg.TLS.ForwardCACertFile))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(e.cfg.ResolvePath(e.cfg.TLS.ForwardCAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := certs.ParseCA(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{"admin", "auditor", "app"} {
		cert, key, err := ca.Issue(certs.AppTemplate(e.cfg.TrustDomain, role, "intruder", time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.pool(t, certs.DevRootCert),
			Certificates: []tls.Certificate{{Certificate: [][]byte{cert.Raw, ca.Cert.Raw}, PrivateKey: key}}}}}
		for _, url := range []string{e.adminURL() + "/v1/audit/head", e.gatewayURL() + "/v/kb/v1/clients/me/identity"} {
			if resp, err := c.Get(url); err == nil {
				resp.Body.Close()
				t.Errorf("%s certificate from the forward CA: %s answered %d", role, url, resp.StatusCode)
			}
		}
	}
}
