package audit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// ProcessingReport summarises, for a period, what was disclosed to which
// recipient (vendor) for which purpose and app: the facts a GDPR Art. 30 record
// of processing needs. It is computed from outcome records only.
type ProcessingReport struct {
	From time.Time       `json:"from,omitzero"`
	To   time.Time       `json:"to,omitzero"`
	Rows []ProcessingRow `json:"rows"`
}

// ProcessingRow is one purpose × vendor × app.
type ProcessingRow struct {
	Purpose    string   `json:"purpose"`
	Vendor     string   `json:"vendor"`
	App        string   `json:"app"`
	Categories []string `json:"categories"`
	// Disclosures are allowed calls the vendor answered with 2xx; Denials are
	// calls the policy refused; Other are the rest (vendor errors, refusals
	// before a decision).
	Disclosures int `json:"disclosures"`
	Denials     int `json:"denials"`
	Other       int `json:"other"`
}

// Processing reads an export (full or partial) and builds the report for
// records with from ≤ time < to (zero bounds are open).
func Processing(r io.Reader, from, to time.Time) (ProcessingReport, error) {
	rep := ProcessingReport{From: from, To: to}
	type key struct{ purpose, vendor, app string }
	rows := map[key]*ProcessingRow{}
	cats := map[key]map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		var rec Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return rep, fmt.Errorf("export line %d: %w", line, err)
		}
		if rec.Kind != KindOutcome || rec.Vendor == "" ||
			(!from.IsZero() && rec.Time.Before(from)) || (!to.IsZero() && !rec.Time.Before(to)) {
			continue
		}
		k := key{rec.Purpose, rec.Vendor, rec.App}
		row := rows[k]
		if row == nil {
			row = &ProcessingRow{Purpose: rec.Purpose, Vendor: rec.Vendor, App: rec.App}
			rows[k], cats[k] = row, map[string]bool{}
		}
		switch {
		case rec.Allow != nil && !*rec.Allow && rec.Detail["would_deny"] == "":
			row.Denials++
		case rec.Allow != nil && rec.Status >= 200 && rec.Status < 300:
			row.Disclosures++
			for _, c := range strings.Split(rec.Detail["categories"], ",") {
				if c != "" {
					cats[k][c] = true
				}
			}
		default:
			row.Other++
		}
	}
	if err := sc.Err(); err != nil {
		return rep, fmt.Errorf("reading export: %w", err)
	}
	for k, row := range rows {
		for c := range cats[k] {
			row.Categories = append(row.Categories, c)
		}
		sort.Strings(row.Categories)
		rep.Rows = append(rep.Rows, *row)
	}
	sort.Slice(rep.Rows, func(i, j int) bool {
		a, b := rep.Rows[i], rep.Rows[j]
		if a.Purpose != b.Purpose {
			return a.Purpose < b.Purpose
		}
		if a.Vendor != b.Vendor {
			return a.Vendor < b.Vendor
		}
		return a.App < b.App
	})
	return rep, nil
}

// Markdown renders the report as a table for a data protection officer.
func (p ProcessingReport) Markdown() string {
	var b strings.Builder
	b.WriteString("# Record of processing: disclosures to vendors\n\n")
	period := func(t time.Time, open string) string {
		if t.IsZero() {
			return open
		}
		return t.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(&b, "Period: %s to %s\n\n", period(p.From, "the first record"), period(p.To, "the last record"))
	b.WriteString("| purpose | recipient (vendor) | app | data categories disclosed | disclosures | denials | other |\n")
	b.WriteString("| --- | --- | --- | --- | ---: | ---: | ---: |\n")
	for _, r := range p.Rows {
		purpose := r.Purpose
		if purpose == "" {
			purpose = "(none given)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %d | %d | %d |\n", purpose, r.Vendor, r.App,
			strings.Join(r.Categories, ", "), r.Disclosures, r.Denials, r.Other)
	}
	return b.String()
}
