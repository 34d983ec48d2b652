package browser_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"image/png"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/internal/browser"
)

// One test, browsers started one after another: each is a few processes, and
// the machine has 2 cores.
func TestBrowserPresentsItsCertificate(t *testing.T) {
	ca := newCA(t, "browser test CA")
	mtls := server(t, ca, ca)
	alice, bob := client(t, ca, "alice"), client(t, ca, "bob")

	a := browser.Start(t, browser.Options{Certificate: alice, Roots: []*x509.Certificate{ca.Cert}})
	if got := page(t, a, mtls.URL); got != "CN=alice" {
		t.Errorf("alice's browser sees %q, want CN=alice", got)
	}

	// A second browser in the same test has its own NSS db, so its own
	// certificate; the first keeps presenting its own.
	b := browser.Start(t, browser.Options{Certificate: bob, Roots: []*x509.Certificate{ca.Cert}})
	if got := page(t, b, mtls.URL); got != "CN=bob" {
		t.Errorf("bob's browser sees %q, want CN=bob", got)
	}
	if got := page(t, a, mtls.URL); got != "CN=alice" {
		t.Errorf("alice's browser, after bob's started, sees %q, want CN=alice", got)
	}

	// A form is filled and sent over the same mTLS connection.
	page(t, a, mtls.URL+"/form")
	status, err := browser.Submit(a, "form#say", map[string]string{"msg": "hello"})
	if err != nil || status != http.StatusOK {
		t.Fatalf("submitting the form: status %d, %v", status, err)
	}
	if got, err := browser.Text(a); err != nil || got != "alice said hello" {
		t.Errorf("after submitting, the page says %q (%v), want %q", got, err, "alice said hello")
	}

	shot := filepath.Join(t.TempDir(), "shots", "page.png")
	if err := browser.Screenshot(a, shot); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	if img, err := png.DecodeConfig(bytes.NewReader(data)); err != nil || img.Width != 1280 {
		t.Errorf("screenshot: %+v, %v; want a PNG 1280 wide", img, err)
	}

	// The server's certificate is verified: one from a CA the browser was
	// not given fails, with the browser's own error.
	stranger := server(t, newCA(t, "another CA"), ca)
	if status, err := browser.Open(a, stranger.URL); err == nil || !strings.Contains(err.Error(), "ERR_CERT_AUTHORITY_INVALID") {
		t.Errorf("a server certificate from an unknown CA: status %d, err %v; want ERR_CERT_AUTHORITY_INVALID", status, err)
	}

	// A browser with no certificate loads a TLS page that asks for none, but
	// not the mTLS one: the server ends the handshake.
	none := browser.Start(t, browser.Options{Roots: []*x509.Certificate{ca.Cert}})
	if got := page(t, none, server(t, ca, nil).URL); got != "CN=" {
		t.Errorf("the browser without a certificate sees %q on a plain TLS page, want CN=", got)
	}
	if status, err := browser.Open(none, mtls.URL); err == nil || !strings.Contains(err.Error(), "net::ERR_") {
		text, _ := browser.Text(none)
		t.Errorf("the browser without a certificate loaded the mTLS page: status %d, err %v, text %q", status, err, text)
	}
}

// page opens url and returns the page's text, failing t if it does not load.
func page(t *testing.T, ctx context.Context, url string) string {
	t.Helper()
	status, err := browser.Open(ctx, url)
	if err != nil || status != http.StatusOK {
		t.Fatalf("opening %s: status %d, %v", url, status, err)
	}
	text, err := browser.Text(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// server serves on 127.0.0.1 with a certificate from ca and, when clients is
// set, requires a client certificate from it. It answers with the client
// certificate's CN, has a form on /form, and echoes the form on /say.
func server(t *testing.T, ca, clients *certs.CA) *httptest.Server {
	cert, key, err := ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		t.Fatal(err)
	}
	cn := func(r *http.Request) string {
		if len(r.TLS.PeerCertificates) == 0 {
			return ""
		}
		return r.TLS.PeerCertificates[0].Subject.CommonName
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "CN=%s", cn(r)) })
	mux.HandleFunc("GET /form", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><form id="say" method="post" action="/say"><input name="msg"><button>Send</button></form>`)
	})
	mux.HandleFunc("POST /say", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s said %s", cn(r), r.PostFormValue("msg"))
	})
	s := httptest.NewUnstartedServer(mux)
	s.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: key}}}
	if clients != nil {
		s.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		s.TLS.ClientCAs = x509.NewCertPool()
		s.TLS.ClientCAs.AddCert(clients.Cert)
	}
	// Refused handshakes are the point of some checks, not news.
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func newCA(t *testing.T, name string) *certs.CA {
	ca, err := certs.NewCA(pkix.Name{CommonName: name}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func client(t *testing.T, ca *certs.CA, name string) tls.Certificate {
	cert, key, err := ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: name}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key}
}
