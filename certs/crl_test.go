package certs

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"testing"
	"time"
)

// A CRL is taken when its issuer signed it and it is current; a certificate
// it lists is refused, and so is every certificate, failing closed, while no
// current CRL is held. An older CRL never replaces a newer one.
func TestRevocationList(t *testing.T) {
	ca, other := newTestCA(t, "internal intermediate"), newTestCA(t, "another CA")
	now := time.Now()
	leaf, _, err := ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "onboarding-web"}})
	if err != nil {
		t.Fatal(err)
	}
	kept, _, err := ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "auditor"}})
	if err != nil {
		t.Fatal(err)
	}
	crl := func(signer *CA, number int64, this time.Time, serials ...*big.Int) []byte {
		t.Helper()
		var entries []x509.RevocationListEntry
		for _, s := range serials {
			entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: this})
		}
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(number), ThisUpdate: this,
			NextUpdate: this.Add(time.Hour), RevokedCertificateEntries: entries}, signer.Cert, signer.Key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	var served []byte
	l := NewRevocationList("test CRL", ca.Cert, func(context.Context) ([]byte, error) { return served, nil })
	clock := now
	l.now = func() time.Time { return clock }
	if err := l.Check(leaf, ca.Cert); !errors.Is(err, ErrRevocationUnknown) {
		t.Errorf("before any CRL: %v", err)
	}

	served = pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl(ca, 2, now, leaf.SerialNumber)})
	if err := l.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := l.Check(leaf, ca.Cert); !errors.Is(err, ErrRevoked) {
		t.Errorf("a listed certificate: %v", err)
	}
	if err := l.Check(kept, ca.Cert); err != nil {
		t.Errorf("an unlisted certificate: %v", err)
	}
	if err := l.Check(kept, other.Cert); !errors.Is(err, ErrNotCovered) {
		t.Errorf("a certificate of another issuer: %v", err)
	}

	// Nothing displaces the CRL in service but a newer one of its issuer: not
	// an older one, not another issuer's, not one dated in the future (which
	// would then make every genuine CRL look older).
	for name, bad := range map[string][]byte{
		"older by date":       crl(ca, 3, now.Add(-time.Minute)),
		"older by number":     crl(ca, 1, now.Add(time.Minute)),
		"another issuer's":    crl(other, 9, now.Add(time.Minute)),
		"dated in the future": crl(ca, 99, now.Add(30*24*time.Hour)),
	} {
		served = bad
		if err := l.Refresh(context.Background()); err == nil {
			t.Errorf("a CRL %s was taken", name)
		}
	}
	if err := l.Check(leaf, ca.Cert); !errors.Is(err, ErrRevoked) {
		t.Errorf("after the refused CRLs: %v", err)
	}
	served = crl(ca, 4, now.Add(time.Minute))
	if err := l.Refresh(context.Background()); err != nil {
		t.Fatalf("a newer CRL of the issuer: %v", err)
	}
	if err := l.Check(leaf, ca.Cert); err != nil {
		t.Errorf("no longer listed: %v", err)
	}
	clock = now.Add(2 * time.Hour)
	if err := l.Check(kept, ca.Cert); !errors.Is(err, ErrRevocationUnknown) || l.Status() == nil {
		t.Errorf("past NextUpdate: %v, status %v", err, l.Status())
	}
}

// The check every request of an app's connection makes allocates nothing.
func TestRevocationListCheckAllocatesNothing(t *testing.T) {
	ca := newTestCA(t, "internal intermediate")
	leaf, _, err := ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "app"}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(time.Hour)}, ca.Cert, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	l := NewRevocationList("test", ca.Cert, func(context.Context) ([]byte, error) { return der, nil })
	if err := l.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { l.Check(leaf, ca.Cert) }); n != 0 {
		t.Errorf("%v allocations per check", n)
	}
}
