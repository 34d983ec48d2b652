package identity

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/refusal"
)

func certWith(uris ...string) *x509.Certificate {
	c := &x509.Certificate{}
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			panic(err)
		}
		c.URIs = append(c.URIs, u)
	}
	return c
}

// Every way a certificate might claim an identity it does not have is refused.
func TestOf(t *testing.T) {
	const td = "consentgate.test"
	for _, tc := range []struct {
		name     string
		uris     []string
		role, id string // empty: refused
	}{
		{"app", []string{"spiffe://consentgate.test/app/bank-onboarding"}, RoleApp, "bank-onboarding"},
		{"auditor", []string{"spiffe://consentgate.test/auditor/jana"}, RoleAuditor, "jana"},
		{"admin", []string{"spiffe://consentgate.test/admin/ops.1"}, RoleAdmin, "ops.1"},
		{"no URI", nil, "", ""},
		{"two SPIFFE ids", []string{"spiffe://consentgate.test/app/a", "spiffe://consentgate.test/admin/b"}, "", ""},
		{"a SPIFFE id beside another URI", []string{"https://example.com/", "spiffe://consentgate.test/admin/b"}, "", ""},
		{"not SPIFFE", []string{"https://consentgate.test/app/a"}, "", ""},
		{"another trust domain", []string{"spiffe://evil.test/app/a"}, "", ""},
		{"a trust domain that ends like ours", []string{"spiffe://xconsentgate.test/app/a"}, "", ""},
		{"unknown role", []string{"spiffe://consentgate.test/root/a"}, "", ""},
		{"role only", []string{"spiffe://consentgate.test/admin"}, "", ""},
		{"extra segment", []string{"spiffe://consentgate.test/app/a/admin"}, "", ""},
		{"dot segment", []string{"spiffe://consentgate.test/app/../admin/a"}, "", ""},
		{"percent-encoded", []string{"spiffe://consentgate.test/app/a%2Fb"}, "", ""},
		{"query", []string{"spiffe://consentgate.test/app/a?role=admin"}, "", ""},
		{"fragment", []string{"spiffe://consentgate.test/app/a#admin"}, "", ""},
		{"port", []string{"spiffe://consentgate.test:443/app/a"}, "", ""},
		{"user info", []string{"spiffe://admin@consentgate.test/app/a"}, "", ""},
		{"upper-case role", []string{"spiffe://consentgate.test/Admin/a"}, "", ""},
		{"name too long", []string{"spiffe://consentgate.test/app/" + strings.Repeat("a", 64)}, "", ""},
		{"name starting with a dot", []string{"spiffe://consentgate.test/app/.a"}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := Of(certWith(tc.uris...), td)
			if tc.role == "" {
				if err == nil || !errors.Is(err, ErrNone) {
					t.Fatalf("accepted as %+v (err %v)", id, err)
				}
				return
			}
			if err != nil || id.Role != tc.role || id.Name != tc.id {
				t.Fatalf("got %+v, %v; want %s/%s", id, err, tc.role, tc.id)
			}
		})
	}
}

// The middleware trusts a verified chain or a tunnel's context, nothing else,
// and Require answers 401 and 403 for the two different things they mean.
func TestMiddlewareAndRequire(t *testing.T) {
	const td = "consentgate.test"
	admin := certWith("spiffe://consentgate.test/admin/ops")
	app := Identity{Role: RoleApp, Name: "tunnelled"}
	for _, tc := range []struct {
		name   string
		tls    *tls.ConnectionState
		ctx    *Identity
		status int
		kind   refusal.Kind
	}{
		{"no TLS", nil, nil, 401, refusal.IdentityRequired},
		{"presented, not verified", &tls.ConnectionState{PeerCertificates: []*x509.Certificate{admin}}, nil, 401, refusal.IdentityRequired},
		{"verified admin", &tls.ConnectionState{PeerCertificates: []*x509.Certificate{admin}, VerifiedChains: [][]*x509.Certificate{{admin}}}, nil, 200, ""},
		{"verified, no identity", &tls.ConnectionState{PeerCertificates: []*x509.Certificate{certWith()}, VerifiedChains: [][]*x509.Certificate{{certWith()}}}, nil, 401, refusal.IdentityRequired},
		{"tunnel's app identity wins over the inner connection", &tls.ConnectionState{PeerCertificates: []*x509.Certificate{admin}, VerifiedChains: [][]*x509.Certificate{{admin}}}, &app, 403, refusal.RoleNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := Middleware(td, nil, Only(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), RoleAdmin, RoleAuditor))
			r := httptest.NewRequest("GET", "/", nil)
			r.TLS = tc.tls
			if tc.ctx != nil {
				r = r.WithContext(With(context.Background(), *tc.ctx))
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if tc.kind != "" && !containsType(rec.Body.String(), tc.kind) {
				t.Errorf("body %s, want kind %s", rec.Body, tc.kind)
			}
		})
	}
}

func containsType(body string, k refusal.Kind) bool {
	return strings.Contains(body, `"type":"`+k.Type()+`"`)
}

// A listener reads a connection's identity once, from its verified chain only.
func TestForConnection(t *testing.T) {
	admin := certWith("spiffe://consentgate.test/admin/ops")
	ctx := context.Background()
	if got := ForConnection(ctx, &tls.ConnectionState{PeerCertificates: []*x509.Certificate{admin}}, "consentgate.test", nil); got != ctx {
		t.Error("a presented, unverified certificate gave the connection an identity")
	}
	if got := ForConnection(ctx, &tls.ConnectionState{}, "consentgate.test", nil); got != ctx {
		t.Error("a connection without a certificate got an identity")
	}
	verified := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{admin}, VerifiedChains: [][]*x509.Certificate{{admin}}}
	if id, ok := From(ForConnection(ctx, verified, "consentgate.test", nil)); !ok || id.Role != RoleAdmin || id.Name != "ops" {
		t.Errorf("verified admin: %+v, %v", id, ok)
	}
	if _, ok := From(ForConnection(ctx, verified, "other.test", nil)); ok {
		t.Error("a certificate of another trust domain gave an identity")
	}
}

// A connection's identity is checked again at every Require: once the recheck
// fails (its certificate was revoked after the handshake), the requests it
// still sends are refused, and so are those a tunnel carries under it.
func TestRequireRechecksTheConnection(t *testing.T) {
	app := certWith("spiffe://consentgate.test/app/web")
	revoked := false
	recheck := func(chain []*x509.Certificate) error {
		if revoked && chain[0] == app {
			return errors.New("certificate revoked")
		}
		return nil
	}
	ctx := ForConnection(context.Background(), &tls.ConnectionState{PeerCertificates: []*x509.Certificate{app},
		VerifiedChains: [][]*x509.Certificate{{app}}}, "consentgate.test", recheck)
	if _, ref := Require(ctx, RoleApp); ref != nil {
		t.Fatalf("before: %v", ref)
	}
	revoked = true
	id, _ := From(ctx)
	for name, c := range map[string]context.Context{"connection": ctx, "tunnel": With(context.Background(), id)} {
		if _, ref := Require(c, RoleApp); ref == nil || ref.Kind != refusal.IdentityRequired || !strings.Contains(ref.Detail, "revoked") {
			t.Errorf("%s after the revocation: %+v", name, ref)
		}
	}
}
