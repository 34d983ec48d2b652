package audit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// ProcessingReport summarises, for a period, what was disclosed to which
// recipient (vendor) for which purpose and app: the facts a GDPR Art. 30 record
// of processing needs. It is computed from outcome and consent records. For one
// person (ProcessingOptions.Subject) it also says where the erasure of each of
// their withdrawn consents stands.
type ProcessingReport struct {
	// From and To are the period asked for; First and Last the times of the
	// first and last record counted in it.
	From  time.Time `json:"from,omitzero"`
	To    time.Time `json:"to,omitzero"`
	First time.Time `json:"first,omitzero"`
	Last  time.Time `json:"last,omitzero"`
	// Subject is the person's HMAC when the report is about one person.
	Subject string `json:"subject_hmac,omitempty"`
	// Unverified says the records were not verified against the public key.
	Unverified bool `json:"unverified,omitempty"`
	// Start, when above 1, is the first record read: the history before it
	// was archived (or deleted) and is not in this report.
	Start      uint64           `json:"start,omitempty"`
	Rows       []ProcessingRow  `json:"rows"`
	Recipients []Recipient      `json:"recipients"`
	Consents   []SubjectConsent `json:"consents,omitempty"`
}

// ProcessingRow is one purpose × vendor × app.
type ProcessingRow struct {
	Purpose    string   `json:"purpose"`
	Vendor     string   `json:"vendor"`
	App        string   `json:"app"`
	Categories []string `json:"categories"`
	// Disclosures are allowed calls the vendor answered with 2xx that sent or
	// returned personal data; NoPersonalData the same that carried only
	// metadata (ids, statuses); Denials are calls the policy refused; Other are
	// the rest (vendor errors, refusals before a decision).
	Disclosures    int `json:"disclosures"`
	NoPersonalData int `json:"no_personal_data"`
	Denials        int `json:"denials"`
	Other          int `json:"other"`
}

// Recipient is one vendor personal data was transferred to, and how an end
// user's data is erased there.
type Recipient struct {
	Vendor      string   `json:"vendor"`
	Purposes    []string `json:"purposes"`
	Disclosures int      `json:"disclosures"`
	Erasure     string   `json:"erasure,omitempty"`
}

// SubjectConsent is one of the person's consents as the log tells it.
type SubjectConsent struct {
	ID        string    `json:"id"`
	App       string    `json:"app"`
	Vendors   []string  `json:"vendors"`
	Status    string    `json:"status"` // active, or revoked
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	// Erasures are the erasure calls made after the withdrawal, per vendor:
	// done (the vendor confirmed), or failing (attempts so far, none confirmed).
	Erasures []SubjectErasure `json:"erasures,omitempty"`
}

// SubjectErasure is where a withdrawn consent's erasure at one vendor stands.
type SubjectErasure struct {
	Vendor   string `json:"vendor"`
	Status   string `json:"status"` // done, failing, or unavailable
	Attempts int    `json:"attempts"`
	Reason   string `json:"reason,omitempty"`
}

// ProcessingOptions narrow a report.
type ProcessingOptions struct {
	// From ≤ time < To; zero bounds are open.
	From, To time.Time
	// Subject, an HMAC as HMAC makes it, limits the report to one person; Terms
	// are its other forms in a log with link keys (LinkTerms).
	Subject string
	Terms   []string
	// Erasure maps a vendor to how an end user's data is erased there (the
	// profile's erasure operation, or why there is none).
	Erasure map[string]string
}

// processing accumulates a report while an export is read.
type processing struct {
	o     ProcessingOptions
	terms map[string]bool // Subject and Terms
	rep   ProcessingReport
	rows  map[[3]string]*ProcessingRow
	cats  map[[3]string]map[string]bool
	// consents of the subject, by id, in the order first seen.
	consents map[string]*SubjectConsent
	order    []string
}

// Processing reads an export (full or partial) and builds the report.
func Processing(r io.Reader, o ProcessingOptions) (ProcessingReport, error) {
	p := &processing{o: o, rep: ProcessingReport{From: o.From, To: o.To, Subject: o.Subject},
		rows: map[[3]string]*ProcessingRow{}, cats: map[[3]string]map[string]bool{}, consents: map[string]*SubjectConsent{},
		terms: map[string]bool{o.Subject: true}}
	for _, t := range o.Terms {
		p.terms[t] = true
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		var rec Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return p.rep, fmt.Errorf("export line %d: %w", line, err)
		}
		if p.counts(&rec) {
			p.add(&rec)
		}
	}
	if err := sc.Err(); err != nil {
		return p.rep, fmt.Errorf("reading export: %w", err)
	}
	return p.finish(), nil
}

