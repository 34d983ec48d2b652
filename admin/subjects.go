package admin

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/identity"
	"github.com/consentgate/consentgate/refusal"
)

// eraseSubject serves POST /v1/subjects/erase (admin role): every consent of
// one end user is withdrawn, whichever app holds it, which destroys their
// token data keys and plans their erasures at vendors. The request is
// recorded first (subject HMAC and reason): no record, nothing revoked. Each
// revocation then has its own consent record.
func (a *api) eraseSubject(w http.ResponseWriter, r *http.Request) {
	subject, reason, ok := readWithReason(w, r, "subject", "<the app user id>")
	if !ok {
		return
	}
	h := a.o.Consents.SubjectHMAC(subject)
	if !a.recorded(w, r, audit.Record{SubjectHMAC: h, Detail: map[string]string{"reason": reason}}, "subject erasure") {
		return
	}
	id, _ := identity.From(r.Context())
	revoked, err := a.o.Consents.EraseSubject(r.Context(), id.Name, subject)
	ids := make([]string, 0, len(revoked))
	for _, c := range revoked {
		ids = append(ids, c.ID)
	}
	if err != nil {
		a.o.Logger.Error("subject erasure failed part way: run it again to finish", "subject_hmac", h, "revoked", len(ids), "error", err.Error())
		refusal.New(http.StatusServiceUnavailable, refusal.ConsentStore, "Consent registry unavailable",
			strconv.Itoa(len(ids))+" consents were withdrawn before the registry failed; send the same request again to finish").Write(w, "")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{"subject_hmac": h, "revoked": ids})
}
