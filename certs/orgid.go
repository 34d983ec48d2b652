package certs

import (
	"fmt"
	"regexp"
	"strings"
)

// OrgID is an organizationIdentifier (2.5.4.97) in the semantic form of ETSI
// EN 319 412-1 §5.1.4: a three-letter scheme, the issuing country, a dash and
// the identifier ("NTRCZ-27074358", "VATDE-123456789", "LEIXG-…"). The PSD2
// form of ETSI TS 119 495 adds the authority: "PSDCZ-CNB-27074358".
type OrgID struct {
	// Scheme is NTR (national trade register), VAT, PSD (PSD2 authorisation
	// number) or LEI (ISO 17442 Legal Entity Identifier).
	Scheme string
	// Country is the ISO 3166-1 alpha-2 code of the register (EL for Greek
	// VAT, XG for the global LEI).
	Country string
	// ID is the number in the register; for PSD, "<authority>-<number>".
	ID string
}

// Schemes of an organizationIdentifier NewVendorCSR writes.
var OrgIDSchemes = []string{"NTR", "VAT", "PSD", "LEI"}

var (
	countryRE = regexp.MustCompile(`^[A-Z]{2}$`)
	// Registers write numbers with letters, digits and a few separators.
	registerIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ./-]{0,62}$`)
	vatIDRE      = regexp.MustCompile(`^[A-Z0-9+*]{2,14}$`)
	psdIDRE      = regexp.MustCompile(`^([A-Z]{2,8})-([A-Za-z0-9][A-Za-z0-9./-]{0,61})$`)
	leiRE        = regexp.MustCompile(`^[A-Z0-9]{18}[0-9]{2}$`)
)

// String is the attribute's value.
func (o OrgID) String() string { return o.Scheme + o.Country + "-" + o.ID }

// Validate checks the form, and what can be checked of the number without
// asking its register: the IČO's check digit for NTRCZ (and for ČNB's PSD2
// numbers, which are IČOs), the LEI's ISO 7064 check digits.
func (o OrgID) Validate() error {
	if !countryRE.MatchString(o.Country) {
		return fmt.Errorf("country %q is not an ISO 3166-1 alpha-2 code (two capital letters)", o.Country)
	}
	switch o.Scheme {
	case "NTR":
		if o.Country == "CZ" {
			return ValidateICO(o.ID)
		}
		if !registerIDRE.MatchString(o.ID) {
			return fmt.Errorf("trade register number %q: letters, digits, spaces, dots, slashes or dashes, up to 63", o.ID)
		}
	case "VAT":
		if !vatIDRE.MatchString(o.ID) {
			return fmt.Errorf("VAT number %q: 2 to 14 capital letters or digits, without the country prefix", o.ID)
		}
	case "PSD":
		m := psdIDRE.FindStringSubmatch(o.ID)
		if m == nil {
			return fmt.Errorf("PSD2 identifier %q: <authority>-<authorisation number>, such as CNB-27074358", o.ID)
		}
		if o.Country == "CZ" && m[1] == "CNB" {
			return ValidateICO(m[2])
		}
	case "LEI":
		if o.Country != "XG" {
			return fmt.Errorf("an LEI is global: its country is XG, not %q", o.Country)
		}
		return ValidateLEI(o.ID)
	default:
		return fmt.Errorf("scheme %q is unknown: use %s", o.Scheme, strings.Join(OrgIDSchemes, ", "))
	}
	return nil
}

// ValidateLEI checks an ISO 17442 Legal Entity Identifier: 18 characters and
// two check digits, the whole being 1 modulo 97 with letters as 10 to 35.
func ValidateLEI(lei string) error {
	if !leiRE.MatchString(lei) {
		return fmt.Errorf("LEI %q: 18 capital letters or digits and 2 check digits", lei)
	}
	rem := 0
	for _, c := range lei {
		v := int(c - '0')
		if c >= 'A' {
			v = int(c-'A') + 10
			rem = rem * 10 % 97
		}
		rem = (rem*10 + v) % 97
	}
	if rem != 1 {
		return fmt.Errorf("LEI %q: wrong check digits", lei)
	}
	return nil
}

// ParseOrgID reads an organizationIdentifier value in its ETSI form.
func ParseOrgID(s string) (OrgID, error) {
	if len(s) < 7 || s[5] != '-' {
		return OrgID{}, fmt.Errorf("organizationIdentifier %q: want <scheme><country>-<id>, such as NTRCZ-27074358 or VATDE-123456789", s)
	}
	o := OrgID{Scheme: s[:3], Country: s[3:5], ID: s[6:]}
	if err := o.Validate(); err != nil {
		return OrgID{}, fmt.Errorf("organizationIdentifier %q: %w", s, err)
	}
	return o, nil
}