// counts reports whether rec is in the report's period and about its person.
func (p *processing) counts(rec *Record) bool {
	if (rec.Kind != KindOutcome && rec.Kind != KindConsent) || rec.Vendor == "" && rec.Kind == KindOutcome ||
		(!p.o.From.IsZero() && rec.Time.Before(p.o.From)) || (!p.o.To.IsZero() && !rec.Time.Before(p.o.To)) {
		return false
	}
	if p.o.Subject == "" {
		return true
	}
	return p.isSubject(rec.SubjectHMAC) || slices.ContainsFunc(rec.Identifiers, p.isSubject)
}

// isSubject reports whether h is the person's HMAC, or one of its forms under link
// keys (ProcessingOptions.Terms).
func (p *processing) isSubject(h string) bool {
	return h != "" && p.terms[h]
}

func (p *processing) add(rec *Record) {
	if p.rep.First.IsZero() || rec.Time.Before(p.rep.First) {
		p.rep.First = rec.Time
	}
	if rec.Time.After(p.rep.Last) {
		p.rep.Last = rec.Time
	}
	if rec.Kind == KindConsent {
		p.consent(rec)
		return
	}
	if rec.Detail["initiator"] == "erasure" {
		p.erasure(rec)
	}
	k := [3]string{rec.Purpose, rec.Vendor, rec.App}
	row := p.rows[k]
	if row == nil {
		row = &ProcessingRow{Purpose: rec.Purpose, Vendor: rec.Vendor, App: rec.App}
		p.rows[k], p.cats[k] = row, map[string]bool{}
	}
	switch {
	case rec.Allow != nil && !*rec.Allow && rec.Detail["would_deny"] == "":
		row.Denials++
	case rec.Allow != nil && rec.Status >= 200 && rec.Status < 300 && rec.Detail["categories"] != "":
		row.Disclosures++
		for _, c := range strings.Split(rec.Detail["categories"], ",") {
			p.cats[k][c] = true
		}
	case rec.Allow != nil && rec.Status >= 200 && rec.Status < 300:
		row.NoPersonalData++
	default:
		row.Other++
	}
}

// consent follows the person's consents through their change records.
func (p *processing) consent(rec *Record) {
	if p.o.Subject == "" {
		return
	}
	c := p.consents[rec.ConsentID]
	if c == nil {
		c = &SubjectConsent{ID: rec.ConsentID, App: rec.App, Status: "active"}
		p.consents[rec.ConsentID] = c
		p.order = append(p.order, rec.ConsentID)
	}
	if v := rec.Detail["vendors"]; v != "" {
		c.Vendors = strings.Split(v, ",")
	}
	if rec.Detail["change"] == "revoked" {
		c.Status, c.RevokedAt = "revoked", rec.Time
	}
}

// erasure counts an erasure call of the outbox against its consent.
func (p *processing) erasure(rec *Record) {
	c := p.consents[rec.ConsentID]
	if c == nil {
		return
	}
	i := slices.IndexFunc(c.Erasures, func(e SubjectErasure) bool { return e.Vendor == rec.Vendor })
	if i < 0 {
		c.Erasures = append(c.Erasures, SubjectErasure{Vendor: rec.Vendor, Status: "failing"})
		i = len(c.Erasures) - 1
	}
	e := &c.Erasures[i]
	e.Attempts++
	if e.Status != "done" {
		if rec.Status/100 == 2 || (rec.Status == 404 && rec.Error == "") {
			e.Status, e.Reason = "done", ""
		} else {
			e.Reason = fmt.Sprintf("status %d %s", rec.Status, rec.Error)
		}
	}
}

