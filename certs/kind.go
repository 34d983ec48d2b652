package certs

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"slices"
)

// Kind is the sort of certificate consentgate presents to a vendor, in the terms
// of the vendors' onboarding documents: Komerční banka, for one, takes a
// qualified company certificate or seal, or a commercial server certificate,
// and nothing else.
type Kind string

// Kinds of certificate. A profile lists those its vendor takes (types:).
const (
	// KindQualifiedSeal is an eIDAS qualified certificate of a legal person
	// (QcType eseal, or policy QCP-l / QCP-l-qscd).
	KindQualifiedSeal Kind = "qualified-seal"
	// KindQualifiedCompany is a qualified certificate of a natural person
	// issued with their organisation in the subject (O).
	KindQualifiedCompany Kind = "qualified-company"
	// KindQualifiedPersonal is a qualified certificate of a natural person
	// without an organisation: a private person's signature certificate.
	KindQualifiedPersonal Kind = "qualified-personal"
	// KindServer is a TLS server ("technological") certificate: its extended
	// key usage names serverAuth, or it is a qualified website certificate.
	KindServer Kind = "server"
	// KindCommercial is anything else: a commercial (not qualified) personal
	// or client certificate.
	KindCommercial Kind = "commercial"
)

// Kinds lists every kind, for validation and docs.
var Kinds = []Kind{KindQualifiedSeal, KindQualifiedCompany, KindQualifiedPersonal, KindServer, KindCommercial}

// ETSI identifiers (EN 319 412-5 QC statements, EN 319 411-2 policies).
var (
	oidQCStatements   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 3}
	oidQcCompliance   = asn1.ObjectIdentifier{0, 4, 0, 1862, 1, 1}
	oidQcType         = asn1.ObjectIdentifier{0, 4, 0, 1862, 1, 6}
	oidQcTypeESign    = asn1.ObjectIdentifier{0, 4, 0, 1862, 1, 6, 1}
	oidQcTypeESeal    = asn1.ObjectIdentifier{0, 4, 0, 1862, 1, 6, 2}
	oidQcTypeWeb      = asn1.ObjectIdentifier{0, 4, 0, 1862, 1, 6, 3}
	oidPolicyQCPn     = mustOID(0, 4, 0, 194112, 1, 0)
	oidPolicyQCPl     = mustOID(0, 4, 0, 194112, 1, 1)
	oidPolicyQCPnQSCD = mustOID(0, 4, 0, 194112, 1, 2)
	oidPolicyQCPlQSCD = mustOID(0, 4, 0, 194112, 1, 3)
	oidPolicyQCPw     = mustOID(0, 4, 0, 194112, 1, 4)
)

func mustOID(arcs ...uint64) x509.OID {
	oid, err := x509.OIDFromInts(arcs)
	if err != nil {
		panic(err)
	}
	return oid
}

// KindOf classifies cert from its QC statements, certificate policies and
// extended key usage. Being qualified is read from the certificate, not
// verified against the EU trusted lists: that is the vendor's check.
func KindOf(cert *x509.Certificate) Kind {
	qc := readQC(cert)
	switch {
	case qc.legal:
		return KindQualifiedSeal
	case qc.natural && len(cert.Subject.Organization) > 0:
		return KindQualifiedCompany
	case qc.natural:
		return KindQualifiedPersonal
	case qc.web || slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth):
		return KindServer
	}
	return KindCommercial
}

// AllowsClientAuth reports whether cert's extended key usage allows TLS
// client authentication on its own terms (no usage restriction, clientAuth or
// any). Usages Go does not know restrict too, as they do in x509.Verify.
func AllowsClientAuth(cert *x509.Certificate) bool {
	return len(cert.ExtKeyUsage) == 0 && len(cert.UnknownExtKeyUsage) == 0 ||
		slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) || slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageAny)
}

type qcFacts struct{ natural, legal, web bool }

// readQC reads what a qualified certificate says about whom it is for. A
// QcType without QcCompliance does not make a certificate qualified, nor does
// an unparsable statement or QcType: unknown means commercial. The policies of
// EN 319 411-2 (QCP-n, QCP-l, QCP-w and their QSCD forms) are issued for
// qualified certificates only, so one of them says as much as QcCompliance.
func readQC(cert *x509.Certificate) qcFacts {
	var f qcFacts
	compliant := false
	var types []asn1.ObjectIdentifier
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidQCStatements) {
			continue
		}
		var stmts []struct {
			ID   asn1.ObjectIdentifier
			Info asn1.RawValue `asn1:"optional"`
		}
		if rest, err := asn1.Unmarshal(ext.Value, &stmts); err != nil || len(rest) > 0 {
			return qcFacts{}
		}
		for _, s := range stmts {
			switch {
			case s.ID.Equal(oidQcCompliance):
				compliant = true
			case s.ID.Equal(oidQcType):
				var t []asn1.ObjectIdentifier
				if rest, err := asn1.Unmarshal(s.Info.FullBytes, &t); err != nil || len(rest) > 0 || len(t) == 0 {
					return qcFacts{}
				}
				types = append(types, t...)
			}
		}
	}
	has := func(oid asn1.ObjectIdentifier) bool { return slices.ContainsFunc(types, oid.Equal) }
	policy := func(oids ...x509.OID) bool {
		return slices.ContainsFunc(cert.Policies, func(p x509.OID) bool { return slices.ContainsFunc(oids, p.Equal) })
	}
	f.legal = (compliant && has(oidQcTypeESeal)) || policy(oidPolicyQCPl, oidPolicyQCPlQSCD)
	f.web = (compliant && has(oidQcTypeWeb)) || policy(oidPolicyQCPw)
	// A qualified certificate without a QcType is for signatures of a natural person (EN 319 412-5).
	f.natural = !f.legal && !f.web && ((compliant && (has(oidQcTypeESign) || len(types) == 0)) || policy(oidPolicyQCPn, oidPolicyQCPnQSCD))
	return f
}

// QualifiedStatements is the QCStatements extension an issuer puts in a
// qualified certificate of kind k (a seal, a company or a personal
// certificate): QcCompliance and the QcType. The dev PKI and tests issue
// qualified-looking certificates with it; other kinds get no extension.
func QualifiedStatements(k Kind) (pkix.Extension, bool) {
	switch k {
	case KindQualifiedSeal:
		return qcStatements(true, oidQcTypeESeal), true
	case KindQualifiedCompany, KindQualifiedPersonal:
		return qcStatements(true, oidQcTypeESign), true
	}
	return pkix.Extension{}, false
}

func qcStatements(compliant bool, types ...asn1.ObjectIdentifier) pkix.Extension {
	type statement struct {
		ID   asn1.ObjectIdentifier
		Info asn1.RawValue `asn1:"optional"`
	}
	var stmts []statement
	if compliant {
		stmts = append(stmts, statement{ID: oidQcCompliance})
	}
	if len(types) > 0 {
		stmts = append(stmts, statement{ID: oidQcType, Info: asn1.RawValue{FullBytes: mustMarshal(types)}})
	}
	return pkix.Extension{Id: oidQCStatements, Value: mustMarshal(stmts)}
}

// mustMarshal encodes values whose types asn1 always encodes.
func mustMarshal(v any) []byte {
	der, err := asn1.Marshal(v)
	if err != nil {
		panic(err)
	}
	return der
}
