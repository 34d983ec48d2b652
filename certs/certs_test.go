package certs

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

func newTestCA(t *testing.T, cn string, org ...string) *CA {
	t.Helper()
	ca, err := NewCA(pkix.Name{CommonName: cn, Organization: org}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func orgID(v string) pkix.AttributeTypeAndValue {
	return pkix.AttributeTypeAndValue{Type: OIDOrganizationIdentifier, Value: v}
}

func TestICO(t *testing.T) {
	tests := []struct {
		name    string
		subject pkix.Name
		want    string
		source  string
	}{
		{"I.CA qualified seal: NTRCZ wins over the I.CA client id",
			pkix.Name{CommonName: "Firma a.s.", SerialNumber: "ICA - 10123456", ExtraNames: []pkix.AttributeTypeAndValue{orgID("NTRCZ-45317054")}},
			"45317054", "organizationIdentifier NTRCZ"},
		{"I.CA commercial certificate with only the client id has no IČO",
			pkix.Name{CommonName: "server.firma.cz", SerialNumber: "ICA - 10123456"}, "", ""},
		{"PostSignum qualified seal with client number and NTRCZ",
			pkix.Name{CommonName: "Firma s.r.o.", SerialNumber: "S123456", ExtraNames: []pkix.AttributeTypeAndValue{orgID("NTRCZ-27074358")}},
			"27074358", "organizationIdentifier NTRCZ"},
		{"PostSignum client number P… is never an IČO",
			pkix.Name{CommonName: "Firma s.r.o.", SerialNumber: "P1234567"}, "", ""},
		{"PostSignum client number with 8 characters is never an IČO",
			pkix.Name{CommonName: "Firma s.r.o.", SerialNumber: "S2707435"}, "", ""},
		{"PSD2 QWAC: PSDCZ-CNB identifier",
			pkix.Name{CommonName: "tpp.example.cz", ExtraNames: []pkix.AttributeTypeAndValue{orgID("PSDCZ-CNB-27074358")}},
			"27074358", "organizationIdentifier PSDCZ-CNB"},
		{"NTRCZ named first whatever the order",
			pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{orgID("PSDCZ-CNB-45317054"), orgID("NTRCZ-45317054")}},
			"45317054", "organizationIdentifier NTRCZ"},
		{"a PSDCZ-CNB typo beside a good NTRCZ is refused",
			pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{orgID("PSDCZ-CNB-99999999"), orgID("NTRCZ-45317054")}}, "", ""},
		{"NTRCZ and PSDCZ-CNB naming two companies are refused",
			pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{orgID("PSDCZ-CNB-27074358"), orgID("NTRCZ-45317054")}}, "", ""},
		{"bare 8-digit serialNumber",
			pkix.Name{CommonName: "Firma", SerialNumber: "45317054"}, "45317054", "serialNumber"},
		{"8 digits with a wrong check digit are not an IČO",
			pkix.Name{CommonName: "Firma", SerialNumber: "45317055"}, "", ""},
		{"NTRCZ with a bad check digit is refused",
			pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{orgID("NTRCZ-45317055")}}, "", ""},
		{"no identifiers", pkix.Name{CommonName: "x"}, "", ""},
		{"PSDCZ-CNB with something other than an IČO is not an IČO",
			pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{orgID("PSDCZ-CNB-ABC")}}, "", ""},
		{"PSDCZ-CNB with a wrong check digit is not an IČO",
			pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{orgID("PSDCZ-CNB-27074359")}}, "", ""},
		{"technological server certificate: IČO in the CN after the company name",
			pkix.Name{CommonName: "Firma a.s., IČO 45317054", SerialNumber: "ICA - 10123456"}, "45317054", "commonName"},
		{"CN with IČ: and no space",
			pkix.Name{CommonName: "Firma s.r.o. IČ:27074358"}, "27074358", "commonName"},
		{"CN with ICO= in ASCII",
			pkix.Name{CommonName: "ICO=27074358 Firma s.r.o."}, "27074358", "commonName"},
		{"eight digits in the CN without a label are not an IČO",
			pkix.Name{CommonName: "Firma 45317054"}, "", ""},
		{"a labelled CN value with a wrong check digit is refused",
			pkix.Name{CommonName: "Firma, IČO 45317055"}, "", ""},
		{"a labelled CN value of nine digits is not an IČO",
			pkix.Name{CommonName: "Firma, IČO 453170541"}, "", ""},
		{"a label inside a word is not a label",
			pkix.Name{CommonName: "MEDICO 45317054"}, "", ""},
		{"NTRCZ named first when the CN says the same",
			pkix.Name{CommonName: "Firma, IČO 45317054", ExtraNames: []pkix.AttributeTypeAndValue{orgID("NTRCZ-45317054")}},
			"45317054", "organizationIdentifier NTRCZ"},
		{"NTRCZ and a CN naming another company are refused",
			pkix.Name{CommonName: "Firma, IČO 27074358", ExtraNames: []pkix.AttributeTypeAndValue{orgID("NTRCZ-45317054")}}, "", ""},
		{"a bad NTRCZ is not replaced by the CN's IČO",
			pkix.Name{CommonName: "Firma, IČO 27074358", ExtraNames: []pkix.AttributeTypeAndValue{orgID("NTRCZ-45317055")}}, "", ""},
		{"a CN naming two companies is refused",
			pkix.Name{CommonName: "Matka a.s. IČO 45317054 / Dcera s.r.o. IČO 27074358"}, "", ""},
		{"a CN IČO running on in full-width digits is refused",
			pkix.Name{CommonName: "Firma, IČO 45317054５"}, "", ""},
	}
	ca := newTestCA(t, "test")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, _, err := ca.Issue(&x509.Certificate{Subject: tt.subject})
			if err != nil {
				t.Fatal(err)
			}
			got, src, err := ICO(cert)
			if got != tt.want || src != tt.source {
				t.Errorf("ICO = %q from %q (err %v), want %q from %q", got, src, err, tt.want, tt.source)
			}
			if tt.want == "" && !errors.Is(err, ErrNoICO) {
				t.Errorf("err = %v, want ErrNoICO", err)
			}
		})
	}
}

