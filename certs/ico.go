package certs

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// OIDOrganizationIdentifier is the X.520 organizationIdentifier attribute (2.5.4.97)
// in which qualified certificates carry a registration number such as NTRCZ-12345678.
var OIDOrganizationIdentifier = asn1.ObjectIdentifier{2, 5, 4, 97}

var oidSerialNumber = asn1.ObjectIdentifier{2, 5, 4, 5}

// ICO returns the Czech company id (IČO) of a certificate subject and where it was
// found. The order is fixed because issuers put different things in the subject:
//  1. organizationIdentifier NTRCZ-<8 digits> (eIDAS natural form of the IČO);
//  2. organizationIdentifier PSDCZ-CNB-<IČO> (PSD2 certificates: the ČNB register
//     identifies Czech payment institutions by their IČO);
//  3. a serialNumber that is exactly 8 digits;
//  4. the CN, where a technological server certificate names the company and its
//     IČO: the 8 digits after a label IČO, IČ, ICO or IC ("Firma a.s., IČO 45317054").
//
// I.CA client ids ("ICA - 10123456") and PostSignum client numbers ("S123456",
// "P123456") also live in serialNumber and are never taken for an IČO, nor are
// unlabelled digits in the CN. An IČO field whose value fails the check digit
// is a typo, and a subject naming two different IČOs is ambiguous: either is
// an error, whatever else the subject carries.
func ICO(cert *x509.Certificate) (ico, source string, err error) {
	return icoFromName(cert.Subject)
}

// Sources of an IČO, as ICO reports them.
const (
	ICOFromNTR        = "organizationIdentifier NTRCZ"
	ICOFromPSD        = "organizationIdentifier PSDCZ-CNB"
	ICOFromSerial     = "serialNumber"
	ICOFromCommonName = "commonName"
)

// cnICO finds a labelled IČO in a CN: the label must stand as a word of its
// own, and the number is every digit that follows it.
var cnICO = regexp.MustCompile(`(?i)(?:^|[^\p{L}\p{N}])(?:IČO|IČ|ICO|IC)\s*[:=]?\s*([0-9]+)(\p{N})?`)

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
	type found struct{ ico, source string }
	var got []found
	var bad []string
	take := func(field, value, ico, source string) {
		if err := ValidateICO(ico); err != nil {
			bad = append(bad, fmt.Sprintf("%s %q: %v", field, value, err))
			return
		}
		got = append(got, found{ico, source})
	}
	for _, f := range []struct{ prefix, source string }{{"NTRCZ-", ICOFromNTR}, {"PSDCZ-CNB-", ICOFromPSD}} {
		for _, id := range orgIDs {
			if rest, ok := strings.CutPrefix(id, f.prefix); ok {
				take("organizationIdentifier", id, rest, f.source)
			}
		}
	}
	for _, s := range serials {
		if ValidateICO(s) == nil {
			got = append(got, found{s, ICOFromSerial})
		}
	}
	for _, m := range cnICO.FindAllStringSubmatch(name.CommonName, -1) {
		if m[2] != "" {
			bad = append(bad, fmt.Sprintf("commonName %q: the number runs on in digits that are not ASCII", strings.TrimSpace(m[0])))
			continue
		}
		take("commonName", strings.TrimSpace(m[0]), m[1], ICOFromCommonName)
	}
	switch {
	case len(bad) > 0:
		return "", "", fmt.Errorf("%w (%s)", ErrNoICO, strings.Join(bad, "; "))
	case len(got) == 0:
		return "", "", ErrNoICO
	}
	for _, f := range got[1:] {
		if f.ico != got[0].ico {
			return "", "", fmt.Errorf("%w: the subject names two, %s (%s) and %s (%s)", ErrNoICO, got[0].ico, got[0].source, f.ico, f.source)
		}
	}
	return got[0].ico, got[0].source, nil
}

// Organization is the name of the organisation cert was issued to: its O, or,
// where a server certificate names the company in its CN beside the IČO, the
// rest of the CN. Empty when the subject names none.
func Organization(cert *x509.Certificate) string {
	if len(cert.Subject.Organization) > 0 {
		return strings.Join(cert.Subject.Organization, ", ")
	}
	if _, src, err := ICO(cert); err != nil || src != ICOFromCommonName {
		return ""
	}
	rest := cnICO.ReplaceAllStringFunc(cert.Subject.CommonName, func(m string) string {
		if r, _ := utf8.DecodeRuneInString(m); !unicode.IsLetter(r) && !unicode.IsNumber(r) {
			return string(r)
		}
		return ""
	})
	return strings.Trim(rest, " ,;-–—/()")
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
