package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"
)

var fuzzKey = sync.OnceValue(func() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
})

// Whatever a subject carries, an IČO found is one of its values, passes the
// check digit, and survives the certificate's DER encoding: what ICO reads
// from a parsed certificate is what the subject said.
func FuzzICO(f *testing.F) {
	for _, s := range [][3]string{
		{"NTRCZ-25596641", "", ""}, {"NTRCZ-25596642", "25596641", ""}, {"PSDCZ-CNB-12345", "", ""},
		{"", "ICA - 10123456", ""}, {"", "S123456", ""}, {"NTRCZ-", "2559664", ""}, {"NTRCZ-2559664١", "", ""},
		{"", "", "Firma a.s., IČO 25596641"}, {"", "", "IČ:25596642 IC 25596641"}, {"", "", "ičo=١٢"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, orgID, serial, cn string) {
		name := pkix.Name{CommonName: cn}
		if orgID != "" {
			name.ExtraNames = append(name.ExtraNames, pkix.AttributeTypeAndValue{Type: OIDOrganizationIdentifier, Value: orgID})
		}
		if serial != "" {
			name.ExtraNames = append(name.ExtraNames, pkix.AttributeTypeAndValue{Type: asn1.ObjectIdentifier{2, 5, 4, 5}, Value: serial})
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: name, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &fuzzKey().PublicKey, fuzzKey())
		if err != nil {
			return // not encodable (e.g. invalid UTF-8): no certificate can carry it
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatalf("parsing our own certificate: %v", err)
		}
		ico, source, err := ICO(cert)
		if err != nil {
			if ico != "" {
				t.Fatalf("error %v with IČO %q", err, ico)
			}
			return
		}
		if !strings.Contains(strings.TrimSpace(orgID), ico) && strings.TrimSpace(serial) != ico && !strings.Contains(cn, ico) {
			t.Fatalf("IČO %q from %s is in none of %q, %q, %q", ico, source, orgID, serial, cn)
		}
		if ValidateICO(ico) != nil {
			t.Fatalf("IČO %q from %s fails its check digit", ico, source)
		}
	})
}
