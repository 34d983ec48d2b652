package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"strings"
	"testing"
)

var (
	companyName = pkix.Name{CommonName: "Jan Novák", Organization: []string{"Firma a.s."},
		ExtraNames: []pkix.AttributeTypeAndValue{orgID("NTRCZ-45317054")}}
	serverName = pkix.Name{CommonName: "Firma a.s., IČO 45317054", Organization: []string{"Firma a.s."}, SerialNumber: "ICA - 10123456"}
	client     = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	server     = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
)

func TestKindOf(t *testing.T) {
	tests := []struct {
		name     string
		subject  pkix.Name
		usage    []x509.ExtKeyUsage
		ext      func(t *testing.T) []pkix.Extension
		policies []x509.OID
		want     Kind
	}{
		{"qualified seal by QcType", companyName, client, func(t *testing.T) []pkix.Extension {
			return []pkix.Extension{qcStatements(true, oidQcTypeESeal)}
		}, nil, KindQualifiedSeal},
		{"qualified seal by policy QCP-l-qscd", companyName, client, nil, []x509.OID{oidPolicyQCPlQSCD}, KindQualifiedSeal},
		{"qualified company certificate: a person with an organisation", companyName, client, func(t *testing.T) []pkix.Extension {
			return []pkix.Extension{qcStatements(true, oidQcTypeESign)}
		}, nil, KindQualifiedCompany},
		{"qualified without QcType is for a natural person", companyName, client, func(t *testing.T) []pkix.Extension {
			return []pkix.Extension{qcStatements(true)}
		}, nil, KindQualifiedCompany},
		{"qualified personal: no organisation", pkix.Name{CommonName: "Jan Novák"}, client, nil, []x509.OID{oidPolicyQCPn}, KindQualifiedPersonal},
		{"technological server certificate: serverAuth only", serverName, server, nil, nil, KindServer},
		{"server certificate that also allows clientAuth", serverName, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, nil, nil, KindServer},
		{"qualified website certificate", serverName, server, nil, []x509.OID{oidPolicyQCPw}, KindServer},
		{"commercial personal certificate with O and NTRCZ", companyName, client, nil, nil, KindCommercial},
		{"a QcType eseal without QcCompliance is not qualified", companyName, client, func(t *testing.T) []pkix.Extension {
			return []pkix.Extension{qcStatements(false, oidQcTypeESeal)}
		}, nil, KindCommercial},
		{"an unparsable QCStatements extension is not qualified", companyName, client, func(*testing.T) []pkix.Extension {
			return []pkix.Extension{{Id: oidQCStatements, Value: []byte{0x30, 0x03, 0x06, 0x01}}}
		}, nil, KindCommercial},
		{"a QcType that is not a list of types is not qualified", companyName, client, func(*testing.T) []pkix.Extension {
			bad := mustMarshal([]struct {
				ID   asn1.ObjectIdentifier
				Info asn1.RawValue `asn1:"optional"`
			}{{ID: oidQcCompliance}, {ID: oidQcType, Info: asn1.RawValue{FullBytes: mustMarshal(7)}}})
			return []pkix.Extension{{Id: oidQCStatements, Value: bad}}
		}, nil, KindCommercial},
	}
	ca := newTestCA(t, "I.CA Qualified 2 CA/RSA 02/2016")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl := &x509.Certificate{Subject: tt.subject, ExtKeyUsage: tt.usage, Policies: tt.policies}
			if tt.ext != nil {
				tmpl.ExtraExtensions = tt.ext(t)
			}
			cert, _, err := ca.Issue(tmpl)
			if err != nil {
				t.Fatal(err)
			}
			if got := KindOf(cert); got != tt.want {
				t.Errorf("KindOf = %s, want %s", got, tt.want)
			}
		})
	}
}

// kbRequirement is what KB's profile asks (configs/vendors/kb.yaml).
var kbRequirement = Requirement{Issuers: []string{FamilyICA, FamilyPostSignum}, RequireICO: true,
	Kinds: []Kind{KindQualifiedSeal, KindQualifiedCompany, KindServer}}

