package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"strings"
)

// Key types a vendor CSR can be made with. Czech qualified CAs (I.CA,
// PostSignum) and the banks accept RSA everywhere; ECDSA not always.
const (
	KeyRSA2048   = "rsa-2048"
	KeyRSA3072   = "rsa-3072"
	KeyECDSAP256 = "ecdsa-p256"
)

// VendorCSR is the subject of a certificate consentgate will present to a
// vendor, as a qualified CA or the vendor's own CA expects it for a company.
type VendorCSR struct {
	// Organization is the company's registered name (O).
	Organization string
	// ICO is the company id; it goes into organizationIdentifier as NTRCZ-<IČO>.
	ICO string
	// CommonName defaults to Organization.
	CommonName string
	// KeyType is one of KeyRSA2048 (default), KeyRSA3072, KeyECDSAP256.
	KeyType string
}

// NewVendorCSR makes a new private key and a CSR for it whose subject carries
// CN, O, C=CZ and organizationIdentifier NTRCZ-<IČO> (ETSI EN 319 412-1). The
// IČO's check digit is verified first: a CA would issue the typo.
func NewVendorCSR(r VendorCSR) (csrPEM []byte, key crypto.Signer, err error) {
	if strings.TrimSpace(r.Organization) == "" {
		return nil, nil, fmt.Errorf("the organisation name (O) is required")
	}
	if err := ValidateICO(r.ICO); err != nil {
		return nil, nil, fmt.Errorf("IČO %q: %w", r.ICO, err)
	}
	if r.CommonName == "" {
		r.CommonName = r.Organization
	}
	switch r.KeyType {
	case "", KeyRSA2048:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case KeyRSA3072:
		key, err = rsa.GenerateKey(rand.Reader, 3072)
	case KeyECDSAP256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, nil, fmt.Errorf("key type %q is unknown: use %s, %s or %s", r.KeyType, KeyRSA2048, KeyRSA3072, KeyECDSAP256)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("generating key: %w", err)
	}
	subject := pkix.Name{
		CommonName:   r.CommonName,
		Organization: []string{r.Organization},
		Country:      []string{"CZ"},
		ExtraNames:   []pkix.AttributeTypeAndValue{{Type: OIDOrganizationIdentifier, Value: "NTRCZ-" + r.ICO}},
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating CSR: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), key, nil
}
