package certs

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// ClientIdentity is the certificate consentgate presents to one vendor. It is
// loaded through a function (from a file or a secret) and can be reloaded; a
// reload that fails, or yields a certificate the vendor would refuse, keeps the
// previous one.
type ClientIdentity struct {
	vendor string
	load   func(context.Context) (*tls.Certificate, error)
	req    Requirement
	cur    atomic.Pointer[tls.Certificate]
}

// NewClientIdentity loads the certificate once and checks it against req.
func NewClientIdentity(ctx context.Context, vendor string, req Requirement, load func(context.Context) (*tls.Certificate, error)) (*ClientIdentity, error) {
	c := &ClientIdentity{vendor: vendor, load: load, req: req}
	if err := c.Reload(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload loads the certificate again and swaps it in if it is usable.
func (c *ClientIdentity) Reload(ctx context.Context) error {
	cert, err := c.load(ctx)
	if err != nil {
		return fmt.Errorf("loading vendor %s client certificate: %w", c.vendor, err)
	}
	if err := c.req.Check(cert.Leaf); err != nil {
		return fmt.Errorf("vendor %s client certificate: %w", c.vendor, err)
	}
	if time.Now().After(cert.Leaf.NotAfter) {
		return fmt.Errorf("vendor %s client certificate expired on %s", c.vendor, cert.Leaf.NotAfter.UTC().Format(time.DateOnly))
	}
	c.cur.Store(cert)
	return nil
}

// Leaf is the certificate currently presented.
func (c *ClientIdentity) Leaf() *x509.Certificate { return c.cur.Load().Leaf }

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
