package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/identity"
	"github.com/consentgate/consentgate/policy"
	"github.com/consentgate/consentgate/refusal"
)

// Options are what the admin listener serves.
type Options struct {
	Consents *consent.Registry
	Policy   *policy.Engine
	Audit    *audit.Log
	// Metrics serves /metrics (Prometheus); nil leaves the route out.
	Metrics http.Handler
	Logger  *slog.Logger
	// OAuthStart serves GET /v1/oauth/{vendor}/start (proxy.Gateway.OAuthStart); nil
	// leaves the route out.
	OAuthStart http.HandlerFunc
	// ImportResource serves POST /v1/resources (proxy.Gateway.ImportResource); nil
	// leaves the route out.
	ImportResource http.HandlerFunc
	// SubjectHMAC hashes a person's identifier as the audit log does
	// (proxy.Gateway.SubjectHMAC), for POST /v1/audit/subject-hmac; nil leaves it out.
	SubjectHMAC func(ctx context.Context, value string) (string, error)
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
// by the registry) and the policy status. Every route sits behind the same mTLS
// as the gateway; identity.Middleware (on every listener) proved the caller.
func New(o Options) http.Handler {
	mux := http.NewServeMux()
	consents := o.Consents.Handler()
	mux.Handle("/v1/consents", consents)
	mux.Handle("/v1/consents/", consents)
	// Operators' figures (the policy in service, the metrics): for the auditor
	// and admin roles, not for every certificate of the trust domain.
	operators := func(h http.Handler) http.Handler { return identity.Only(h, identity.RoleAuditor, identity.RoleAdmin) }
	mux.Handle("GET /v1/policy/status", operators(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(o.Policy.Status())
	})))
	if o.Metrics != nil {
		mux.Handle("GET /metrics", operators(o.Metrics))
	}
	if o.OAuthStart != nil {
		mux.HandleFunc("GET /v1/oauth/{vendor}/start", o.OAuthStart)
	}
	if o.ImportResource != nil {
		mux.HandleFunc("POST /v1/resources", o.ImportResource)
	}
	// Liveness and readiness: ready means calls can be decided and recorded.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := o.Audit.Healthy(); err != nil {
			refusal.New(http.StatusServiceUnavailable, refusal.AuditUnavailable, "Not ready", "the audit log cannot be written").Write(w, "")
			return
		}
		for _, c := range o.Ready {
			if err := c.Check(); err != nil {
				refusal.New(http.StatusServiceUnavailable, refusal.NotReady, "Not ready", c.Name+": "+err.Error()).Write(w, "")
				return
			}
		}
		w.Write([]byte("ready\n"))
	})
	// The audit log is for the auditor and admin roles; reading it is itself
	// recorded under the reader's name and role.
	auditorOnly := func(h func(w http.ResponseWriter, r *http.Request, name, role string)) http.Handler {
		return operators(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, _ := identity.From(r.Context())
			h(w, r, id.Name, id.Role)
		}))
	}
	mux.Handle("GET /v1/audit/head", auditorOnly(func(w http.ResponseWriter, r *http.Request, _, _ string) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(o.Audit.Head())
	}))
	mux.Handle("GET /v1/audit/export", auditorOnly(func(w http.ResponseWriter, r *http.Request, name, role string) {
		f, err := exportFilter(r.URL.Query())
		if err != nil {
			refusal.New(http.StatusBadRequest, refusal.BadRequest, "Bad filter", err.Error()).Write(w, "")
			return
		}
		// Reading the log is itself an admin action the log records.
		if _, err := o.Audit.Append(r.Context(), audit.Record{Kind: audit.KindAdmin, App: name,
			Detail: map[string]string{"action": "audit export", "role": role, "filter": r.URL.RawQuery}}); err != nil {
			refusal.New(http.StatusServiceUnavailable, refusal.AuditUnavailable, "Audit log unavailable", "").Write(w, "")
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		if err := o.Audit.Export(r.Context(), w, f); err != nil && o.Logger != nil {
			o.Logger.Error("audit export failed mid-stream", "error", err.Error())
		}
	}))
	// An auditor searching the log for a person needs the person's HMAC under
	// the gateway's subject key, which only the gateway holds. The lookup is
	// POSTed (no personal value in a URL) and recorded with its HMAC.
	if o.SubjectHMAC != nil {
		mux.Handle("POST /v1/audit/subject-hmac", auditorOnly(func(w http.ResponseWriter, r *http.Request, name, role string) {
			var q struct {
				Subject string `json:"subject"`
			}
			if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&q); err != nil || q.Subject == "" {
				refusal.New(http.StatusBadRequest, refusal.BadRequest, "Bad request", `the body is {"subject": "<app user id, birth number, IIN or document number>"}`).Write(w, "")
				return
			}
			h, err := o.SubjectHMAC(r.Context(), q.Subject)
			if err != nil {
				refusal.New(http.StatusServiceUnavailable, refusal.Credentials, "Key unavailable", "").Write(w, "")
				return
			}
			if _, err := o.Audit.Append(r.Context(), audit.Record{Kind: audit.KindAdmin, App: name, SubjectHMAC: h,
				Detail: map[string]string{"action": "subject lookup", "role": role}}); err != nil {
				refusal.New(http.StatusServiceUnavailable, refusal.AuditUnavailable, "Audit log unavailable", "").Write(w, "")
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			json.NewEncoder(w).Encode(map[string]string{"subject_hmac": h})
		}))
	}
	mux.Handle("GET /v1/audit/tail", auditorOnly(func(w http.ResponseWriter, r *http.Request, _, _ string) {
		after, err := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
		if err != nil && r.URL.Query().Get("after") != "" {
			refusal.New(http.StatusBadRequest, refusal.BadRequest, "Bad request", "after must be a sequence number").Write(w, "")
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		if _, err := o.Audit.Tail(r.Context(), w, after, 1000, 25*time.Second); err != nil && o.Logger != nil {
			o.Logger.Warn("audit tail ended early", "error", err.Error())
		}
	}))
	mux.Handle("GET /v1/audit/snapshot", auditorOnly(func(w http.ResponseWriter, r *http.Request, name, role string) {
		if _, err := o.Audit.Append(r.Context(), audit.Record{Kind: audit.KindAdmin, App: name,
			Detail: map[string]string{"action": "audit snapshot", "role": role}}); err != nil {
			refusal.New(http.StatusServiceUnavailable, refusal.AuditUnavailable, "Audit log unavailable", "").Write(w, "")
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="audit.db"`)
		if _, err := o.Audit.Snapshot(w); err != nil && o.Logger != nil {
			o.Logger.Error("audit snapshot failed mid-stream", "error", err.Error())
		}
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		refusal.New(http.StatusNotFound, refusal.NoRoute, "Not found", "admin routes are /v1/consents, /v1/oauth/{vendor}/start, /v1/policy/status, /v1/audit/{head,export,tail,snapshot}, /healthz, /readyz").Write(w, "")
	})
	return mux
}

// exportFilter reads the export filters of a query string.
func exportFilter(q url.Values) (audit.Filter, error) {
	f := audit.Filter{Vendor: q.Get("vendor"), App: q.Get("app"), Purpose: q.Get("purpose"), Consent: q.Get("consent")}
	for name, dst := range map[string]*time.Time{"from": &f.From, "to": &f.To} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return f, fmt.Errorf("%s must be an RFC 3339 time", name)
			}
			*dst = t
		}
	}
	return f, nil
}
