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
	// Country is C, ISO 3166-1 alpha-2; default CZ, or OrgID's country.
	Country string
	// OrgID goes into organizationIdentifier; the zero value leaves it out.
	OrgID OrgID
	// ICO is short for OrgID NTRCZ-<IČO> (and Country CZ).
	ICO string
	// CommonName defaults to Organization.
	CommonName string
	// KeyType is one of KeyRSA2048 (default), KeyRSA3072, KeyECDSAP256.
	KeyType string
}

// Subject is the name the CSR asks for, checked: an organisation, a country
// code, and an organizationIdentifier in its ETSI form with what its register
// number can be checked for (see OrgID.Validate). A CA would issue the typo.
func (r VendorCSR) Subject() (pkix.Name, error) {
	if strings.TrimSpace(r.Organization) == "" {
		return pkix.Name{}, fmt.Errorf("the organisation name (O) is required")
	}
	id := r.OrgID
	if r.ICO != "" {
		if id != (OrgID{}) {
			return pkix.Name{}, fmt.Errorf("give the IČO or another organizationIdentifier, not both")
		}
		id = OrgID{Scheme: "NTR", Country: "CZ", ID: r.ICO}
	}
	country := r.Country
	if country == "" && id.Country != "" && id.Country != "XG" {
		country = id.Country
		// EU VAT numbers write Greece as EL; its ISO 3166 code is GR.
		if id.Scheme == "VAT" && country == "EL" {
			country = "GR"
		}
	}
	if country == "" {
		country = "CZ"
	}
	if !countryRE.MatchString(country) {
		return pkix.Name{}, fmt.Errorf("country %q is not an ISO 3166-1 alpha-2 code (two capital letters)", country)
	}
	name := pkix.Name{CommonName: r.CommonName, Organization: []string{r.Organization}, Country: []string{country}}
	if name.CommonName == "" {
		name.CommonName = r.Organization
	}
	if id != (OrgID{}) {
		if err := id.Validate(); err != nil {
			return pkix.Name{}, fmt.Errorf("organizationIdentifier %s: %w", id, err)
		}
		name.ExtraNames = []pkix.AttributeTypeAndValue{{Type: OIDOrganizationIdentifier, Value: id.String()}}
	}
	return name, nil
}

// NewVendorCSR makes a new private key and a CSR for it with r's subject.
func NewVendorCSR(r VendorCSR) (csrPEM []byte, key crypto.Signer, err error) {
	subject, err := r.Subject()
	if err != nil {
		return nil, nil, err
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
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating CSR: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), key, nil
}
