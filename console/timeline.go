package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/consentgate/consentgate/audit"
)

// timelineData is the timeline page: the filter as given, a page of records,
// and the link to the next, older page.
type timelineData struct {
	Filter   url.Values
	From, To time.Time // the window, for the form's time inputs
	Page     audit.Page
	Older    string // address of the next page; "" when none
	Error    string
	Kinds    []string
	Outcome  []string
}

// timeline serves GET /console/timeline: records newest first, filtered by
// what is not personal (time, app, vendor, operation, purpose, outcome,
// refusal kind), a bounded page at a time.
func (c *console) timeline(w http.ResponseWriter, r *http.Request) {
	q, err := timelineQuery(r.URL.Query())
	d := timelineData{Filter: r.URL.Query(), From: q.From, To: q.To, Kinds: kinds, Outcome: outcomes}
	if err != nil {
		d.Error = err.Error()
		c.renderStatus(w, r, http.StatusBadRequest, "timeline.html", "Audit timeline", d)
		return
	}
	d.Page, err = c.o.Audit.Timeline(r.Context(), q)
	if err != nil {
		c.o.Logger.Error("timeline not read", "error", err.Error())
		c.fail(w, r, http.StatusServiceUnavailable, "The audit log could not be read.")
		return
	}
	if d.Page.Next > 0 {
		next := r.URL.Query()
		next.Set("before", strconv.FormatUint(d.Page.Next, 10))
		d.Older = "/console/timeline?" + next.Encode()
	}
	c.render(w, r, "timeline.html", "Audit timeline", d)
}

var (
	kinds    = []string{audit.KindIntent, audit.KindOutcome, audit.KindConsent, audit.KindPolicy, audit.KindAdmin, audit.KindSystem, audit.KindCheckpoint}
	outcomes = []string{"forwarded", "refused", "denied", "failed"}
)

// timelineQuery reads the filter form; times are the browser's datetime-local
// values (read as UTC) or RFC 3339.
func timelineQuery(v url.Values) (audit.Query, error) {
	q := audit.Query{App: v.Get("app"), Vendor: v.Get("vendor"), Operation: v.Get("operation"), Purpose: v.Get("purpose"),
		Kind: v.Get("kind"), Outcome: v.Get("outcome"), Refusal: v.Get("refusal")}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if s := v.Get(f.name); s != "" {
			t, err := parseTime(s)
			if err != nil {
				return q, errors.New(f.name + " must be a date and time (2026-12-07T10:00, UTC) or RFC 3339")
			}
			*f.dst = t
		}
	}
	if s := v.Get("before"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return q, errors.New("before must be a record number")
		}
		q.Before = n
	}
	return q, nil
}

func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("not a time")
}

// recordData is a record's page: the record, and where it stands in the chain.
type recordData struct {
	Record audit.Record
	// Checkpoint is the first signed checkpoint after the record, which
	// vouches for it; nil when none is signed yet (or none within reach).
	Checkpoint *audit.Record
	Pair       *audit.Record // the intent of an outcome, or the outcome of an intent
	Within     int           // how far after the record a checkpoint was looked for
}

// recordPage serves GET /console/records/{seq}.
func (c *console) recordPage(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		c.fail(w, r, http.StatusNotFound, "There is no such record.")
		return
	}
	rec, err := c.o.Audit.Record(seq)
	switch {
	case errors.Is(err, audit.ErrNoRecord):
		c.fail(w, r, http.StatusNotFound, "There is no such record.")
		return
	case errors.Is(err, audit.ErrPruned):
		c.fail(w, r, http.StatusNotFound, "This record has left the node: read it from the archive (consentgate audit search --archive).")
		return
	case err != nil:
		c.o.Logger.Error("record not read", "seq", seq, "error", err.Error())
		c.fail(w, r, http.StatusServiceUnavailable, "The audit log could not be read.")
		return
	}
	d := recordData{Record: rec, Within: c.checkpointReach()}
	ctx := r.Context()
	d.Checkpoint = c.firstAfter(ctx, seq, d.Within, audit.Query{Kind: audit.KindCheckpoint})
	switch {
	case rec.RequestID == "":
	case rec.Kind == audit.KindIntent:
		d.Pair = c.firstAfter(ctx, seq, pairReach, audit.Query{Kind: audit.KindOutcome, RequestID: rec.RequestID})
	case rec.Kind == audit.KindOutcome:
		p, err := c.o.Audit.Timeline(ctx, audit.Query{Before: seq, Limit: 1, MaxScan: pairReach, Kind: audit.KindIntent, RequestID: rec.RequestID})
		if err == nil && len(p.Records) == 1 {
			d.Pair = &p.Records[0]
		}
	}
	c.render(w, r, "record.html", "Record "+strconv.FormatUint(seq, 10), d)
}

// pairReach is how far apart an intent and its outcome are looked for: the
// records of every call made while the vendor answered lie between them.
const pairReach = 100_000

// firstAfter is the first record q matches within n after seq: the timeline
// reads a window above seq downwards, skipping by bytes what cannot match. A
// near window is tried first, since most are found there.
func (c *console) firstAfter(ctx context.Context, seq uint64, n int, q audit.Query) *audit.Record {
	for _, window := range []int{min(n, 1000), n} {
		q.Before, q.Limit, q.MaxScan = seq+uint64(window)+1, window, window
		p, err := c.o.Audit.Timeline(ctx, q)
		if err != nil {
			return nil
		}
		for i := len(p.Records) - 1; i >= 0; i-- { // newest first: the first after seq is last
			if p.Records[i].Seq > seq {
				return &p.Records[i]
			}
		}
	}
	return nil
}