// The certificate KB's terms ask for, a technological server certificate whose
// CN names the company and its IČO, loads as KB's client certificate; the same
// certificate for a vendor that takes client certificates only does not, nor
// does a commercial personal certificate that carries O and NTRCZ.
func TestClientIdentityCertificateKinds(t *testing.T) {
	ca := newTestCA(t, "I.CA SSL EV CA/RSA 10/2017", "První certifikační autorita, a.s.")
	issue := func(tmpl *x509.Certificate) *tls.Certificate {
		cert, key, err := ca.Issue(tmpl)
		if err != nil {
			t.Fatal(err)
		}
		return &tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
	}
	kbServer := issue(&x509.Certificate{Subject: pkix.Name{CommonName: "Firma a.s., IČO 45317054", SerialNumber: "ICA - 10123456"}, ExtKeyUsage: server})
	personal := issue(&x509.Certificate{Subject: companyName, ExtKeyUsage: client})
	clientOnly := Requirement{Issuers: []string{FamilyICA}, RequireICO: true}
	tests := []struct {
		name    string
		req     Requirement
		cert    *tls.Certificate
		wantErr string
	}{
		{"KB takes its technological server certificate", kbRequirement, kbServer, ""},
		{"a vendor without server in types refuses it", clientOnly, kbServer, "does not allow TLS client authentication"},
		{"KB refuses a commercial personal certificate", kbRequirement, personal, "commercial"},
		{"a qualified website certificate for e-mail only is no TLS certificate", kbRequirement,
			issue(&x509.Certificate{Subject: kbServer.Leaf.Subject, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}, Policies: []x509.OID{oidPolicyQCPw}}),
			"does not allow TLS client authentication"},
		{"a usage Go does not know restricts like any other", Requirement{},
			issue(&x509.Certificate{Subject: companyName, UnknownExtKeyUsage: []asn1.ObjectIdentifier{{1, 3, 6, 1, 4, 1, 311, 10, 3, 12}}}),
			"does not allow TLS client authentication"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := NewClientIdentity(context.Background(), "kb", tt.req, func(context.Context) (*tls.Certificate, error) { return tt.cert, nil })
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if id.Leaf() != tt.cert.Leaf {
					t.Fatal("another certificate is in use")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// The extension the dev PKI and tests issue qualified certificates with is
// read back as the kind it was made for.
func TestQualifiedStatementsRoundTrip(t *testing.T) {
	ca := newTestCA(t, "I.CA Qualified 2 CA/RSA 02/2016")
	for _, k := range []Kind{KindQualifiedSeal, KindQualifiedCompany} {
		ext, ok := QualifiedStatements(k)
		if !ok {
			t.Fatalf("no statements for %s", k)
		}
		cert, _, err := ca.Issue(&x509.Certificate{Subject: companyName, ExtKeyUsage: client, ExtraExtensions: []pkix.Extension{ext}})
		if err != nil {
			t.Fatal(err)
		}
		if got := KindOf(cert); got != k {
			t.Errorf("issued as %s, read as %s", k, got)
		}
	}
	if _, ok := QualifiedStatements(KindServer); ok {
		t.Error("a server certificate got QC statements")
	}
}

func TestOrganization(t *testing.T) {
	tests := []struct {
		subject pkix.Name
		want    string
	}{
		{pkix.Name{CommonName: "x", Organization: []string{"Firma a.s."}}, "Firma a.s."},
		{pkix.Name{CommonName: "Firma a.s., IČO 45317054"}, "Firma a.s."},
		{pkix.Name{CommonName: "IČO: 45317054 - Firma s.r.o."}, "Firma s.r.o."},
		{pkix.Name{CommonName: "IČO 45317054"}, ""},
		{pkix.Name{CommonName: "Firma a.s."}, ""}, // no IČO beside it: a CN alone names nothing
	}
	ca := newTestCA(t, "I.CA")
	for _, tt := range tests {
		cert, _, err := ca.Issue(&x509.Certificate{Subject: tt.subject})
		if err != nil {
			t.Fatal(err)
		}
		if got := Organization(cert); got != tt.want {
			t.Errorf("Organization(%q) = %q, want %q", tt.subject.CommonName, got, tt.want)
		}
	}
}