func TestValidateICO(t *testing.T) {
	for _, ok := range []string{"45317054", "27074358", "00006947", DevICO} {
		if err := ValidateICO(ok); err != nil {
			t.Errorf("ValidateICO(%s) = %v", ok, err)
		}
	}
	for _, bad := range []string{"4531705", "453170544", "4531705a", "45317050", ""} {
		if ValidateICO(bad) == nil {
			t.Errorf("ValidateICO(%q) accepted", bad)
		}
	}
}

func TestRequirement(t *testing.T) {
	ica := newTestCA(t, "I.CA Qualified 2 CA/RSA 02/2016", "První certifikační autorita, a.s.")
	ps := newTestCA(t, "PostSignum Qualified CA 4", "Česká pošta, s.p.")
	other := newTestCA(t, "Some Other CA")
	good := pkix.Name{CommonName: "Firma", Organization: []string{"Firma a.s."}, ExtraNames: []pkix.AttributeTypeAndValue{orgID("NTRCZ-45317054")}}
	req := Requirement{Issuers: []string{FamilyICA, FamilyPostSignum}, RequireICO: true}
	tests := []struct {
		name    string
		ca      *CA
		subject pkix.Name
		wantErr string
	}{
		{"I.CA with IČO", ica, good, ""},
		{"PostSignum with IČO", ps, good, ""},
		{"other issuer", other, good, "not one of the required families"},
		{"no IČO", ica, pkix.Name{CommonName: "Firma", Organization: []string{"Firma a.s."}, SerialNumber: "ICA - 10123456"}, "no IČO"},
		{"no organisation", ica, pkix.Name{CommonName: "Firma", ExtraNames: []pkix.AttributeTypeAndValue{orgID("NTRCZ-45317054")}}, "no organisation name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, _, err := tt.ca.Issue(&x509.Certificate{Subject: tt.subject})
			if err != nil {
				t.Fatal(err)
			}
			err = req.Check(cert)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Check = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestInspectWarnsBeforeExpiry(t *testing.T) {
	ca := newTestCA(t, "I.CA Qualified 2 CA/RSA 02/2016")
	now := time.Now()
	cert, _, err := ca.Issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "Firma", Organization: []string{"Firma a.s."}, ExtraNames: []pkix.AttributeTypeAndValue{orgID("NTRCZ-45317054")}},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(10 * 24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := Inspect(cert, now)
	if r.ICO != "45317054" || r.IssuerFamily != FamilyICA || r.DaysLeft != 9 || r.KeyType != "ECDSA P-256" {
		t.Errorf("report = %+v", r)
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "expires in 9 days") {
		t.Errorf("warnings = %q", r.Warnings)
	}
	if r := Inspect(cert, now.Add(11*24*time.Hour)); !strings.Contains(strings.Join(r.Warnings, ";"), "expired on") {
		t.Errorf("expired cert warnings = %q", r.Warnings)
	}
	if s := r.String(); !strings.Contains(s, "IČO:") || !strings.Contains(s, "45317054 (from organizationIdentifier NTRCZ)") {
		t.Errorf("String() = %s", s)
	}
}

func TestParseKeyPairAndPKCS12(t *testing.T) {
	ca := newTestCA(t, "I.CA test")
	cert, key, err := ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, _ := ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "b"}})
	keyPEM, _ := EncodePrivateKey(key)
	otherPEM, _ := EncodePrivateKey(otherKey)

	pair, err := ParseKeyPair(EncodeCertificates(cert, ca.Cert), keyPEM)
	if err != nil || pair.Leaf.Subject.CommonName != "a" || len(pair.Certificate) != 2 {
		t.Fatalf("ParseKeyPair = %v, %v", pair, err)
	}
	if _, err := ParseKeyPair(EncodeCertificates(cert), otherPEM); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("mismatched key: err = %v", err)
	}

	p12, err := pkcs12.Modern.Encode(key, cert, []*x509.Certificate{ca.Cert}, "heslo")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParsePKCS12(p12, "heslo")
	if err != nil || !got.Leaf.Equal(cert) || len(got.Certificate) != 2 {
		t.Fatalf("ParsePKCS12 = %v, %v", got, err)
	}
	if _, err := ParsePKCS12(p12, "wrong"); err == nil {
		t.Fatal("wrong PKCS#12 password accepted")
	}
}

