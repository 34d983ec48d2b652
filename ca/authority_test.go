package ca

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/freeport"

	"github.com/consentgate/consentgate/certs"
)

const testTrustDomain = "consentgate.test"

// openTestAuthority opens an internal CA in a fresh folder and closes it when
// the test ends.
func openTestAuthority(t *testing.T, dir string) *Authority {
	t.Helper()
	a, err := Open(Options{Dir: dir, TrustDomain: testTrustDomain,
		Address: "127.0.0.1:0", DNSNames: []string{"localhost", "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("closing the authority: %v", err)
		}
	})
	return a
}

func freePort(t *testing.T) int {
	t.Helper()
	port, err := freeport.Loopback()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// The whole internal PKI on loopback: the embedded step-ca serves ACME,
// certmagic obtains the gateway's certificate for a name that is in no DNS,
// and an app certificate from the same CA completes an mTLS handshake with
// it, while one from another CA is refused.
func TestGatewayCertificateOverACMEAndAppMTLS(t *testing.T) {
	for _, challenge := range []string{certs.ChallengeHTTP01, certs.ChallengeTLSALPN01} {
		t.Run(challenge, func(t *testing.T) {
			dir := t.TempDir()
			a := openTestAuthority(t, filepath.Join(dir, "ca"))
			port := freePort(t)
			v := Validation{Host: "127.0.0.1", HTTPPort: port}
			if challenge == certs.ChallengeTLSALPN01 {
				v = Validation{Host: "127.0.0.1", TLSALPNPort: port}
			}
			srv, err := a.StartServer("127.0.0.1:0", v)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			roots := x509.NewCertPool()
			roots.AddCert(a.Root())

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			serving, err := certs.ObtainServing(ctx, certs.ACMEOptions{Directory: srv.Directory(), Roots: roots,
				Names: []string{"gateway.test"}, Storage: filepath.Join(dir, "acme"),
				Challenge: challenge, ChallengeListen: "127.0.0.1:" + strconv.Itoa(port)})
			if err != nil {
				t.Fatal(err)
			}
			defer serving.Close()

			gw := startMTLSServer(t, &tls.Config{GetCertificate: serving.GetCertificate,
				ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: roots})

			app, err := a.IssueApp(ctx, "app", "onboarding-web", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			cs, body, err := mtlsGet(gw, roots, app)
			if err != nil {
				t.Fatalf("mTLS with an app certificate of the same CA: %v", err)
			}
			leaf := cs.PeerCertificates[0]
			if !slices.Equal(leaf.DNSNames, []string{"gateway.test"}) || leaf.Issuer.CommonName != a.h.Intermediate.Subject.CommonName {
				t.Errorf("serving certificate: names %v, issuer %q", leaf.DNSNames, leaf.Issuer.CommonName)
			}
			if body != "spiffe://consentgate.test/app/onboarding-web" {
				t.Errorf("the server saw client %q", body)
			}

			other, err := certs.NewCA(pkix.Name{CommonName: "some other CA"}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			fc, fk, err := other.Issue(certs.AppTemplate(testTrustDomain, "app", "onboarding-web", time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			foreign := &tls.Certificate{Certificate: [][]byte{fc.Raw}, PrivateKey: fk, Leaf: fc}
			if _, _, err := mtlsGet(gw, roots, foreign); err == nil {
				t.Fatal("an app certificate from another CA was accepted")
			}

			// A restart finds the certificate in storage: no CA needed.
			srv.Close()
			again, err := certs.ObtainServing(ctx, certs.ACMEOptions{Directory: srv.Directory(), Roots: roots,
				Names: []string{"gateway.test"}, Storage: filepath.Join(dir, "acme"),
				Challenge: challenge, ChallengeListen: "127.0.0.1:" + strconv.Itoa(port)})
			if err != nil {
				t.Fatalf("restart with the CA down: %v", err)
			}
			again.Close()
		})
	}
}

// startMTLSServer serves the client's SPIFFE id back over cfg.
func startMTLSServer(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.TLS.PeerCertificates[0].URIs[0].String())
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// mtlsGet calls addr as gateway.test with cert.
func mtlsGet(addr string, roots *x509.CertPool, cert *tls.Certificate) (*tls.ConnectionState, string, error) {
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: roots, ServerName: "gateway.test", Certificates: []tls.Certificate{*cert}}}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("https://" + addr + "/")
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.TLS, string(b), err
}

func TestIssueAppCertificate(t *testing.T) {
	dir := t.TempDir()
	a := openTestAuthority(t, dir)
	ctx := context.Background()
	cert, err := a.IssueApp(ctx, "auditor", "alice", 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert.Leaf
	roots := x509.NewCertPool()
	roots.AddCert(a.Root())
	inter := x509.NewCertPool()
	inter.AddCert(a.h.Intermediate)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("app certificate does not verify as a client certificate: %v", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("an app certificate can serve TLS")
	}
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://consentgate.test/auditor/alice" || leaf.Subject.CommonName != "alice" || len(leaf.DNSNames) != 0 {
		t.Errorf("identity: CN %q URIs %v DNS %v", leaf.Subject.CommonName, leaf.URIs, leaf.DNSNames)
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got < 47*time.Hour || got > 49*time.Hour {
		t.Errorf("validity %s, want about 48h", got)
	}
	if len(cert.Certificate) != 2 {
		t.Errorf("chain has %d certificates, want leaf and intermediate", len(cert.Certificate))
	}

	for _, tt := range []struct {
		name, role, app string
		validity        time.Duration
		want            string
	}{
		{"unknown role", "robot", "x", time.Hour, "the SAN must be"},
		{"name with a slash", "app", "a/b", time.Hour, "the SAN must be"},
		{"longer than the provisioner allows", "app", "x", MaxAppValidity + 24*time.Hour, "requested duration"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := a.IssueApp(ctx, tt.role, tt.app, tt.validity); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestAuthorityFilesAndReopen(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(Options{Dir: dir, TrustDomain: testTrustDomain, Address: "127.0.0.1:0", DNSNames: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	root := a.Root()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{certs.KeyFile(certs.RootCert), certs.KeyFile(certs.IntermediateCert), DefaultPasswordFile, authoritySettingsFile} {
		info, err := os.Stat(filepath.Join(dir, f))
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", f, info.Mode(), err)
		}
	}
	if _, err := Open(Options{Dir: dir, TrustDomain: "other.test", Address: "127.0.0.1:0", DNSNames: []string{"localhost"}}); err == nil || !strings.Contains(err.Error(), `not "other.test"`) {
		t.Errorf("another trust domain: err = %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, DefaultPasswordFile), []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Dir: dir, Address: "127.0.0.1:0", DNSNames: []string{"localhost"}}); err == nil || !strings.Contains(err.Error(), "provisioner key") {
		t.Errorf("wrong password: err = %v", err)
	}
	// The root key can live offline: the CA runs without it.
	if err := os.Rename(filepath.Join(dir, certs.KeyFile(certs.RootCert)), filepath.Join(t.TempDir(), "offline.key")); err != nil {
		t.Fatal(err)
	}
	if _, err := certs.LoadOrCreateHierarchy(dir, "x"); err != nil {
		t.Errorf("without the root key: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, certs.KeyFile(certs.IntermediateCert))); err != nil {
		t.Fatal(err)
	}
	if _, err := certs.LoadOrCreateHierarchy(dir, "x"); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("half a hierarchy: err = %v", err)
	}
	pem, err := os.ReadFile(filepath.Join(dir, certs.RootCert))
	if err != nil {
		t.Fatal(err)
	}
	if kept, err := certs.ParseCertificates(pem); err != nil || len(kept) != 1 || !kept[0].Equal(root) {
		t.Errorf("the root on disk differs from the one served: %v", err)
	}
}
