package certs

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// ClientIdentity is the certificate consentgate presents to one vendor. It is
// loaded through a function (from a file or a secret) and can be reloaded; a
// reload that fails, or yields a certificate the vendor would refuse, keeps the
// previous one. Connections already open keep the certificate they were
// established with; new handshakes get the current one.
type ClientIdentity struct {
	vendor   string
	load     func(context.Context) (*tls.Certificate, error)
	req      Requirement
	now      func() time.Time
	cur      atomic.Pointer[tls.Certificate]
	onChange func()
}

// NewClientIdentity loads the certificate once and checks it against req.
func NewClientIdentity(ctx context.Context, vendor string, req Requirement, load func(context.Context) (*tls.Certificate, error)) (*ClientIdentity, error) {
	c := &ClientIdentity{vendor: vendor, load: load, req: req, now: time.Now}
	if err := c.Reload(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// OnChange sets what runs after a new certificate is swapped in (the vendor
// transport closes its idle connections, so the next call handshakes with
// it). Set it before Watch starts.
func (c *ClientIdentity) OnChange(f func()) { c.onChange = f }

// Reload loads the certificate again and swaps it in if it is usable.
func (c *ClientIdentity) Reload(ctx context.Context) error {
	_, err := c.reload(ctx)
	return err
}

// reload reports whether a different certificate was swapped in.
func (c *ClientIdentity) reload(ctx context.Context) (bool, error) {
	cert, err := c.load(ctx)
	if err != nil {
		return false, fmt.Errorf("loading vendor %s client certificate: %w", c.vendor, err)
	}
	if old := c.cur.Load(); old != nil && old.Leaf.Equal(cert.Leaf) {
		return false, nil
	}
	if err := c.check(cert.Leaf); err != nil {
		return false, err
	}
	first := c.cur.Load() == nil
	c.cur.Store(cert)
	if !first && c.onChange != nil {
		c.onChange()
	}
	return true, nil
}

// check refuses what the vendor would: the profile's requirements (kind,
// issuer, IČO, a usage that allows client authentication), a certificate
// outside its validity.
func (c *ClientIdentity) check(leaf *x509.Certificate) error {
	if err := c.req.Check(leaf); err != nil {
		return fmt.Errorf("vendor %s client certificate: %w", c.vendor, err)
	}
	now := c.now()
	if now.After(leaf.NotAfter) {
		return fmt.Errorf("vendor %s client certificate expired on %s", c.vendor, leaf.NotAfter.UTC().Format(time.DateOnly))
	}
	if now.Before(leaf.NotBefore) {
		return fmt.Errorf("vendor %s client certificate is not valid before %s", c.vendor, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

// Watch reloads every interval until ctx ends. A new certificate is logged
// with its serial and expiry; a refused one is logged with the reason, once
// until the reason changes, and the current certificate stays.
func (c *ClientIdentity) Watch(ctx context.Context, every time.Duration, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	what := "vendor " + c.vendor + " client certificate"
	watch(ctx, every, log, what, func(ctx context.Context) (bool, error) {
		changed, err := c.reload(ctx)
		if changed {
			leaf := c.Leaf()
			log.Info("vendor client certificate replaced", "vendor", c.vendor, "serial", leaf.SerialNumber.String(),
				"kind", KindOf(leaf), "server_certificate_as_client", c.ServerCertificate(),
				"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		return changed, err
	})
}

// Leaf is the certificate currently presented.
func (c *ClientIdentity) Leaf() *x509.Certificate { return c.cur.Load().Leaf }

// ServerCertificate reports whether the certificate presented is a TLS server
// certificate the profile takes as the client's (see Requirement.TakesServerCertificate).
func (c *ClientIdentity) ServerCertificate() bool { return c.req.TakesServerCertificate(c.Leaf()) }

// GetClientCertificate is for tls.Config: the current certificate, whatever the
// server asks for, because the vendor's acceptable-CA list is often empty.
func (c *ClientIdentity) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
}

// ParseKeyPair parses a PEM certificate chain and its private key.
func ParseKeyPair(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	chain, err := ParseCertificates(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := ParsePrivateKey(keyPEM)
	if err != nil {
		return nil, err
	}
	return keyPair(chain, key)
}

// KeyPairWith pairs a PEM certificate chain with a private key held
// elsewhere (a PKCS#11 token): signer signs, and its public key must be the
// certificate's.
func KeyPairWith(certPEM []byte, signer crypto.Signer) (*tls.Certificate, error) {
	chain, err := ParseCertificates(certPEM)
	if err != nil {
		return nil, err
	}
	return keyPair(chain, signer)
}

// ParsePKCS12 parses a PKCS#12 (.p12/.pfx) file as issued by I.CA or PostSignum.
func ParsePKCS12(data []byte, password string) (*tls.Certificate, error) {
	key, leaf, cas, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		return nil, fmt.Errorf("decoding PKCS#12: %w", err)
	}
	return keyPair(append([]*x509.Certificate{leaf}, cas...), key)
}

func keyPair(chain []*x509.Certificate, key any) (*tls.Certificate, error) {
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", key)
	}
	pub, ok := chain[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(signer.Public()) {
		return nil, errors.New("private key does not match the certificate")
	}
	cert := &tls.Certificate{PrivateKey: signer, Leaf: chain[0]}
	for _, c := range chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	return cert, nil
}
