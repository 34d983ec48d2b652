package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/consentgate/consentgate/admin"
	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/identity"
	"github.com/consentgate/consentgate/internal/logsink"
	"github.com/consentgate/consentgate/refusal"
)

// certEnv is a gateway with one vendor, "bank", that demands a client
// certificate from its own CA; the certificate and the bank's CA bundle are
// files the test replaces while the gateway runs.
type certEnv struct {
	dir      string
	vendorCA *certs.CA
	gw       *Gateway
	front    *httptest.Server // the gateway, as app "web"
	logs     *logsink.Buffer
	reg      *prometheus.Registry
	alog     *audit.Log
	slowIn   chan struct{} // a call to /slow reached the bank
	release  chan struct{} // lets it answer
	upstream *httptest.Server
}

// bankSubject is what the bank's profile requires: organisation and IČO.
var bankSubject = pkix.Name{CommonName: "Firma", Organization: []string{"Firma a.s."},
	ExtraNames: []pkix.AttributeTypeAndValue{{Type: certs.OIDOrganizationIdentifier, Value: "NTRCZ-27074358"}}}

func newCertEnv(t *testing.T, validity time.Duration) *certEnv {
	t.Helper()
	b := newTestGateway(t)
	dir := b.dir
	vendorCA, err := certs.NewCA(pkix.Name{CommonName: "bank client CA"}, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e := &certEnv{dir: dir, vendorCA: vendorCA, slowIn: make(chan struct{}, 1), release: make(chan struct{}), reg: prometheus.NewRegistry()}
	clients := x509.NewCertPool()
	clients.AddCert(vendorCA.Cert)
	// The bank answers with the serial of the client certificate of the
	// connection the call came on.
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			e.slowIn <- struct{}{}
			<-e.release
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"serial": r.TLS.PeerCertificates[0].SerialNumber.String()})
	}))
	up.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients}
	up.EnableHTTP2 = true
	up.StartTLS()
	t.Cleanup(up.Close)
	e.upstream = up
	writeFile(t, filepath.Join(dir, "bank-ca.crt"), certs.EncodeCertificates(up.Certificate()), 0o644)
	e.writeClientCert(t, e.issue(t, bankSubject, time.Now().Add(-time.Hour), time.Now().Add(validity)))

	b.vendor(t, "bank.yaml", `id: bank
base_url: `+up.URL+`
upstream:
  ca_file: bank-ca.crt
  pin: [127.0.0.1]
client_certificate:
  cert: {file: bank.crt}
  key: {file: bank.key}
  require_ico: true
operations:
  - id: bank.who
    method: GET
    path: /who
  - id: bank.slow
    method: GET
    path: /slow
`)
	b.opts = []func(*Options){func(o *Options) { o.Registerer = e.reg }}
	g := b.build(t, nil)
	e.gw, e.alog, e.logs = g.gw, g.audit, g.logs
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e.gw.WatchCertificates(ctx, 20*time.Millisecond)
	e.front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.gw.ServeHTTP(w, r.WithContext(identity.With(r.Context(), identity.Identity{Role: identity.RoleApp, Name: "web"})))
	}))
	t.Cleanup(e.front.Close)
	return e
}

