package console

import (
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/consent"
)

// personData is a person's page. The person is named only by their HMAC: the
// id typed in is hashed at once and neither kept nor logged; the page's forms
// carry the HMAC, never the id.
type personData struct {
	Subject  string // HMAC
	Consents []personConsent
	Error    string
}

type personConsent struct {
	consent.Consent
	Resources []consent.Resource
	Erasures  []consent.Erasure
}

func (c *console) personForm(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, "person.html", "A person", personData{})
}

// person serves POST /console/person: the person's consents, the vendor
// resources bound to them and where their erasure stands, read from the
// consent registry's indexes (not from the log). The lookup is recorded, with
// the HMAC, before anything is read.
func (c *console) person(w http.ResponseWriter, r *http.Request) {
	if !c.form(w, r) {
		return
	}
	h, ok := c.subject(w, r)
	if !ok || !c.record(w, r, "person lookup", audit.Record{SubjectHMAC: h}) {
		return
	}
	d := personData{Subject: h}
	list, err := c.o.Consents.BySubjectHMAC(r.Context(), "", h)
	if err != nil {
		c.o.Logger.Error("consents not read", "subject_hmac", h, "error", err.Error())
		c.fail(w, r, http.StatusServiceUnavailable, "The consent registry could not be read.")
		return
	}
	for _, cs := range list {
		pc := personConsent{Consent: cs}
		pc.Resources, err = c.o.Consents.Resources(r.Context(), cs.ID)
		if err == nil {
			pc.Erasures, err = c.o.Consents.Erasures(r.Context(), cs.ID)
		}
		if err != nil {
			c.o.Logger.Error("resources not read", "consent_id", cs.ID, "error", err.Error())
			c.fail(w, r, http.StatusServiceUnavailable, "The consent registry could not be read.")
			return
		}
		d.Consents = append(d.Consents, pc)
	}
	c.render(w, r, "person.html", "A person", d)
}

// subject is the HMAC of the form's person: "subject" (an id, hashed here) or
// "subject_hmac" (from the person page's own forms).
func (c *console) subject(w http.ResponseWriter, r *http.Request) (string, bool) {
	if h := r.PostFormValue("subject_hmac"); h != "" {
		if !audit.IsHMAC(h) {
			c.fail(w, r, http.StatusBadRequest, "subject_hmac must be 64 hex digits.")
			return "", false
		}
		return h, true
	}
	id := r.PostFormValue("subject")
	if id == "" {
		c.renderStatus(w, r, http.StatusBadRequest, "person.html", "A person", personData{Error: "Enter an end-user id."})
		return "", false
	}
	h, err := c.o.SubjectHMAC(r.Context(), id)
	if err != nil {
		c.o.Logger.Error("subject key unavailable", "error", err.Error())
		c.fail(w, r, http.StatusServiceUnavailable, "The key that hashes end-user ids is unavailable.")
		return "", false
	}
	return h, true
}

// personReport serves POST /console/person/report: the person's access report
// (GDPR Art. 15), built from the whole log on this node as `consentgate audit
// report --subject` builds it, as JSON to download or a page to print.
func (c *console) personReport(w http.ResponseWriter, r *http.Request) {
	if !c.form(w, r) {
		return
	}
	h, ok := c.subject(w, r)
	if !ok {
		return
	}
	format := r.PostFormValue("format")
	if format != "json" && format != "html" {
		c.fail(w, r, http.StatusBadRequest, "format is json or html.")
		return
	}
	terms, err := c.o.Audit.LinkTerms(h)
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, "The audit log's link keys could not be read.")
		return
	}
	if !c.record(w, r, "access report", audit.Record{SubjectHMAC: h, Detail: map[string]string{"format": format}}) {
		return
	}
	rep, err := accessReport(r.Context(), c.o.Audit, audit.ProcessingOptions{Subject: h, Terms: terms, Erasure: c.o.Erasure()})
	if err != nil {
		c.o.Logger.Error("access report not built", "subject_hmac", h, "error", err.Error())
		c.fail(w, r, http.StatusServiceUnavailable, "The access report could not be built: the audit log did not read or verify.")
		return
	}
	if format == "json" {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Disposition", `attachment; filename="access-report.json"`)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
		return
	}
	c.render(w, r, "report.html", "Access report", rep)
}

// accessReport reads the live log's export through the verifier and the
// report at once: a report is never made from records that do not verify.
func accessReport(ctx context.Context, l *audit.Log, o audit.ProcessingOptions) (audit.ProcessingReport, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(l.Export(ctx, pw, audit.Filter{})) }()
	defer pr.Close()
	vr, vw := io.Pipe()
	verified := make(chan error, 1)
	go func() {
		_, err := audit.Verify(vr, l.PublicKey())
		io.Copy(io.Discard, vr) // what Verify left, so the tee below never waits
		verified <- err
	}()
	rep, err := audit.Processing(io.TeeReader(pr, vw), o)
	vw.CloseWithError(err)
	if verr := <-verified; verr != nil {
		return audit.ProcessingReport{}, verr
	}
	return rep, err
}
