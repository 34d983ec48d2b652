package proxy

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"math/big"
	"testing"
	"time"

	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/configs"
)

// App certificates are checked against the internal CA's CRL: a listed one is
// refused whatever fail_open says; while no CRL is held, every one is refused
// unless fail_open lets them through.
func TestInboundTLSChecksTheClientCRL(t *testing.T) {
	ca, err := certs.NewCA(pkix.Name{CommonName: "internal intermediate"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	issue := func() *x509.Certificate {
		c, _, err := ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "app"}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	revoked, good := issue(), issue()
	other, err := certs.NewCA(pkix.Name{CommonName: "the root, signing directly"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: revoked.SerialNumber, RevocationTime: now}}}, ca.Cert, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	state := func(leaf *x509.Certificate) tls.ConnectionState {
		return tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{leaf, ca.Cert}}}
	}
	for _, failOpen := range []bool{false, true} {
		var served []byte
		in := &InboundTLS{cfg: &configs.Config{TLS: configs.TLS{ClientCRL: &configs.ClientCRL{FailOpen: failOpen}}},
			crl: certs.NewRevocationList("test", ca.Cert, func(context.Context) ([]byte, error) {
				if served == nil {
					return nil, errors.New("CA unreachable")
				}
				return served, nil
			})}
		in.RefreshCRL(context.Background(), slog.New(slog.DiscardHandler))
		if err := in.checkRevocation(state(good)); (err == nil) != failOpen {
			t.Errorf("fail_open %v, no CRL held: %v", failOpen, err)
		}
		served = der
		in.RefreshCRL(context.Background(), slog.New(slog.DiscardHandler))
		if err := in.checkRevocation(state(revoked)); !errors.Is(err, certs.ErrRevoked) {
			t.Errorf("fail_open %v, a revoked certificate: %v", failOpen, err)
		}
		if err := in.checkRevocation(state(good)); err != nil {
			t.Errorf("fail_open %v, a good certificate: %v", failOpen, err)
		}
		// Failing open is for a CRL that cannot be had, never for a
		// certificate the CRL does not speak for.
		if err := in.checkRevocation(tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{good, other.Cert}}}); !errors.Is(err, certs.ErrNotCovered) {
			t.Errorf("fail_open %v, issued by another CA: %v", failOpen, err)
		}
		if err := in.checkRevocation(tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{good}}}); !errors.Is(err, certs.ErrNotCovered) {
			t.Errorf("fail_open %v, a chain of one: %v", failOpen, err)
		}
	}
}
