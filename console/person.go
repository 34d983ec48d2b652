package console

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/tokens"
)

// personData is a person's page. The person is named only by their HMACs: the
// id typed in is hashed at once and neither kept nor logged; the page's forms
// carry the HMACs, never the id.
type personData struct {
	Person   person
	Consents []personConsent
}

// person is one end user as the console holds them between pages: the
// consent registry's HMAC of the id as typed (what consents, and the records
// of calls under them, name), and the gateway's HMAC of the id normalised as
// identifiers are (what records name a birth number or document number by).
type person struct {
	Subject, Identifier string
}

type personConsent struct {
	consent.Consent
	Resources []consent.Resource
	Erasures  []consent.Erasure
	Tokens    []tokens.Entry // ids and bindings, never a token or a value
}

func (c *console) personForm(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, "person.html", "A person", personData{})
}

// person serves POST /console/person: the person's consents, the vendor
// resources bound to them and where their erasure stands, read from the
// consent registry's indexes (not from the log). The lookup is recorded, with
// the HMACs, before anything is read.
func (c *console) person(w http.ResponseWriter, r *http.Request) {
	if !c.form(w, r) {
		return
	}
	p, ok := c.subject(w, r)
	if !ok || !c.record(w, r, "person lookup", p.record()) {
		return
	}
	d := personData{Person: p}
	list, err := c.o.Consents.BySubjectHMAC(r.Context(), "", p.Subject)
	if err != nil {
		c.o.Logger.Error("consents not read", "subject_hmac", p.Subject, "error", err.Error())
		c.fail(w, r, http.StatusServiceUnavailable, "The consent registry could not be read.")
		return
	}
	for _, cs := range list {
		pc := personConsent{Consent: cs}
		pc.Resources, err = c.o.Consents.Resources(r.Context(), cs.ID)
		if err == nil {
			pc.Erasures, err = c.o.Consents.Erasures(r.Context(), cs.ID)
		}
		if err == nil {
			pc.Tokens, err = c.o.Consents.TokensOf(r.Context(), cs.ID)
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

// record is what the audit record of a lookup names of p: HMACs only.
func (p person) record() audit.Record {
	rec := audit.Record{SubjectHMAC: p.Subject}
	if p.Identifier != p.Subject {
		rec.Identifiers = []string{p.Identifier}
	}
	return rec
}

// subject is the form's person: "subject" (an id, hashed here) or
// "subject_hmac" and "identifier_hmac" (from the person page's own forms).
func (c *console) subject(w http.ResponseWriter, r *http.Request) (person, bool) {
	if h := r.PostFormValue("subject_hmac"); h != "" {
		p := person{Subject: h, Identifier: r.PostFormValue("identifier_hmac")}
		if !audit.IsHMAC(p.Subject) || !audit.IsHMAC(p.Identifier) {
			c.fail(w, r, http.StatusBadRequest, "subject_hmac and identifier_hmac are 64 hex digits each.")
			return person{}, false
		}
		return p, true
	}
	id := r.PostFormValue("subject")
	if id == "" {
		c.fail(w, r, http.StatusBadRequest, "Enter an end-user id.")
		return person{}, false
	}
	h, err := c.o.SubjectHMAC(r.Context(), id)
	if err != nil {
		c.o.Logger.Error("subject key unavailable", "error", err.Error())
		c.fail(w, r, http.StatusServiceUnavailable, "The key that hashes end-user ids is unavailable.")
		return person{}, false
	}
	return person{Subject: c.o.Consents.SubjectHMAC(id), Identifier: h}, true
}

// personReport serves POST /console/person/report: the person's access report
// (GDPR Art. 15), built from the whole log on this node as `consentgate audit
// report --subject` builds it, as JSON to download or a page to print.
func (c *console) personReport(w http.ResponseWriter, r *http.Request) {
	if !c.form(w, r) {
		return
	}
	p, ok := c.subject(w, r)
	if !ok {
		return
	}
	format := r.PostFormValue("format")
	if format != "json" && format != "html" {
		c.fail(w, r, http.StatusBadRequest, "format is json or html.")
		return
	}
	terms, err := c.o.Audit.LinkTerms(p.Subject, p.Identifier)
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, "The audit log's link keys could not be read.")
		return
	}
	release, ok := c.acquire(w, r, c.reading, busyReading)
	if !ok {
		return
	}
	defer release()
	rec := p.record()
	rec.Detail = map[string]string{"format": format}
	if !c.record(w, r, "access report", rec) {
		return
	}
	archived, cleanup, err := c.archived(r.Context())
	defer cleanup()
	if err != nil {
		c.o.Logger.Error("archived audit segments not read", "error", err.Error())
		c.fail(w, r, http.StatusServiceUnavailable, "The audit archive could not be read, so the access report would miss its history.")
		return
	}
	rep, err := accessReport(r.Context(), c.o.Audit, archived, audit.ProcessingOptions{Subject: p.Subject, Terms: terms, Erasure: c.o.Erasure()})
	if err != nil {
		c.o.Logger.Error("access report not built", "subject_hmac", p.Subject, "error", err.Error())
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

// archived are the log's archived segments, as files in a temporary folder
// that cleanup removes (none without an archive).
func (c *console) archived(ctx context.Context) (paths []string, cleanup func(), err error) {
	cleanup = func() {}
	if c.o.Archived == nil {
		return nil, cleanup, nil
	}
	first, err := c.o.Audit.OldestOnNode()
	if err != nil {
		return nil, cleanup, err
	}
	tmp, err := os.MkdirTemp("", "consentgate-report-")
	if err != nil {
		return nil, cleanup, err
	}
	cleanup = func() { os.RemoveAll(tmp) }
	paths, err = c.o.Archived(ctx, first, tmp)
	return paths, cleanup, err
}

// accessReport is the access report of the live log, read through the
// verifier: a report is never made from records that do not verify.
func accessReport(ctx context.Context, l *audit.Log, archived []string, o audit.ProcessingOptions) (audit.ProcessingReport, error) {
	var rep audit.ProcessingReport
	verified, err := readVerified(ctx, l, archived, func(r io.Reader) error {
		var err error
		rep, err = audit.Processing(r, o)
		return err
	})
	if err != nil {
		return audit.ProcessingReport{}, err
	}
	if verified.Start > 1 {
		rep.Start = verified.Start
	}
	return rep, nil
}
