package certs

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strings"
)

// OIDOrganizationIdentifier is the X.520 organizationIdentifier attribute (2.5.4.97)
// in which qualified certificates carry a registration number such as NTRCZ-12345678.
var OIDOrganizationIdentifier = asn1.ObjectIdentifier{2, 5, 4, 97}

var oidSerialNumber = asn1.ObjectIdentifier{2, 5, 4, 5}

// ICO returns the Czech company id (IČO) of a certificate subject and where it was
// found. The order is fixed because issuers put different things in the subject:
//  1. organizationIdentifier NTRCZ-<8 digits> (eIDAS natural form of the IČO);
//  2. organizationIdentifier PSDCZ-CNB-<id> (PSD2 certificates: the id at the ČNB);
//  3. a serialNumber that is exactly 8 digits.
//
// I.CA client ids ("ICA - 10123456") and PostSignum client numbers ("S123456",
// "P123456") also live in serialNumber and are never taken for an IČO. An 8-digit
// value whose check digit is wrong is rejected: it is a typo or not an IČO.
func ICO(cert *x509.Certificate) (ico, source string, err error) {
	return icoFromName(cert.Subject)
}

func icoFromName(name pkix.Name) (string, string, error) {
	var orgIDs, serials []string
	for _, atv := range name.Names {
		v, ok := atv.Value.(string)
		if !ok {
			continue
		}
		switch {
		case atv.Type.Equal(OIDOrganizationIdentifier):
			orgIDs = append(orgIDs, strings.TrimSpace(v))
		case atv.Type.Equal(oidSerialNumber):
			serials = append(serials, strings.TrimSpace(v))
		}
	}
	var bad []string
	for _, id := range orgIDs {
		if rest, ok := strings.CutPrefix(id, "NTRCZ-"); ok {
			if err := ValidateICO(rest); err != nil {
				bad = append(bad, fmt.Sprintf("organizationIdentifier %q: %v", id, err))
				continue
			}
			return rest, "organizationIdentifier NTRCZ", nil
		}
	}
	for _, id := range orgIDs {
		if rest, ok := strings.CutPrefix(id, "PSDCZ-CNB-"); ok && rest != "" {
			return rest, "organizationIdentifier PSDCZ-CNB", nil
		}
	}
	for _, s := range serials {
		if ValidateICO(s) == nil {
			return s, "serialNumber", nil
		}
	}
	if len(bad) > 0 {
		return "", "", fmt.Errorf("%w (%s)", ErrNoICO, strings.Join(bad, "; "))
	}
	return "", "", ErrNoICO
}

// ValidateICO checks that s is eight digits with a correct modulo-11 check digit.
func ValidateICO(s string) error {
	if len(s) != 8 {
		return fmt.Errorf("IČO must have 8 digits, got %d characters", len(s))
	}
	for i := 0; i < 8; i++ {
		if s[i] < '0' || s[i] > '9' {
			return fmt.Errorf("IČO must be digits only")
		}
	}
	if want := ICOCheckDigit(s[:7]); int(s[7]-'0') != want {
		return fmt.Errorf("IČO check digit is %c, want %d", s[7], want)
	}
	return nil
}

// ICOCheckDigit computes the eighth digit of an IČO from its first seven.
func ICOCheckDigit(first7 string) int {
	sum := 0
	for i := 0; i < 7; i++ {
		sum += int(first7[i]-'0') * (8 - i)
	}
	return (11 - sum%11) % 10
}
