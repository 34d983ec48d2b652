package certs

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"strings"
	"time"
)

// ExpiryWarning is how close to expiry a certificate gets before consentgate warns.
const ExpiryWarning = 30 * 24 * time.Hour

// Report is what an operator needs to know about a vendor client certificate.
type Report struct {
	Subject      string
	Issuer       string
	IssuerFamily string
	Kind         Kind
	Organization string
	ICO          string
	ICOSource    string
	NotBefore    time.Time
	NotAfter     time.Time
	DaysLeft     int
	KeyType      string
	Warnings     []string
	// Notes are what is unusual but fine with the right vendor profile.
	Notes []string
}

// Inspect describes cert as of now.
func Inspect(cert *x509.Certificate, now time.Time) Report {
	r := Report{
		Subject:      cert.Subject.String(),
		Issuer:       cert.Issuer.String(),
		IssuerFamily: IssuerFamily(cert),
		Kind:         KindOf(cert),
		Organization: Organization(cert),
		NotBefore:    cert.NotBefore,
		NotAfter:     cert.NotAfter,
		DaysLeft:     int(cert.NotAfter.Sub(now).Hours() / 24),
		KeyType:      keyType(cert),
	}
	ico, src, err := ICO(cert)
	if err != nil {
		r.Warnings = append(r.Warnings, err.Error())
	}
	r.ICO, r.ICOSource = ico, src
	switch left := cert.NotAfter.Sub(now); {
	case left <= 0:
		r.Warnings = append(r.Warnings, fmt.Sprintf("expired on %s", cert.NotAfter.UTC().Format(time.DateOnly)))
	case left < ExpiryWarning:
		r.Warnings = append(r.Warnings, fmt.Sprintf("expires in %d days, on %s: renew it now", r.DaysLeft, cert.NotAfter.UTC().Format(time.DateOnly)))
	}
	if now.Before(cert.NotBefore) {
		r.Warnings = append(r.Warnings, "not valid yet")
	}
	if r.Organization == "" {
		r.Warnings = append(r.Warnings, "subject carries no organisation name (O)")
	}
	if r.IssuerFamily == "" {
		r.Warnings = append(r.Warnings, "issuer is neither I.CA nor PostSignum: Czech banks may refuse it")
	}
	switch {
	case !AllowsClientAuth(cert) && r.Kind == KindServer:
		r.Notes = append(r.Notes, "a TLS server certificate (no clientAuth): only a vendor whose profile lists types: [server], such as kb, takes it as a client certificate")
	case !AllowsClientAuth(cert):
		r.Warnings = append(r.Warnings, "extended key usage does not allow TLS client authentication")
	}
	if k, ok := cert.PublicKey.(*rsa.PublicKey); ok && k.N.BitLen() < 2048 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("RSA key of %d bits is too weak", k.N.BitLen()))
	}
	return r
}

func keyType(cert *x509.Certificate) string {
	switch k := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	default:
		return fmt.Sprintf("%T", k)
	}
}

// String renders the report for a terminal.
func (r Report) String() string {
	var b strings.Builder
	line := func(k, v string) { fmt.Fprintf(&b, "%-14s %s\n", k+":", v) }
	line("subject", r.Subject)
	line("organisation", orNone(r.Organization))
	if r.ICO != "" {
		line("IČO", r.ICO+" (from "+r.ICOSource+")")
	} else {
		line("IČO", "none")
	}
	line("issuer", r.Issuer)
	line("issuer family", orNone(r.IssuerFamily))
	line("kind", string(r.Kind))
	line("valid", r.NotBefore.UTC().Format(time.RFC3339)+" to "+r.NotAfter.UTC().Format(time.RFC3339))
	line("days left", fmt.Sprint(r.DaysLeft))
	line("key", r.KeyType)
	for _, n := range r.Notes {
		line("note", n)
	}
	for _, w := range r.Warnings {
		line("warning", w)
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
