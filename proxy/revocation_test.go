package proxy

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/refusal"
)

// A vendor's certificate is checked at the handshake as its profile says: a
// revoked one (on its CRL, or in the OCSP response it staples) is refused and
// the vendor never sees the call; one whose status cannot be had is refused
// under fail-closed and let through under fail-open.
func TestVendorCertificateRevocation(t *testing.T) {
	ca, err := certs.NewCA(pkix.Name{CommonName: "vendor CA"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var crl atomic.Pointer[[]byte]
	crlSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b := crl.Load(); b != nil {
			w.Write(*b)
			return
		}
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(crlSrv.Close)
	leaf, key, err := ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "vendor"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, CRLDistributionPoints: []string{crlSrv.URL + "/vendor.crl"}})
	if err != nil {
		t.Fatal(err)
	}
	list := func(serials ...*big.Int) []byte {
		var entries []x509.RevocationListEntry
		for _, s := range serials {
			entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now()})
		}
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: time.Now(),
			NextUpdate: time.Now().Add(time.Hour), RevokedCertificateEntries: entries}, ca.Cert, ca.Key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	staple := func(status int) []byte {
		der, err := ocsp.CreateResponse(ca.Cert, ca.Cert, ocsp.Response{Status: status, SerialNumber: leaf.SerialNumber,
			ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour), RevokedAt: time.Now()}, ca.Key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	good, revoked := list(), list(leaf.SerialNumber)
	tests := []struct {
		name, mode string
		crl        []byte // nil: the CRL server is down
		staple     []byte
		want       int
	}{
		{"good on its CRL", "fail-closed", good, nil, http.StatusOK},
		{"revoked on its CRL", "fail-open", revoked, nil, http.StatusBadGateway},
		{"CRL down, fail-closed", "fail-closed", nil, nil, http.StatusBadGateway},
		{"CRL down, fail-open", "fail-open", nil, nil, http.StatusOK},
		{"revoked in its stapled OCSP response", "fail-open", good, staple(ocsp.Revoked), http.StatusBadGateway},
		{"good stapled answer, CRL down", "fail-closed", nil, staple(ocsp.Good), http.StatusOK},
		{"off", "off", revoked, nil, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.crl != nil {
				crl.Store(&tt.crl)
			} else {
				crl.Store(nil)
			}
			var hits atomic.Int32
			up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"id":"1"}`))
			}))
			up.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, OCSPStaple: tt.staple}}}
			up.StartTLS()
			t.Cleanup(up.Close)
			b := newTestGateway(t)
			writeFile(t, filepath.Join(b.dir, "vendor-ca.crt"), certs.EncodeCertificates(ca.Cert), 0o644)
			b.vendor(t, "v.yaml", "id: v\nbase_url: "+up.URL+"\nupstream:\n  ca_file: "+filepath.Join(b.dir, "vendor-ca.crt")+
				"\n  pin: [127.0.0.1]\n  revocation: "+tt.mode+"\noperations:\n  - id: v.get\n    method: GET\n    path: /x\n")
			g := b.build(t, nil)
			srv := g.serve(t, nil, nil, nil)
			env := &testEnv{trust: g.trust}
			client := env.clientWith(t, b.ca, "spiffe://test.local/app/web", time.Hour)
			resp, body := do(t, client, "GET", "https://"+srv.Addr(ListenGateway)+"/v/v/x", "", nil)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, body)
			}
			if tt.want != http.StatusOK {
				var p problem
				if err := json.Unmarshal([]byte(body), &p); err != nil || p.Type != refusal.VendorUnreachable.Type() {
					t.Errorf("problem %s, want %s", body, refusal.VendorUnreachable)
				}
				if hits.Load() != 0 {
					t.Error("the vendor was called")
				}
			}
		})
	}
}