// issue makes a bank client certificate (leaf and key PEM).
func (e *certEnv) issue(t *testing.T, subject pkix.Name, notBefore, notAfter time.Time) [2][]byte {
	t.Helper()
	cert, key, err := e.vendorCA.Issue(&x509.Certificate{Subject: subject, NotBefore: notBefore, NotAfter: notAfter,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := certs.EncodePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return [2][]byte{certs.EncodeCertificates(cert), keyPEM}
}

// writeClientCert replaces bank.crt and bank.key the way an operator's tool
// does: each file atomically, the key first.
func (e *certEnv) writeClientCert(t *testing.T, pair [2][]byte) {
	t.Helper()
	for _, f := range []struct {
		name string
		data []byte
	}{{"bank.key", pair[1]}, {"bank.crt", pair[0]}} {
		tmp := filepath.Join(e.dir, "."+f.name+".tmp")
		writeFile(t, tmp, f.data, 0o600)
		if err := os.Rename(tmp, filepath.Join(e.dir, f.name)); err != nil {
			t.Fatal(err)
		}
	}
}

// serial calls the bank through the gateway and returns the serial of the
// client certificate the bank saw.
func (e *certEnv) serial(t *testing.T, path string) string {
	t.Helper()
	resp, err := e.front.Client().Get(e.front.URL + "/v/bank" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
	}
	var out struct{ Serial string }
	if err := json.Unmarshal(body, &out); err != nil || out.Serial == "" {
		t.Fatalf("%s: %s (%v)", path, body, err)
	}
	return out.Serial
}

func serialOf(t *testing.T, pair [2][]byte) string {
	t.Helper()
	c, err := certs.ParseCertificates(pair[0])
	if err != nil {
		t.Fatal(err)
	}
	return c[0].SerialNumber.String()
}

// eventually polls cond for up to 30 s (a loaded machine is slow, never this slow).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// A new certificate file is used by new connections without a restart, while
// a call in flight on the old connection (HTTP/2: the one new calls would
// otherwise share) completes.
func TestVendorCertificateReplacedWithoutDroppingCalls(t *testing.T) {
	e := newCertEnv(t, 90*24*time.Hour)
	first := e.serial(t, "/who")

	slow := make(chan string, 1)
	go func() {
		resp, err := e.front.Client().Get(e.front.URL + "/v/bank/slow")
		if err != nil {
			slow <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		slow <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	select {
	case <-e.slowIn:
	case <-time.After(30 * time.Second):
		t.Fatal("the slow call never reached the bank")
	}

	next := e.issue(t, bankSubject, time.Now().Add(-time.Hour), time.Now().Add(200*24*time.Hour))
	e.writeClientCert(t, next)
	eventually(t, "a call presenting the new certificate", func() bool { return e.serial(t, "/who") == serialOf(t, next) })
	if s := e.serial(t, "/who"); s != serialOf(t, next) {
		t.Errorf("a later call presented serial %s, want the new %s", s, serialOf(t, next))
	}

	close(e.release)
	select {
	case got := <-slow:
		if !strings.HasPrefix(got, "200 ") || !strings.Contains(got, first) {
			t.Errorf("the call in flight during the reload: %s, want 200 under the old serial %s", got, first)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the call in flight never completed")
	}
	gauge, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range gauge {
		if mf.GetName() == "consentgate_vendor_certificate_expiry_days" {
			found = true
			if v := mf.GetMetric()[0].GetGauge().GetValue(); v < 199 || v > 200 {
				t.Errorf("expiry days = %v, want about 200 (the new certificate)", v)
			}
			if l := mf.GetMetric()[0].GetLabel(); len(l) != 1 || l[0].GetName() != "vendor" || l[0].GetValue() != "bank" {
				t.Errorf("labels = %v", l)
			}
		}
	}
	if !found {
		t.Error("no consentgate_vendor_certificate_expiry_days metric")
	}
	if !strings.Contains(e.logs.String(), `"msg":"vendor client certificate replaced"`) {
		t.Errorf("the replacement is not logged:\n%s", e.logs.String())
	}
}

// A replacement the bank would refuse is not used: the old certificate stays
// and the log says why, once.
func TestBadVendorCertificateKeepsTheOld(t *testing.T) {
	e := newCertEnv(t, 90*24*time.Hour)
	first := e.serial(t, "/who")
	good := e.issue(t, bankSubject, time.Now().Add(-time.Hour), time.Now().Add(90*24*time.Hour))
	other := e.issue(t, bankSubject, time.Now().Add(-time.Hour), time.Now().Add(90*24*time.Hour))
	for _, tt := range []struct {
		name string
		pair [2][]byte
		why  string
	}{
		{"key of another certificate", [2][]byte{good[0], other[1]}, "private key does not match the certificate"},
		{"expired", e.issue(t, bankSubject, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)), "client certificate expired on"},
		{"no IČO, which the profile requires", e.issue(t, pkix.Name{CommonName: "Firma", Organization: []string{"Firma a.s."}}, time.Now().Add(-time.Hour), time.Now().Add(90*24*time.Hour)), "certificate subject carries no IČO"},
		{"not a certificate", [2][]byte{[]byte("garbage\n"), good[1]}, "no PEM certificate found"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e.writeClientCert(t, tt.pair)
			eventually(t, "the refusal in the log", func() bool { return strings.Contains(e.logs.String(), tt.why) })
			if s := e.serial(t, "/who"); s != first {
				t.Errorf("after a bad replacement the bank saw serial %s, want the old %s", s, first)
			}
		})
	}
	if n := strings.Count(e.logs.String(), "no PEM certificate found"); n != 1 {
		t.Errorf("the same refusal was logged %d times, want once", n)
	}
	// A bad CA bundle keeps the old pool too: calls still verify the bank.
	writeFile(t, filepath.Join(e.dir, "bank-ca.crt"), []byte("not a bundle\n"), 0o644)
	eventually(t, "the bundle refusal in the log", func() bool { return strings.Contains(e.logs.String(), "bank-ca.crt: no PEM certificate found") })
	if s := e.serial(t, "/who"); s != first {
		t.Errorf("serial %s after a bad bundle", s)
	}
}

// A CA bundle that no longer holds the bank's CA is in force for new
// connections: calls fail closed until the right bundle returns.
func TestVendorCABundleReloads(t *testing.T) {
	e := newCertEnv(t, 90*24*time.Hour)
	e.serial(t, "/who")
	stranger, err := certs.NewCA(pkix.Name{CommonName: "not the bank"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(e.dir, "bank-ca.crt"), certs.EncodeCertificates(stranger.Cert), 0o644)
	eventually(t, "calls refused under the new bundle", func() bool {
		resp, err := e.front.Client().Get(e.front.URL + "/v/bank/who")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusBadGateway
	})
	writeFile(t, filepath.Join(e.dir, "bank-ca.crt"), certs.EncodeCertificates(e.upstream.Certificate()), 0o644)
	eventually(t, "calls accepted again", func() bool {
		resp, err := e.front.Client().Get(e.front.URL + "/v/bank/who")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// /readyz fails while the vendor certificate in use expires within a week,
// and recovers when a fresh one is dropped in.
func TestReadyzFailsNearVendorCertificateExpiry(t *testing.T) {
	e := newCertEnv(t, 5*24*time.Hour)
	reg, err := consent.Open(filepath.Join(e.dir, "state.db"), consent.Options{SubjectKey: []byte("test-subject-hmac-key-0123456789abcdef"),
		Vendors: []string{"bank"}, Purposes: []string{"p"}, Categories: []string{"identity"}})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	adminSrv := httptest.NewServer(admin.New(admin.Options{Consents: reg, Audit: e.alog, Ready: e.gw.ReadyChecks()}))
	defer adminSrv.Close()
	readyz := func() (int, string) {
		resp, err := adminSrv.Client().Get(adminSrv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := readyz(); code != http.StatusServiceUnavailable || !strings.Contains(body, "vendor bank client certificate: expires in 4 days") ||
		!strings.Contains(body, string(refusal.NotReady)) {
		t.Errorf("readyz with 5 days left: %d %s", code, body)
	}
	e.writeClientCert(t, e.issue(t, bankSubject, time.Now().Add(-time.Hour), time.Now().Add(30*24*time.Hour)))
	eventually(t, "readyz to recover", func() bool { code, _ := readyz(); return code == http.StatusOK })
}

// A profile's client_certificate.types are validated against configs'
// list; the gateway hands them to certs as kinds: the two lists are one.
func TestCertificateTypesAreCertsKinds(t *testing.T) {
	var kinds []string
	for _, k := range certs.Kinds {
		kinds = append(kinds, string(k))
	}
	if !slices.Equal(kinds, configs.CertificateTypes) {
		t.Fatalf("configs.CertificateTypes = %v, certs.Kinds = %v", configs.CertificateTypes, kinds)
	}
}
