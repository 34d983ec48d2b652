package proxy

import (
	"context"
	"crypto/x509"
	"fmt"
	"regexp"
	"strings"
)

// Roles an app certificate can carry (the first path element of its SPIFFE id).
const (
	RoleApp     = "app"
	RoleAuditor = "auditor"
	RoleAdmin   = "admin"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Identity is who is calling, as proven by the TLS client certificate:
// spiffe://<trust domain>/<role>/<name>.
type Identity struct {
	Role string
	Name string
	// URI is the SPIFFE id as written in the certificate.
	URI  string
	Cert *x509.Certificate
}

// identityOf reads the identity of a verified client certificate. It is strict:
// exactly one SPIFFE URI, in our trust domain, with a known role.
func identityOf(cert *x509.Certificate, trustDomain string) (Identity, error) {
	var found []Identity
	for _, u := range cert.URIs {
		if u.Scheme != "spiffe" {
			continue
		}
		if u.Host != trustDomain {
			return Identity{}, fmt.Errorf("%w: trust domain %q is not %q", ErrNoIdentity, u.Host, trustDomain)
		}
		parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
		if len(parts) != 2 || !nameRE.MatchString(parts[1]) || u.RawQuery != "" || u.Fragment != "" {
			return Identity{}, fmt.Errorf("%w: %q is not spiffe://%s/<role>/<name>", ErrNoIdentity, u.String(), trustDomain)
		}
		switch parts[0] {
		case RoleApp, RoleAuditor, RoleAdmin:
		default:
			return Identity{}, fmt.Errorf("%w: role %q is not app, auditor or admin", ErrNoIdentity, parts[0])
		}
		found = append(found, Identity{Role: parts[0], Name: parts[1], URI: u.String(), Cert: cert})
	}
	switch len(found) {
	case 0:
		return Identity{}, fmt.Errorf("%w: no spiffe:// URI SAN", ErrNoIdentity)
	case 1:
		return found[0], nil
	default:
		return Identity{}, fmt.Errorf("%w: more than one spiffe:// URI SAN", ErrNoIdentity)
	}
}

type identityKey struct{}

// WithIdentity returns ctx carrying id, for the stages after the listener.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFrom returns the caller's identity; ok is false when none was proven.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}
