package console

import (
	"errors"
	"net/http"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/identity"
)

// consentsData is the consents page: a search by consent id (GET) or by
// person (POST, hashed at once), and what it found.
type consentsData struct {
	ID       string
	Searched bool
	Consents []consent.Consent
	Revoked  *consent.Consent
	Confirm  *consent.Consent // a revocation asked for, waiting for its confirmation
}

// consents serves GET /console/consents?id= and POST /console/consents
// (subject or subject_hmac).
func (c *console) consents(w http.ResponseWriter, r *http.Request) {
	d := consentsData{ID: r.URL.Query().Get("id")}
	switch {
	case r.Method == http.MethodPost:
		if !c.form(w, r) {
			return
		}
		p, ok := c.subject(w, r)
		if !ok || !c.record(w, r, "consent search", p.record()) {
			return
		}
		list, err := c.o.Consents.BySubjectHMAC(r.Context(), "", p.Subject)
		if err != nil {
			c.fail(w, r, http.StatusServiceUnavailable, "The consent registry could not be read.")
			return
		}
		d.Searched, d.Consents = true, list
	case d.ID != "":
		cs, err := c.o.Consents.Get(r.Context(), d.ID)
		switch {
		case errors.Is(err, consent.ErrNotFound):
		case err != nil:
			c.fail(w, r, http.StatusServiceUnavailable, "The consent registry could not be read.")
			return
		default:
			d.Consents = []consent.Consent{*cs}
		}
		d.Searched = true
	}
	c.render(w, r, "consents.html", "Consents", d)
}

// revoke serves POST /console/consents/{id}/revoke (admins): without
// confirm=yes it shows what would be revoked and asks; with it, it revokes as
// the admin API does (the registry records the withdrawal, plans erasures and
// destroys the consent's token keys), after recording the console's action.
func (c *console) revoke(w http.ResponseWriter, r *http.Request) {
	if !c.form(w, r) {
		return
	}
	id := r.PathValue("id")
	cs, err := c.o.Consents.Get(r.Context(), id)
	if errors.Is(err, consent.ErrNotFound) {
		c.fail(w, r, http.StatusNotFound, "There is no such consent.")
		return
	}
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, "The consent registry could not be read.")
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		c.render(w, r, "consents.html", "Consents", consentsData{Confirm: cs})
		return
	}
	if !c.record(w, r, "consent revoke", audit.Record{ConsentID: id}) {
		return
	}
	who, _ := identity.From(r.Context())
	revoked, err := c.o.Consents.Revoke(r.Context(), who.Name, who.Role, id)
	if err != nil {
		c.o.Logger.Error("consent not revoked", "consent_id", id, "error", err.Error())
		c.fail(w, r, http.StatusServiceUnavailable, "The consent was not revoked: the registry failed. Try again.")
		return
	}
	c.render(w, r, "consents.html", "Consents", consentsData{Revoked: revoked, Consents: []consent.Consent{*revoked}, Searched: true})
}
