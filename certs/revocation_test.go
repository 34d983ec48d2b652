package certs

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// A certificate that names an OCSP responder is asked about there, once until
// the answer's NextUpdate; an answer not signed for it is no answer.
func TestServerRevocationAsksTheOCSPResponder(t *testing.T) {
	ca, other := newTestCA(t, "vendor CA"), newTestCA(t, "another CA")
	var asked atomic.Int32
	status, signer := ocsp.Revoked, ca
	responder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		body, _ := io.ReadAll(r.Body)
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		der, err := ocsp.CreateResponse(signer.Cert, signer.Cert, ocsp.Response{Status: status, SerialNumber: req.SerialNumber,
			ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour), RevokedAt: time.Now()}, signer.Key)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(der)
	}))
	defer responder.Close()
	issue := func() *x509.Certificate {
		c, _, err := ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "vendor"}, OCSPServer: []string{responder.URL}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	r := NewServerRevocation(5 * time.Second)
	revoked := issue()
	for range 2 {
		if err := r.Check(context.Background(), revoked, ca.Cert, nil); !errors.Is(err, ErrRevoked) {
			t.Fatalf("a revoked certificate: %v", err)
		}
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("the responder was asked %d times for one certificate", n)
	}
	status, signer = ocsp.Good, other
	if err := r.Check(context.Background(), issue(), ca.Cert, nil); !errors.Is(err, ErrRevocationUnknown) {
		t.Errorf("an answer signed by another CA: %v", err)
	}
	signer = ca
	if err := r.Check(context.Background(), issue(), ca.Cert, nil); err != nil {
		t.Errorf("a good certificate: %v", err)
	}
}