func TestClientIdentityReloadKeepsGoodCertificate(t *testing.T) {
	ca := newTestCA(t, "I.CA Qualified 2 CA/RSA 02/2016")
	issue := func(subject pkix.Name) *tls.Certificate {
		cert, key, err := ca.Issue(&x509.Certificate{Subject: subject})
		if err != nil {
			t.Fatal(err)
		}
		return &tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
	}
	good := issue(pkix.Name{CommonName: "good", Organization: []string{"Firma"}, ExtraNames: []pkix.AttributeTypeAndValue{orgID("NTRCZ-45317054")}})
	noICO := issue(pkix.Name{CommonName: "no-ico", Organization: []string{"Firma"}})
	next := good
	id, err := NewClientIdentity(context.Background(), "kb", Requirement{RequireICO: true}, func(context.Context) (*tls.Certificate, error) { return next, nil })
	if err != nil {
		t.Fatal(err)
	}
	next = noICO
	if err := id.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "vendor kb") {
		t.Fatalf("reload with a certificate lacking IČO: err = %v", err)
	}
	if got, _ := id.GetClientCertificate(nil); got != good {
		t.Fatal("a failed reload replaced the good certificate")
	}
	if _, err := NewClientIdentity(context.Background(), "kb", Requirement{RequireICO: true}, func(context.Context) (*tls.Certificate, error) { return noICO, nil }); err == nil {
		t.Fatal("start-up accepted a certificate the vendor would refuse")
	}
}

func TestDevPKI(t *testing.T) {
	dir := t.TempDir()
	p, err := LoadOrCreateDevPKI(dir, []string{"api.airbank.cz"})
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) *x509.Certificate {
		data, err := os.ReadFile(p.Path(name))
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseCertificates(data)
		if err != nil {
			t.Fatal(err)
		}
		return c[0]
	}
	kb := read(DevKBCert)
	if err := kbRequirement.Check(kb); err != nil {
		t.Errorf("dev kb certificate does not meet kb's requirement: %v", err)
	}
	if ico, src, _ := ICO(kb); ico != DevICO || src != ICOFromCommonName {
		t.Errorf("dev kb IČO = %q from %q, want %s from the CN", ico, src, DevICO)
	}
	if KindOf(kb) != KindServer || AllowsClientAuth(kb) {
		t.Errorf("dev kb certificate is a %s one that allows client authentication: %v; KB asks for a server certificate", KindOf(kb), AllowsClientAuth(kb))
	}
	root, inter := read(DevRootCert), read(DevIntermediateCert)
	if err := inter.CheckSignatureFrom(root); err != nil || !inter.IsCA || !root.IsCA {
		t.Errorf("internal CA hierarchy: %v", err)
	}
	if err := read(DevSandboxCert).VerifyHostname("api.airbank.cz"); err != nil {
		t.Errorf("sandbox certificate: %v", err)
	}
	for _, f := range []string{DevRootCert, DevIntermediateCert, DevKBCert} {
		info, err := os.Stat(KeyFile(p.Path(f)))
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s key mode = %v, %v", f, info.Mode(), err)
		}
	}

	// Second run reuses: same root.
	if _, err := LoadOrCreateDevPKI(dir, nil); err != nil {
		t.Fatal(err)
	}
	if !read(DevRootCert).Equal(root) {
		t.Error("second run regenerated the root")
	}
	// A PKI made before kb's server certificate (it had a seal) gets one from
	// its I.CA root.
	if err := os.Remove(p.Path(DevKBCert)); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateDevPKI(dir, nil); err != nil {
		t.Fatal(err)
	}
	if err := read(DevKBCert).CheckSignatureFrom(read(DevICARootCert)); err != nil {
		t.Errorf("kb certificate added later: %v", err)
	}
	// A partial PKI is refused rather than silently mixed.
	if err := os.Remove(p.Path(DevBanqwareCert)); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateDevPKI(dir, nil); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Fatalf("partial PKI: err = %v", err)
	}
}

