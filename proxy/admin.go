package proxy

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/policy"
)

// AdminOptions are what the admin listener serves.
type AdminOptions struct {
	TrustDomain string
	Consents    *consent.Registry
	Policy      *policy.Engine
	Logger      *slog.Logger
}

// NewAdmin is the admin API: consents (app, auditor and admin roles, each limited
// by the registry) and the policy status. Every route sits behind the same mTLS
// as the gateway; the identity is read from the verified certificate.
func NewAdmin(o AdminOptions) http.Handler {
	identity := func(r *http.Request) (string, string, bool) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			return "", "", false
		}
		id, err := identityOf(r.TLS.PeerCertificates[0], o.TrustDomain)
		if err != nil {
			return "", "", false
		}
		return id.Name, id.Role, true
	}
	mux := http.NewServeMux()
	consents := o.Consents.Handler(identity)
	mux.Handle("/v1/consents", consents)
	mux.Handle("/v1/consents/", consents)
	mux.HandleFunc("GET /v1/policy/status", func(w http.ResponseWriter, r *http.Request) {
		if _, _, ok := identity(r); !ok {
			writeProblem(w, http.StatusUnauthorized, problemForbiddenRole, "Unknown identity", "", "")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(o.Policy.Status())
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, problemNoRoute, "Not found", "admin routes are /v1/consents and /v1/policy/status", "")
	})
	return mux
}
