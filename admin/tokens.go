package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/refusal"
	"github.com/consentgate/consentgate/tokens"
)

// maxReason bounds the reason an admin gives for a reveal: a sentence and a
// ticket number, recorded in the audit log (so never personal data).
const maxReason = 300

// readWithReason reads an admin action's body, {"<field>": "...", "reason":
// "..."}, both required, the reason at most maxReason bytes; on a bad body it
// answers 400 and returns false. what describes the field's value.
func readWithReason(w http.ResponseWriter, r *http.Request, field, what string) (value, reason string, ok bool) {
	var q map[string]string
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&q)
	value, reason = q[field], strings.TrimSpace(q["reason"])
	if err != nil || value == "" || reason == "" || len(reason) > maxReason {
		refusal.New(http.StatusBadRequest, refusal.BadRequest, "Bad request", fmt.Sprintf(
			`the body is {%q: %q, "reason": "<why, at most %d characters, no personal data: it is recorded>"}`, field, what, maxReason)).Write(w, "")
		return "", "", false
	}
	return value, reason, true
}

// revealToken serves POST /v1/tokens/reveal (admin role): one token's value,
// for a person, with a reason. The record comes first: no record, no value.
func (a *api) revealToken(w http.ResponseWriter, r *http.Request) {
	token, reason, ok := readWithReason(w, r, "token", "<token>")
	if !ok {
		return
	}
	value, b, err := a.o.Tokens.RevealToAdmin(r.Context(), token)
	switch {
	case errors.Is(err, tokens.ErrUnknown) || errors.Is(err, tokens.ErrShredded):
		refusal.New(http.StatusNotFound, refusal.NotFound, "No such token",
			"no token of that value, or its consent was withdrawn or has expired and its values are destroyed").Write(w, "")
		return
	case err != nil:
		a.o.Logger.Error("token vault unavailable", "error", err.Error())
		refusal.New(http.StatusServiceUnavailable, refusal.TokenVault, "Token vault unavailable", "").Write(w, "")
		return
	}
	rec := audit.Record{ConsentID: b.ConsentID, SubjectHMAC: b.Subject, Vendor: b.Vendor, Detail: map[string]string{
		"token_id": a.o.Tokens.ID(token), "field": b.Field, "category": b.Category, "token_app": b.App, "reason": reason}}
	if !a.recorded(w, r, rec, "token revealed") {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]string{"value": value, "consent_id": b.ConsentID, "app": b.App,
		"vendor": b.Vendor, "field": b.Field, "category": b.Category})
}

// listTokens serves GET /v1/tokens?consent=ID (auditor, admin): the consent's
// tokens by id and binding, never a token or a value.
func (a *api) listTokens(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("consent")
	if id == "" {
		refusal.New(http.StatusBadRequest, refusal.BadRequest, "Bad request", "name the consent: ?consent=ID").Write(w, "")
		return
	}
	list, err := a.o.Consents.TokensOf(r.Context(), id)
	switch {
	case errors.Is(err, consent.ErrNotFound):
		refusal.New(http.StatusNotFound, refusal.NotFound, "No such consent", "").Write(w, "")
		return
	case err != nil:
		a.o.Logger.Error("listing tokens failed", "error", err.Error())
		refusal.New(http.StatusServiceUnavailable, refusal.ConsentStore, "Consent registry unavailable", "").Write(w, "")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(list)
}
