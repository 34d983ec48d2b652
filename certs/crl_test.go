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
	l := NewRevocationList("test CRL", func(context.Context) ([]byte, error) { return served, nil })
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
	if err := l.Check(kept, other.Cert); !errors.Is(err, ErrRevocationUnknown) {
		t.Errorf("checked against a CA that did not sign the CRL: %v", err)
	}

	served = crl(ca, 1, now.Add(-time.Minute))
	if err := l.Refresh(context.Background()); err == nil {
		t.Error("an older CRL replaced a newer one")
	}
	if err := l.Check(leaf, ca.Cert); !errors.Is(err, ErrRevoked) {
		t.Errorf("after an older CRL was offered: %v", err)
	}

	served = crl(other, 3, now)
	if err := l.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := l.Check(kept, ca.Cert); !errors.Is(err, ErrRevocationUnknown) {
		t.Errorf("a CRL of another issuer in service: %v", err)
	}

	served = crl(ca, 4, now)
	if err := l.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	clock = now.Add(2 * time.Hour)
	if err := l.Check(kept, ca.Cert); !errors.Is(err, ErrRevocationUnknown) || l.Status() == nil {
		t.Errorf("past NextUpdate: %v, status %v", err, l.Status())
	}
}
