package main

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/internal/tier"
	"github.com/consentgate/consentgate/internal/tinyproxy"
	"github.com/consentgate/consentgate/refusal"
	"github.com/consentgate/consentgate/secrets"
)

// egress gives banqware's profile e.
func egress(e configs.Egress) func(map[string]*configs.Vendor) {
	return func(v map[string]*configs.Vendor) { v["banqware"].Egress = e }
}

// banqwareUser is a call banqware serves under dev-kyc.
func (e *devEnv) banqwareUser(t *testing.T) (*http.Response, []byte) {
	t.Helper()
	return call(t, e.app, "POST", e.gatewayURL()+"/v/banqware/user-resources/api/user", `{"clientId":"onboarding-example"}`,
		under("dev-kyc", "account-aggregation"))
}

// banqware allowlists the addresses its clients call from. A gateway that
// dials from any address is refused by it (and the app told the vendor is
// unreachable); one whose profile fixes the source address on the list is
// served, from that address.
func TestEgressFromAFixedSourceAddress(t *testing.T) {
	listed := []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
	t.Run("any address", func(t *testing.T) {
		e, stop := startTestDevOpts(t, devOptions{dir: t.TempDir(), banqwareSources: listed})
		t.Cleanup(stop)
		resp, body := e.banqwareUser(t)
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		assertProblem(t, resp, body, string(refusal.VendorUnreachable))
		if bq := e.sandboxes.Banqware; bq.RefusedPeers() == 0 || bq.Count() != 0 {
			t.Errorf("banqware refused %d peers and served %d requests", bq.RefusedPeers(), bq.Count())
		}
	})
	t.Run("source_address 127.0.0.2", func(t *testing.T) {
		e, stop := startTestDevOpts(t, devOptions{dir: t.TempDir(), banqwareSources: listed,
			profiles: egress(configs.Egress{SourceAddress: "127.0.0.2"})})
		t.Cleanup(stop)
		resp, body := e.banqwareUser(t)
		if resp.StatusCode != http.StatusCreated || !strings.Contains(string(body), "userId") {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if r := lastRequest(t, e.sandboxes.Banqware); r.RemoteAddr != "127.0.0.2" {
			t.Errorf("banqware saw the call from %q", r.RemoteAddr)
		}
		if n := e.sandboxes.Banqware.RefusedPeers(); n != 0 {
			t.Errorf("banqware refused %d peers", n)
		}
	})
}

// Through the company's outbound proxy (a real tinyproxy that connects out
// from 127.0.0.3, the one address banqware lists), with the proxy's
// credentials read from the secret store: the call goes through the tunnel,
// TLS and the client certificate end to end. A wrong password gets the
// tunnel refused, the vendor is not reached, and the password appears nowhere.
func TestEgressThroughAConnectProxy(t *testing.T) {
	tier.Needs(t, "tinyproxy")
	const password = "pr0xy-S3cret-9f8e"
	tp, err := tinyproxy.Start(t.TempDir(), tinyproxy.Options{User: "consentgate", Password: password, Bind: "127.0.0.3"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tp.Close)
	creds := &configs.EgressProxy{URL: tp.URL, Username: &configs.Source{Secret: "vendors/banqware#proxy_username"},
		Password: &configs.Source{Secret: "vendors/banqware#proxy_password"}}
	proxied := egress(configs.Egress{Proxy: creds})
	startWith := func(t *testing.T, pw string, vault bool) *devEnv {
		dir := t.TempDir()
		if err := secrets.WriteFile(filepath.Join(dir, "secrets.yaml"), map[string]map[string]string{
			"vendors/banqware": {"proxy_username": "consentgate", "proxy_password": pw}}); err != nil {
			t.Fatal(err)
		}
		e, stop := startTestDevOpts(t, devOptions{dir: dir, profiles: proxied, vault: vault,
			banqwareSources: []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")}})
		t.Cleanup(stop)
		return e
	}
	start := func(t *testing.T, pw string) *devEnv { return startWith(t, pw, false) }
	t.Run("credentials from Vault", func(t *testing.T) {
		tier.Needs(t, "a Vault server")
		e := startWith(t, password, true)
		if e.cfg.Secrets.Provider != "vault" {
			t.Fatalf("secrets from %s", e.cfg.Secrets.Provider)
		}
		resp, body := e.banqwareUser(t)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if r := lastRequest(t, e.sandboxes.Banqware); r.RemoteAddr != "127.0.0.3" {
			t.Errorf("banqware saw the call from %q", r.RemoteAddr)
		}
	})
	t.Run("through the tunnel", func(t *testing.T) {
		e := start(t, password)
		resp, body := e.banqwareUser(t)
		if resp.StatusCode != http.StatusCreated || !strings.Contains(string(body), "userId") {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		r := lastRequest(t, e.sandboxes.Banqware)
		if r.RemoteAddr != "127.0.0.3" || r.ClientCert == nil || r.ClientCert.Subject.CommonName != "onboarding-example" {
			t.Errorf("banqware saw the call from %q with certificate %v", r.RemoteAddr, r.ClientCert)
		}
		if host := strings.TrimPrefix(e.sandboxes.Banqware.URL, "https://"); !strings.Contains(tp.Log(), "CONNECT "+host) {
			t.Errorf("the proxy logged no tunnel to %s:\n%s", host, tp.Log())
		}
	})
	t.Run("TLS to the proxy", func(t *testing.T) {
		dir := t.TempDir()
		front := tlsFront(t, dir, strings.TrimPrefix(tp.URL, "http://"))
		viaTLS := egress(configs.Egress{Proxy: &configs.EgressProxy{URL: "https://" + front,
			CAFile: filepath.Join(dir, "proxy-ca.crt"), Username: creds.Username, Password: creds.Password}})
		if err := secrets.WriteFile(filepath.Join(dir, "secrets.yaml"), map[string]map[string]string{
			"vendors/banqware": {"proxy_username": "consentgate", "proxy_password": password}}); err != nil {
			t.Fatal(err)
		}
		e, stop := startTestDevOpts(t, devOptions{dir: dir, profiles: viaTLS, banqwareSources: []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")}})
		t.Cleanup(stop)
		resp, body := e.banqwareUser(t)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if r := lastRequest(t, e.sandboxes.Banqware); r.RemoteAddr != "127.0.0.3" {
			t.Errorf("banqware saw the call from %q", r.RemoteAddr)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		e := start(t, "not-the-password")
		resp, body := e.banqwareUser(t)
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		assertProblem(t, resp, body, string(refusal.VendorUnreachable))
		if n := e.sandboxes.Banqware.Count(); n != 0 {
			t.Errorf("banqware served %d requests", n)
		}
		// The access line is written once the app has its answer. tinyproxy
		// answers wrong credentials with 401 (407 is for none).
		refused := "refused the tunnel to " + strings.TrimPrefix(e.sandboxes.Banqware.URL, "https://") + ": 401 Unauthorized"
		waitFor(t, "the access line saying the proxy refused the tunnel", func() bool { return strings.Contains(e.logs.String(), refused) })
		for where, text := range map[string]string{"response": string(body), "log": e.logs.String(), "audit": fmt.Sprint(e.auditRecords(t))} {
			if strings.Contains(text, "not-the-password") || strings.Contains(text, password) {
				t.Errorf("a proxy password is in the %s", where)
			}
		}
	})
}

// tlsFront terminates TLS in front of a plain proxy at target, as a company's
// TLS-speaking proxy would, with a certificate for 127.0.0.1 from a CA it
// writes to dir/proxy-ca.crt. It returns its host:port.
func tlsFront(t *testing.T, dir, target string) string {
	t.Helper()
	ca, err := certs.NewCA(pkix.Name{CommonName: "egress proxy test CA"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, key, err := ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "proxy"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "proxy-ca.crt"), certs.EncodeCertificates(ca.Cert), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Raw}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	return ln.Addr().String()
}
