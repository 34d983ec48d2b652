package identity

import (
	"context"
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

// Middleware reads the identity of every request once: from the context when a
// tunnel put it there, else from a verified chain. Only verified chains count:
// the callbacks listener takes connections without a certificate, and a
// presented but unverified one proves nothing. It never refuses; Require does.
func Middleware(trustDomain string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := From(r.Context()); !ok && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
			if id, err := Of(r.TLS.PeerCertificates[0], trustDomain); err == nil {
				r = r.WithContext(With(r.Context(), id))
			}
		}
		next.ServeHTTP(w, r)
	})
}

// Require is the one check of who may use a route: 401 identity-required
// without a proven identity, 403 role-not-allowed for any role not in roles.
func Require(ctx context.Context, roles ...string) (Identity, *refusal.Refusal) {
	id, ok := From(ctx)
	if !ok {
		return Identity{}, refusal.New(http.StatusUnauthorized, refusal.IdentityRequired, "Client certificate required",
			"a client certificate issued by the consentgate CA, with a consentgate identity, is required")
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