func TestNewVendorCSR(t *testing.T) {
	for _, kt := range []string{"", KeyRSA3072, KeyECDSAP256} {
		t.Run("key "+kt, func(t *testing.T) {
			csrPEM, key, err := NewVendorCSR(VendorCSR{Organization: "Onboarding Example s.r.o.", ICO: "27074358", KeyType: kt})
			if err != nil {
				t.Fatal(err)
			}
			block, rest := pem.Decode(csrPEM)
			if block == nil || block.Type != "CERTIFICATE REQUEST" || len(rest) != 0 {
				t.Fatalf("not one PEM CSR: %q", csrPEM)
			}
			csr, err := x509.ParseCertificateRequest(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if err := csr.CheckSignature(); err != nil {
				t.Errorf("CSR signature: %v", err)
			}
			pub, ok := csr.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
			if !ok || !pub.Equal(key.Public()) {
				t.Error("the CSR is not for the returned key")
			}
			s := csr.Subject
			if s.CommonName != "Onboarding Example s.r.o." || !slices.Equal(s.Organization, []string{"Onboarding Example s.r.o."}) || !slices.Equal(s.Country, []string{"CZ"}) {
				t.Errorf("subject %s", s)
			}
			var orgIDs []string
			for _, atv := range s.Names {
				if atv.Type.Equal(asn1.ObjectIdentifier{2, 5, 4, 97}) {
					orgIDs = append(orgIDs, atv.Value.(string))
				}
			}
			if !slices.Equal(orgIDs, []string{"NTRCZ-27074358"}) {
				t.Errorf("organizationIdentifier = %q", orgIDs)
			}
			// What the IČO reader makes of the subject a CA will copy.
			if ico, src, err := icoFromName(s); ico != "27074358" || src != "organizationIdentifier NTRCZ" {
				t.Errorf("ICO = %q from %q (%v)", ico, src, err)
			}
		})
	}
	for _, tt := range []struct {
		name    string
		r       VendorCSR
		country string
		orgID   string // "": none
	}{
		{"no organizationIdentifier", VendorCSR{Organization: "Firma"}, "CZ", ""},
		{"German VAT", VendorCSR{Organization: "Beispiel GmbH", OrgID: OrgID{"VAT", "DE", "123456789"}}, "DE", "VATDE-123456789"},
		{"Greek VAT: EL in the number, GR in C", VendorCSR{Organization: "Παράδειγμα Α.Ε.", OrgID: OrgID{"VAT", "EL", "094014201"}}, "GR", "VATEL-094014201"},
		{"Slovak trade register", VendorCSR{Organization: "Príklad s.r.o.", OrgID: OrgID{"NTR", "SK", "36123456"}}, "SK", "NTRSK-36123456"},
		{"global LEI, British company", VendorCSR{Organization: "Example Ltd", Country: "GB", OrgID: OrgID{"LEI", "XG", "529900T8BM49AURSDO55"}}, "GB", "LEIXG-529900T8BM49AURSDO55"},
		{"PSD2 at the ČNB", VendorCSR{Organization: "Platby a.s.", OrgID: OrgID{"PSD", "CZ", "CNB-27074358"}}, "CZ", "PSDCZ-CNB-27074358"},
		{"PSD2 at BaFin", VendorCSR{Organization: "Zahlungen AG", OrgID: OrgID{"PSD", "DE", "BAFIN-123456"}}, "DE", "PSDDE-BAFIN-123456"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tt.r.Subject()
			if err != nil {
				t.Fatal(err)
			}
			var orgIDs []string
			for _, atv := range s.ExtraNames {
				orgIDs = append(orgIDs, atv.Value.(string))
			}
			if !slices.Equal(s.Country, []string{tt.country}) || strings.Join(orgIDs, ",") != tt.orgID {
				t.Errorf("subject C=%v organizationIdentifier=%q, want %s and %q", s.Country, orgIDs, tt.country, tt.orgID)
			}
			if tt.orgID != "" {
				if o, err := ParseOrgID(tt.orgID); err != nil || o.String() != tt.orgID {
					t.Errorf("ParseOrgID(%q) = %v, %v", tt.orgID, o, err)
				}
			}
		})
	}
	for _, tt := range []struct {
		name string
		r    VendorCSR
		want string
	}{
		{"LEI with wrong check digits", VendorCSR{Organization: "X", OrgID: OrgID{"LEI", "XG", "529900T8BM49AURSDO56"}}, "check digits"},
		{"LEI under a country", VendorCSR{Organization: "X", OrgID: OrgID{"LEI", "DE", "529900T8BM49AURSDO55"}}, "XG"},
		{"ČNB number that is not an IČO", VendorCSR{Organization: "X", OrgID: OrgID{"PSD", "CZ", "CNB-27074359"}}, "check digit"},
		{"PSD without an authority", VendorCSR{Organization: "X", OrgID: OrgID{"PSD", "DE", "123456"}}, "<authority>"},
		{"unknown scheme", VendorCSR{Organization: "X", OrgID: OrgID{"ABC", "DE", "1"}}, "unknown"},
		{"lower-case country", VendorCSR{Organization: "X", Country: "cz"}, "ISO 3166"},
		{"VAT with its country prefix", VendorCSR{Organization: "X", OrgID: OrgID{"VAT", "DE", "DE 123456789"}}, "without the country prefix"},
		{"IČO and another identifier", VendorCSR{Organization: "X", ICO: "27074358", OrgID: OrgID{"VAT", "CZ", "27074358"}}, "not both"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.r.Subject(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
	for _, tt := range []struct{ name, org, ico, keyType, want string }{
		{"bad check digit", "Firma", "27074359", "", "check digit"},
		{"seven digits", "Firma", "2707435", "", "8 digits"},
		{"no organisation", "", "27074358", "", "organisation name"},
		{"unknown key type", "Firma", "27074358", "dsa", "unknown"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := NewVendorCSR(VendorCSR{Organization: tt.org, ICO: tt.ico, KeyType: tt.keyType}); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// A vendor addressed by IP is verified against that IP: crypto/tls gives the
// connection state no server name then, and an empty name would check none.
func TestCABundleVerifierChecksTheConfiguredName(t *testing.T) {
	ca := newTestCA(t, "vendor CA")
	leaf, _, err := ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "other"},
		IPAddresses: []net.IP{net.IPv4(192, 0, 2, 7)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewCABundle(context.Background(), "test", func(context.Context) ([]byte, error) { return EncodeCertificates(ca.Cert), nil })
	if err != nil {
		t.Fatal(err)
	}
	cs := tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}} // ServerName "", as for an IP
	if err := b.Verifier("192.0.2.7")(cs); err != nil {
		t.Errorf("the right address: %v", err)
	}
	for _, name := range []string{"127.0.0.1", "vendor.example", ""} {
		if err := b.Verifier(name)(cs); err == nil {
			t.Errorf("a certificate for 192.0.2.7 passed for %q", name)
		}
	}
}

// The forward proxy's CA signs server certificates only; a root, or a CA
// without that limit, is refused for the job.
func TestInterceptionCA(t *testing.T) {
	root, err := NewCA(pkix.Name{CommonName: "root"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckInterceptionCA(root.Cert); err == nil {
		t.Error("the root was accepted as the interception CA")
	}
	ca, err := NewInterceptionCA(root, pkix.Name{CommonName: "forward"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckInterceptionCA(ca.Cert); err != nil {
		t.Fatalf("the interception CA: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	inter := x509.NewCertPool()
	inter.AddCert(ca.Cert)
	for _, tt := range []struct {
		usage x509.ExtKeyUsage
		ok    bool
	}{{x509.ExtKeyUsageServerAuth, true}, {x509.ExtKeyUsageClientAuth, false}} {
		leaf, _, err := ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "x"}, DNSNames: []string{"api.kb.cz"},
			ExtKeyUsage: []x509.ExtKeyUsage{tt.usage}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{tt.usage}})
		if (err == nil) != tt.ok {
			t.Errorf("a leaf for %v from the interception CA: %v", tt.usage, err)
		}
	}
	// It signs no further CA either.
	if _, err := NewInterceptionCA(ca, pkix.Name{CommonName: "sub"}, time.Hour); err == nil {
		sub, _ := NewInterceptionCA(ca, pkix.Name{CommonName: "sub"}, time.Hour)
		leaf, _, _ := sub.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "y"}, DNSNames: []string{"a.test"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		inter.AddCert(sub.Cert)
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter}); err == nil {
			t.Error("a CA under the interception CA verified")
		}
	}
}
