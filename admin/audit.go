package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/identity"
	"github.com/consentgate/consentgate/refusal"
)

// recorded writes the admin record of reading the log (the reader's name and
// role, the action) before the read; when it cannot be written, the read does
// not happen and the answer is 503.
func (a *api) recorded(w http.ResponseWriter, r *http.Request, rec audit.Record, action string) bool {
	id, _ := identity.From(r.Context())
	rec.Kind, rec.App = audit.KindAdmin, id.Name
	if rec.Detail == nil {
		rec.Detail = map[string]string{}
	}
	rec.Detail["action"], rec.Detail["role"] = action, id.Role
	if _, err := a.o.Audit.Append(r.Context(), rec); err != nil {
		refusal.New(http.StatusServiceUnavailable, refusal.AuditUnavailable, "Audit log unavailable", "").Write(w, "")
		return false
	}
	return true
}

func (a *api) auditHead(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(a.o.Audit.Head())
}

func (a *api) auditExport(w http.ResponseWriter, r *http.Request) {
	f, err := exportFilter(r.URL.Query())
	if err != nil {
		refusal.New(http.StatusBadRequest, refusal.BadRequest, "Bad filter", err.Error()).Write(w, "")
		return
	}
	if !a.recorded(w, r, audit.Record{Detail: map[string]string{"filter": r.URL.RawQuery}}, "audit export") {
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	if err := a.o.Audit.Export(r.Context(), w, f); err != nil {
		a.o.Logger.Error("audit export failed mid-stream", "error", err.Error())
	}
}

// subjectHMAC: an auditor searching the log for a person needs the person's
// HMAC under the gateway's subject key, which only the gateway holds. The
// lookup is POSTed (no personal value in a URL) and recorded with its HMAC.
func (a *api) subjectHMAC(w http.ResponseWriter, r *http.Request) {
	var q struct {
		Subject string `json:"subject"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&q); err != nil || q.Subject == "" {
		refusal.New(http.StatusBadRequest, refusal.BadRequest, "Bad request", `the body is {"subject": "<app user id, birth number, IIN or document number>"}`).Write(w, "")
		return
	}
	h, err := a.o.SubjectHMAC(r.Context(), q.Subject)
	if err != nil {
		refusal.New(http.StatusServiceUnavailable, refusal.Credentials, "Key unavailable", "").Write(w, "")
		return
	}
	// The other forms records may name the person by: the consent registry's
	// HMAC of an app user id as the app sent it (not normalised as identifiers
	// are), and both HMACs' forms under link keys (audit.LinkTerms).
	terms, err := a.o.Audit.LinkTerms(h, a.o.Consents.SubjectHMAC(q.Subject))
	if err != nil {
		refusal.New(http.StatusServiceUnavailable, refusal.AuditUnavailable, "Link keys unavailable", "").Write(w, "")
		return
	}
	if !a.recorded(w, r, audit.Record{SubjectHMAC: h}, "subject lookup") {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{"subject_hmac": h, "terms": terms})
}

func (a *api) auditTail(w http.ResponseWriter, r *http.Request) {
	after, err := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
	if err != nil && r.URL.Query().Get("after") != "" {
		refusal.New(http.StatusBadRequest, refusal.BadRequest, "Bad request", "after must be a sequence number").Write(w, "")
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	if _, err := a.o.Audit.Tail(r.Context(), w, after, 1000, 25*time.Second); err != nil {
		a.o.Logger.Warn("audit tail ended early", "error", err.Error())
	}
}

func (a *api) auditSnapshot(w http.ResponseWriter, r *http.Request) {
	if !a.recorded(w, r, audit.Record{}, "audit snapshot") {
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="audit.db"`)
	if _, err := a.o.Audit.Snapshot(w); err != nil {
		a.o.Logger.Error("audit snapshot failed mid-stream", "error", err.Error())
	}
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
