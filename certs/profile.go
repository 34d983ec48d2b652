package certs

import (
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
)

// Issuer families a vendor profile can require.
const (
	FamilyICA        = "ica"
	FamilyPostSignum = "postsignum"
)

// IssuerFamily names the Czech qualified CA family that issued cert, or "" when
// the issuer is neither. It reads the issuer name only: chain verification against
// the family's real roots is the vendor's job and, optionally, the profile's CA pin.
func IssuerFamily(cert *x509.Certificate) string {
	names := append([]string{cert.Issuer.CommonName}, cert.Issuer.Organization...)
	for _, n := range names {
		l := strings.ToLower(n)
		switch {
		case strings.Contains(l, "i.ca") || strings.Contains(l, "první certifikační autorita"):
			return FamilyICA
		case strings.Contains(l, "postsignum") || strings.Contains(l, "česká pošta"):
			return FamilyPostSignum
		}
	}
	return ""
}

// Requirement is what a vendor demands of the certificate consentgate presents.
type Requirement struct {
	// Issuers lists accepted issuer families; empty accepts any issuer.
	Issuers []string
	// RequireICO demands an IČO in the subject (see ICO).
	RequireICO bool
	// Kinds lists the kinds of certificate the vendor takes; empty takes any
	// kind whose extended key usage allows client authentication.
	Kinds []Kind
}

// Check reports every way cert fails r, in one error.
func (r Requirement) Check(cert *x509.Certificate) error {
	var problems []string
	if len(r.Issuers) > 0 {
		if fam := IssuerFamily(cert); !slices.Contains(r.Issuers, fam) {
			problems = append(problems, fmt.Sprintf("issuer %q is not one of the required families (%s)",
				cert.Issuer.CommonName, strings.Join(r.Issuers, ", ")))
		}
	}
	if r.RequireICO {
		if _, _, err := ICO(cert); err != nil {
			problems = append(problems, err.Error())
		}
		if Organization(cert) == "" {
			problems = append(problems, "subject carries no organisation name (O, or a CN naming the company beside its IČO)")
		}
	}
	if len(r.Kinds) > 0 {
		if k := KindOf(cert); !slices.Contains(r.Kinds, k) {
			problems = append(problems, fmt.Sprintf("it is a %s certificate; the vendor takes %s", k, joinKinds(r.Kinds)))
		}
	}
	if !AllowsClientAuth(cert) && !r.TakesServerCertificate(cert) {
		problems = append(problems, "its extended key usage does not allow TLS client authentication")
	}
	if len(problems) > 0 {
		return fmt.Errorf("certificate %q does not meet the vendor's requirements: %s",
			cert.Subject.CommonName, strings.Join(problems, "; "))
	}
	return nil
}

// TakesServerCertificate reports whether cert is presented as a client
// certificate only because the vendor takes a server certificate for one
// (Komerční banka does): its extended key usage names serverAuth and not
// clientAuth, and the profile lists the server kind. A certificate for
// another purpose (e-mail, signing) is not a TLS certificate at all.
func (r Requirement) TakesServerCertificate(cert *x509.Certificate) bool {
	return !AllowsClientAuth(cert) && slices.Contains(r.Kinds, KindServer) && KindOf(cert) == KindServer &&
		slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
}

func joinKinds(kinds []Kind) string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}
