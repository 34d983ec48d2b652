package certs

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// InUse is one certificate a running gateway uses, as `certs status` and
// GET /v1/certificates show it.
type InUse struct {
	// Role is what it is for: serving, client-ca, client-crl-issuer,
	// forward-ca, vendor-client, vendor-ca.
	Role   string `json:"role"`
	Vendor string `json:"vendor,omitempty"`
	// Subject, Issuer and Serial name it; Kind is a vendor client
	// certificate's (KindOf).
	Subject  string    `json:"subject"`
	Issuer   string    `json:"issuer"`
	Serial   string    `json:"serial"`
	Kind     Kind      `json:"kind,omitempty"`
	NotAfter time.Time `json:"not_after"`
	DaysLeft int       `json:"days_left"`
	// Key is where the private key is: "file:PATH", "secret:REF",
	// "pkcs11:token=…;object=…" or "" for certificates whose key is not ours.
	Key string `json:"key,omitempty"`
	// Revocation is good, revoked, unknown (with why) or not-checked.
	Revocation string   `json:"revocation"`
	Warnings   []string `json:"warnings,omitempty"`
}

// Revocation states of InUse.
const (
	RevocationGood       = "good"
	RevocationRevoked    = "revoked"
	RevocationUnknown    = "unknown"
	RevocationNotChecked = "not-checked"
)

// Describe fills what cert says of itself, with expiry warnings as of now.
func Describe(role string, cert *x509.Certificate, now time.Time) InUse {
	u := InUse{Role: role, Subject: cert.Subject.String(), Issuer: cert.Issuer.String(), Serial: cert.SerialNumber.String(),
		NotAfter: cert.NotAfter, DaysLeft: int(cert.NotAfter.Sub(now).Hours() / 24), Revocation: RevocationNotChecked}
	switch left := cert.NotAfter.Sub(now); {
	case left <= 0:
		u.Warnings = append(u.Warnings, "expired on "+cert.NotAfter.UTC().Format(time.DateOnly))
	case left < ExpiryWarning:
		u.Warnings = append(u.Warnings, fmt.Sprintf("expires in %d days", u.DaysLeft))
	}
	return u
}

// RevocationOf is the state a revocation check's answer gives.
func RevocationOf(err error) string {
	switch {
	case err == nil:
		return RevocationGood
	case errors.Is(err, ErrRevoked):
		return RevocationRevoked + ": " + err.Error()
	}
	return RevocationUnknown + ": " + err.Error()
}
