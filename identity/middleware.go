package identity

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/consentgate/consentgate/refusal"
)

type key struct{}

// With returns ctx carrying id. The forward proxy uses it for the requests in a
// tunnel, whose identity is the outer connection's (an app cannot set a context).
func With(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, key{}, id)
}

// From returns the caller's identity; ok is false when none was proven.
func From(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(key{}).(Identity)
	return id, ok
}

// Middleware reads the identity of every request: from the context when the
// listener put its connection's there (ForConnection) or a tunnel put the outer
// connection's, else from a verified chain. Only verified chains count: the
// callbacks listener takes connections without a certificate, and a presented
// but unverified one proves nothing. It never refuses; Require does.
func Middleware(trustDomain string, recheck func([]*x509.Certificate) error, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := From(r.Context()); !ok && r.TLS != nil {
			if ctx := ForConnection(r.Context(), r.TLS, trustDomain, recheck); ctx != r.Context() {
				r = r.WithContext(ctx)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// ForConnection returns ctx carrying the identity cs's verified chain proves,
// or ctx itself when it proves none. The listeners call it once per connection
// (http.Server.ConnContext): every request on the connection has the same
// chain, so none parses the certificate again. recheck, when set, is asked
// about the chain again at every Require: a certificate revoked after the
// handshake stops working on the connections it already has.
func ForConnection(ctx context.Context, cs *tls.ConnectionState, trustDomain string, recheck func([]*x509.Certificate) error) context.Context {
	if len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return ctx
	}
	id, err := Of(cs.PeerCertificates[0], trustDomain)
	if err != nil {
		return ctx
	}
	if recheck != nil {
		chain := cs.VerifiedChains[0]
		id.recheck = func() error { return recheck(chain) }
	}
	return With(ctx, id)
}

// Require is the one check of who may use a route: 401 identity-required
// without a proven identity, 403 role-not-allowed for any role not in roles.
func Require(ctx context.Context, roles ...string) (Identity, *refusal.Refusal) {
	id, ok := From(ctx)
	if !ok {
		return Identity{}, refusal.New(http.StatusUnauthorized, refusal.IdentityRequired, "Client certificate required",
			"a client certificate issued by the consentgate CA, with a consentgate identity, is required")
	}
	if id.recheck != nil {
		if err := id.recheck(); err != nil {
			return Identity{}, refusal.New(http.StatusUnauthorized, refusal.IdentityRequired, "Client certificate no longer valid",
				"the client certificate of this connection may no longer be used: "+err.Error())
		}
	}
	if !slices.Contains(roles, id.Role) {
		return id, refusal.New(http.StatusForbidden, refusal.RoleNotAllowed, "Role not allowed",
			fmt.Sprintf("role %q may not use this route; it is for the %s role", id.Role, strings.Join(roles, " and ")))
	}
	return id, nil
}

// Only serves h to the given roles and answers everyone else with Require's refusal.
func Only(h http.Handler, roles ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ref := Require(r.Context(), roles...); ref != nil {
			ref.Write(w, w.Header().Get("X-Request-Id"))
			return
		}
		h.ServeHTTP(w, r)
	})
}
