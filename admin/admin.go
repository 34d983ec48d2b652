package admin

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/identity"
	"github.com/consentgate/consentgate/policy"
	"github.com/consentgate/consentgate/refusal"
	"github.com/consentgate/consentgate/tokens"
	"github.com/google/uuid"
)

// Options are what the admin listener serves.
type Options struct {
	Consents *consent.Registry
	Policy   *policy.Engine
	Audit    *audit.Log
	// Metrics serves /metrics (Prometheus); nil leaves the route out.
	Metrics http.Handler
	Logger  *slog.Logger
	// OAuthStart serves GET /v1/oauth/{vendor}/start (oauth.Broker.Start); nil
	// leaves the route out.
	OAuthStart http.HandlerFunc
	// ImportResource serves POST /v1/resources (proxy.Gateway.ImportResource); nil
	// leaves the route out.
	ImportResource http.HandlerFunc
	// SubjectHMAC hashes a person's identifier as the audit log does
	// (proxy.Gateway.SubjectHMAC), for POST /v1/audit/subject-hmac; nil leaves it out.
	SubjectHMAC func(ctx context.Context, value string) (string, error)
	// Tokens is the token vault, for POST /v1/tokens/reveal; nil leaves the
	// route out.
	Tokens *tokens.Vault
	// Certificates lists the certificates in use, for GET /v1/certificates
	// (`consentgate certs status`); nil leaves the route out.
	Certificates func(ctx context.Context) []certs.InUse
	// Console serves /console/ (package console); nil leaves it out.
	Console http.Handler
	// Ready are further readiness checks (secrets fresh, certificates valid).
	// Each names what is wrong without any secret; the first failure answers 503.
	Ready []ReadyCheck
}

// ReadyCheck is one readiness condition: Name is what /readyz reports when
// Check fails, with the error's text as the detail.
type ReadyCheck struct {
	Name  string
	Check func() error
}

// New is the admin API: consents (app, auditor and admin roles, each limited
// by the registry), the policy status, metrics, readiness and the audit log.
// Every route sits behind the same mTLS as the gateway; identity.Middleware
// (on every listener) proved the caller, and each route says which roles it
// is for.
func New(o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	a := &api{o: o}
	mux := http.NewServeMux()
	consents := o.Consents.Handler()
	mux.Handle("/v1/consents", consents)
	mux.Handle("/v1/consents/", consents)
	// A route asked with a method it does not take is 405 with Allow, not the
	// catch-all's 404; the caller must still be proven.
	allowed := map[string][]string{}
	handle := func(pattern string, h http.Handler) {
		method, path, _ := strings.Cut(pattern, " ")
		mux.Handle(pattern, h)
		if allowed[path] == nil {
			mux.Handle(path, identity.Only(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				refusal.WrongMethod(w, r, strings.Join(allowed[path], ", "))
			}), identity.RoleApp, identity.RoleAuditor, identity.RoleAdmin))
		}
		if method == http.MethodGet {
			allowed[path] = append(allowed[path], http.MethodGet, http.MethodHead)
		} else {
			allowed[path] = append(allowed[path], method)
		}
	}
	handleFunc := func(pattern string, h http.HandlerFunc) { handle(pattern, h) }
	handle("GET /v1/policy/status", operators(a.policyStatus))
	if o.Metrics != nil {
		handle("GET /metrics", identity.Only(o.Metrics, identity.RoleAuditor, identity.RoleAdmin))
	}
	if o.OAuthStart != nil {
		handleFunc("GET /v1/oauth/{vendor}/start", o.OAuthStart)
	}
	if o.ImportResource != nil {
		handleFunc("POST /v1/resources", o.ImportResource)
	}
	handleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	handleFunc("GET /readyz", a.readyz)
	handle("GET /v1/audit/head", operators(a.auditHead))
	handle("GET /v1/audit/export", operators(a.auditExport))
	if o.SubjectHMAC != nil {
		handle("POST /v1/audit/subject-hmac", operators(a.subjectHMAC))
	}
	if o.Certificates != nil {
		handle("GET /v1/certificates", operators(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			json.NewEncoder(w).Encode(o.Certificates(r.Context()))
		}))
	}
	if o.Tokens != nil {
		handle("POST /v1/tokens/reveal", identity.Only(http.HandlerFunc(a.revealToken), identity.RoleAdmin))
		handle("GET /v1/tokens", operators(a.listTokens))
	}
	handle("POST /v1/subjects/erase", identity.Only(http.HandlerFunc(a.eraseSubject), identity.RoleAdmin))
	handle("GET /v1/audit/tail", operators(a.auditTail))
	handle("GET /v1/audit/snapshot", operators(a.auditSnapshot))
	if o.Console != nil {
		mux.Handle("/console/", o.Console)
	}
	// Any other path or method: not found, but only to a proven caller.
	mux.Handle("/", identity.Only(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refusal.New(http.StatusNotFound, refusal.NoRoute, "Not found", "admin routes are /v1/consents, /v1/oauth/{vendor}/start, /v1/policy/status, /v1/certificates, /v1/tokens, /v1/tokens/reveal, /v1/subjects/erase, /v1/audit/{head,export,tail,snapshot}, /console/, /healthz, /readyz").Write(w, "")
	}), identity.RoleApp, identity.RoleAuditor, identity.RoleAdmin))
	// Every answer carries a request id, as the gateway's do; problem+json
	// bodies repeat it.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", uuid.NewString())
		mux.ServeHTTP(w, r)
	})
}

type api struct{ o Options }

// operators are the auditor and admin roles: the policy in service, the
// metrics and the audit log are theirs, not every certificate's of the trust
// domain.
func operators(h http.HandlerFunc) http.Handler {
	return identity.Only(h, identity.RoleAuditor, identity.RoleAdmin)
}

func (a *api) policyStatus(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(a.o.Policy.Status())
}

// readyz: ready means calls can be decided and recorded.
func (a *api) readyz(w http.ResponseWriter, r *http.Request) {
	if err := a.o.Audit.Healthy(); err != nil {
		refusal.New(http.StatusServiceUnavailable, refusal.AuditUnavailable, "Not ready", "the audit log cannot be written").Write(w, "")
		return
	}
	for _, c := range a.o.Ready {
		if err := c.Check(); err != nil {
			refusal.New(http.StatusServiceUnavailable, refusal.NotReady, "Not ready", c.Name+": "+err.Error()).Write(w, "")
			return
		}
	}
	w.Write([]byte("ready\n"))
}