func (p *processing) finish() ProcessingReport {
	recipients := map[string]*Recipient{}
	for k, row := range p.rows {
		row.Categories = slices.Sorted(maps.Keys(p.cats[k]))
		p.rep.Rows = append(p.rep.Rows, *row)
		if row.Disclosures == 0 {
			continue
		}
		r := recipients[row.Vendor]
		if r == nil {
			r = &Recipient{Vendor: row.Vendor, Erasure: p.o.Erasure[row.Vendor]}
			recipients[row.Vendor] = r
		}
		r.Disclosures += row.Disclosures
		if !slices.Contains(r.Purposes, row.Purpose) {
			r.Purposes = append(r.Purposes, row.Purpose)
		}
	}
	sort.Slice(p.rep.Rows, func(i, j int) bool {
		a, b := p.rep.Rows[i], p.rep.Rows[j]
		return a.Purpose+"\x00"+a.Vendor+"\x00"+a.App < b.Purpose+"\x00"+b.Vendor+"\x00"+b.App
	})
	p.rep.Recipients = []Recipient{}
	for _, v := range slices.Sorted(maps.Keys(recipients)) {
		slices.Sort(recipients[v].Purposes)
		p.rep.Recipients = append(p.rep.Recipients, *recipients[v])
	}
	for _, id := range p.order {
		c := p.consents[id]
		if c.Status == "revoked" {
			for _, v := range c.Vendors {
				if why, ok := p.o.Erasure[v]; ok && strings.HasPrefix(why, unavailablePrefix) &&
					!slices.ContainsFunc(c.Erasures, func(e SubjectErasure) bool { return e.Vendor == v }) {
					c.Erasures = append(c.Erasures, SubjectErasure{Vendor: v, Status: "unavailable", Reason: strings.TrimPrefix(why, unavailablePrefix)})
				}
			}
		}
		p.rep.Consents = append(p.rep.Consents, *c)
	}
	return p.rep
}

// unavailablePrefix starts ProcessingOptions.Erasure for a vendor whose data
// cannot be erased through its API.
const unavailablePrefix = "unavailable: "

// ErasureUnavailable is how ProcessingOptions.Erasure says a vendor has no
// erasure call, and why.
func ErasureUnavailable(why string) string { return unavailablePrefix + why }

// Markdown renders the report for a data protection officer.
func (p ProcessingReport) Markdown() string {
	var b strings.Builder
	b.WriteString("# Record of processing: disclosures to vendors\n\n")
	if p.Unverified {
		b.WriteString("**UNVERIFIED:** the records this report was made from were not checked against the audit log's public key.\n\n")
	}
	if p.Subject != "" {
		fmt.Fprintf(&b, "About one person: subject HMAC `%s`.\n\n", p.Subject)
	}
	fmt.Fprintf(&b, "Period: %s\n\n", p.period())
	b.WriteString("## Transfers by purpose\n\n")
	b.WriteString("A disclosure is a call the vendor answered that sent it, or returned, personal data; calls that carried only ids and statuses are counted apart.\n\n")
	b.WriteString("| purpose | recipient (vendor) | app | data categories disclosed | disclosures | without personal data | denials | other |\n")
	b.WriteString("| --- | --- | --- | --- | ---: | ---: | ---: | ---: |\n")
	for _, r := range p.Rows {
		purpose := cmpOr(r.Purpose, "(none given)")
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %d | %d | %d | %d |\n", purpose, r.Vendor, r.App,
			strings.Join(r.Categories, ", "), r.Disclosures, r.NoPersonalData, r.Denials, r.Other)
	}
	b.WriteString("\n## Recipients\n\n| recipient (vendor) | purposes | disclosures | erasure on withdrawal |\n| --- | --- | ---: | --- |\n")
	for _, r := range p.Recipients {
		fmt.Fprintf(&b, "| %s | %s | %d | %s |\n", r.Vendor, strings.Join(r.Purposes, ", "), r.Disclosures, cmpOr(r.Erasure, "(not given: run with --config)"))
	}
	if p.Subject != "" {
		b.WriteString("\n## The person's consents and erasures\n\n| consent | app | status | erasure |\n| --- | --- | --- | --- |\n")
		for _, c := range p.Consents {
			var es []string
			for _, e := range c.Erasures {
				s := fmt.Sprintf("%s: %s", e.Vendor, e.Status)
				if e.Reason != "" {
					s += " (" + e.Reason + ")"
				}
				es = append(es, s)
			}
			status := c.Status
			if !c.RevokedAt.IsZero() {
				status += " " + c.RevokedAt.UTC().Format(time.DateOnly)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", c.ID, c.App, status, strings.Join(es, "; "))
		}
	}
	return b.String()
}

// period names the report's dates: the bounds asked for, else those of the
// records it counted.
func (p ProcessingReport) period() string {
	from, to := p.From, p.To
	if from.IsZero() {
		from = p.First
	}
	if to.IsZero() {
		to = p.Last
	}
	if from.IsZero() {
		return "no records"
	}
	return from.UTC().Format(time.DateOnly) + " to " + to.UTC().Format(time.DateOnly)
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
