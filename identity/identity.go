package identity

import (
	"crypto/x509"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Roles a certificate can carry (the first path segment of its SPIFFE id).
const (
	RoleApp     = "app"
	RoleAuditor = "auditor"
	RoleAdmin   = "admin"
)

// ErrNone means a certificate carries no consentgate identity.
var ErrNone = errors.New("no consentgate identity")

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Identity is a proven caller.
type Identity struct {
	Role string
	Name string
	// URI is the SPIFFE id as written in the certificate.
	URI  string
	Cert *x509.Certificate
	// recheck, when set, is asked on every use whether the certificate may
	// still be used (a CRL read since the handshake may list it).
	recheck func() error
}

// Of reads the identity of a verified certificate. It is strict, as X509-SVIDs
// are: exactly one URI SAN, a SPIFFE id in trustDomain, a known role and a name.
func Of(cert *x509.Certificate, trustDomain string) (Identity, error) {
	id, err := x509svid.IDFromCert(cert)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrNone, err)
	}
	td, err := spiffeid.TrustDomainFromString(trustDomain)
	if err != nil {
		return Identity{}, fmt.Errorf("trust domain %q: %w", trustDomain, err)
	}
	if !id.MemberOf(td) {
		return Identity{}, fmt.Errorf("%w: trust domain %q is not %q", ErrNone, id.TrustDomain().Name(), td.Name())
	}
	role, name, ok := strings.Cut(strings.TrimPrefix(id.Path(), "/"), "/")
	if !ok || !nameRE.MatchString(name) {
		return Identity{}, fmt.Errorf("%w: %q is not spiffe://%s/<role>/<name>", ErrNone, id.String(), td.Name())
	}
	switch role {
	case RoleApp, RoleAuditor, RoleAdmin:
	default:
		return Identity{}, fmt.Errorf("%w: role %q is not app, auditor or admin", ErrNone, role)
	}
	return Identity{Role: role, Name: name, URI: id.String(), Cert: cert}, nil
}
