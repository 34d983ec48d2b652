package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"time"
)

// CA is a certificate authority held in memory: the dev vendor PKIs, the forward
// proxy (vendor-host certificates) and test helpers use it. The internal CA that
// issues gateway and app certificates is the Authority (smallstep).
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA creates a self-signed root valid for the given duration.
func NewCA(subject pkix.Name, validity time.Duration) (*CA, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject:               subject,
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            1,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	cert, err := sign(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("creating CA %q: %w", subject.CommonName, err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// ParseCA reads a CA from its PEM certificate and PEM private key.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	certs, err := ParseCertificates(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := ParsePrivateKey(keyPEM)
	if err != nil {
		return nil, err
	}
	if !certs[0].IsCA {
		return nil, errors.New("certificate is not a CA")
	}
	return &CA{Cert: certs[0], Key: key}, nil
}

// Issue signs tmpl with a fresh ECDSA P-256 key. Zero NotBefore/NotAfter default to
// now and 90 days; a CA template (IsCA) yields an intermediate.
func (ca *CA) Issue(tmpl *x509.Certificate) (*x509.Certificate, crypto.Signer, error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	cert, err := ca.Sign(tmpl, key.Public())
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// Sign signs tmpl for the given public key, as a CA does with a CSR.
func (ca *CA) Sign(tmpl *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	t := *tmpl
	if t.NotBefore.IsZero() {
		t.NotBefore = time.Now().Add(-time.Minute)
	}
	if t.NotAfter.IsZero() {
		t.NotAfter = t.NotBefore.Add(90 * 24 * time.Hour)
	}
	if t.KeyUsage == 0 {
		t.KeyUsage = x509.KeyUsageDigitalSignature
		if t.IsCA {
			t.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		}
	}
	if t.IsCA {
		t.BasicConstraintsValid = true
	}
	cert, err := sign(&t, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issuing certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	return cert, nil
}

func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	pkix, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	// A SHA-1 key id is what RFC 5280 suggests and what every verifier expects.
	ski := sha1.Sum(pkix)
	tmpl.SubjectKeyId = ski[:]
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func newKey() (crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating key: %w", err)
	}
	return key, nil
}

// EncodeCertificates returns the PEM encoding of certs, leaf first.
func EncodeCertificates(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// EncodePrivateKey returns the PKCS#8 PEM encoding of key.
func EncodePrivateKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseCertificates reads every CERTIFICATE block of a PEM bundle.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing certificate %d: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, ErrNoCertificate
	}
	return out, nil
}

// ParsePrivateKey reads a PKCS#8, PKCS#1 or SEC 1 PEM private key.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, ErrNoPrivateKey
		}
		var key any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			// The parser's error never contains key bytes, only the structure it expected.
			return nil, fmt.Errorf("parsing %s: %w", block.Type, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s: unsupported key type %T", block.Type, key)
		}
		return signer, nil
	}
}

// LoadPool reads a PEM bundle into a pool of trusted certificates.
func LoadPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	list, err := ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	pool := x509.NewCertPool()
	for _, c := range list {
		pool.AddCert(c)
	}
	return pool, nil
}

// NewInterceptionCA makes the forward proxy's CA: an intermediate of parent
// that can sign server certificates and nothing else (extended key usage
// serverAuth, no further CAs). Apps trust it through parent; anyone holding
// its key still cannot mint a client certificate the listeners accept, which
// they could with parent's.
func NewInterceptionCA(parent *CA, subject pkix.Name, validity time.Duration) (*CA, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	cert, err := parent.Sign(&x509.Certificate{
		Subject:        subject,
		NotAfter:       time.Now().Add(validity),
		IsCA:           true,
		MaxPathLen:     0,
		MaxPathLenZero: true,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, key.Public())
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// CheckInterceptionCA refuses a forward proxy CA that could sign more than
// server certificates: with such a CA's key, anyone could mint a client
// certificate (an admin's) the listeners accept.
func CheckInterceptionCA(cert *x509.Certificate) error {
	switch {
	case !cert.IsCA:
		return errors.New("is not a CA certificate")
	case len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth || len(cert.UnknownExtKeyUsage) > 0:
		return errors.New("must be limited to server certificates (extended key usage serverAuth alone): with the key of a CA that is not, anyone could mint client certificates the listeners accept; make one with consentgate certs forward-ca")
	case !(cert.MaxPathLenZero || cert.MaxPathLen == 0) || cert.MaxPathLen > 0:
		return errors.New("must not sign further CAs (path length 0)")
	}
	return nil
}
