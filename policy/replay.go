package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Replayable is the input as the audit record keeps it: without the consent
// subject (personal, even as an HMAC it links people) and without the field →
// category maps (they come from the vendor profile, by operation). With them
// `consentgate policy replay` asks a candidate policy the question the gateway
// asked.
func (in *Input) Replayable() string {
	r := recordedInput{App: in.App, Vendor: in.Vendor, Operation: in.Operation, Method: in.Method, Path: in.Path,
		Body: in.Body, Erasure: in.Erasure, Class: in.Class, Purpose: in.Purpose, ConsentID: in.ConsentID, Now: in.Now.UTC().Format(time.RFC3339)}
	if c := in.Consent; c != nil {
		r.Consent = &recordedConsent{ID: c.ID, App: c.App, Vendors: nonNil(c.Vendors), Purposes: nonNil(c.Purposes),
			Categories: nonNil(c.Categories), Status: c.Status,
			GrantedAt: c.GrantedAt.UTC().Format(time.RFC3339), ExpiresAt: c.ExpiresAt.UTC().Format(time.RFC3339)}
	}
	r.Request.Fields, r.Request.Reveals = nonNil(in.Present), nonNil(in.Reveals)
	r.Quota.Remaining, r.Quota.Known = in.QuotaRemaining, in.QuotaKnown
	b, _ := json.Marshal(r)
	return string(b)
}

// recordedInput is the input tree's recorded form as a struct: encoding it is
// several times cheaper than encoding the map, and it is done on every call.
type recordedInput struct {
	App       App              `json:"app"`
	Vendor    string           `json:"vendor"`
	Operation string           `json:"operation"`
	Method    string           `json:"method"`
	Path      string           `json:"path"`
	Body      string           `json:"body"`
	Erasure   bool             `json:"erasure"`
	Class     string           `json:"class"`
	Purpose   string           `json:"purpose"`
	ConsentID string           `json:"consent_id"`
	Consent   *recordedConsent `json:"consent"`
	Request   struct {
		Fields  []string `json:"fields"`
		Reveals []string `json:"reveals"`
	} `json:"request"`
	Quota struct {
		Remaining int  `json:"remaining"`
		Known     bool `json:"known"`
	} `json:"quota"`
	Now string `json:"now"`
}

type recordedConsent struct {
	ID         string   `json:"id"`
	App        string   `json:"app"`
	Vendors    []string `json:"vendors"`
	Purposes   []string `json:"purposes"`
	Categories []string `json:"categories"`
	Status     string   `json:"status"`
	GrantedAt  string   `json:"granted_at"`
	ExpiresAt  string   `json:"expires_at"`
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ReplayInput rebuilds an input from its recorded form and the operation's
// field maps and identifiers.
func ReplayInput(recorded string, requestFields, responseFields map[string]string, identifiers []string) (map[string]any, error) {
	var v map[string]any
	if err := json.Unmarshal([]byte(recorded), &v); err != nil {
		return nil, fmt.Errorf("recorded policy input: %w", err)
	}
	v["fields"] = fieldsValue(requestFields, responseFields, identifiers)
	return v, nil
}

// Recorded is one decision as the audit log keeps it, for Replay.
type Recorded struct {
	Seq                                        uint64
	RequestID, App, Vendor, Operation, Purpose string
	Input                                      string // the record's policy_input
	Allow                                      bool
	Reasons                                    []string
}

// Change is a recorded decision the candidate would decide otherwise.
type Change struct {
	Recorded
	NowAllow   bool
	NowReasons []string
}

// FieldMaps gives an operation's field maps and identifiers, as the vendor
// profiles in service define them (nil maps for an operation they no longer have).
type FieldMaps func(vendor, operation string) (request, response map[string]string, identifiers []string)

// Replay asks e, a candidate, the questions of recorded decisions and counts
// what would change: `consentgate policy replay` and the console's dry run.
type Replay struct {
	Replayed, NewlyDenied, NewlyAllowed, Changed int
	Changes                                      []Change // the first MaxChanges
	MaxChanges                                   int      // 0: every change is kept
}

// Add replays one recorded decision with e and reports the change, if any.
func (rp *Replay) Add(ctx context.Context, e *Engine, fields FieldMaps, r Recorded) (*Change, error) {
	req, resp, ids := fields(r.Vendor, r.Operation)
	in, err := ReplayInput(r.Input, req, resp, ids)
	if err != nil {
		return nil, fmt.Errorf("record %d: %w", r.Seq, err)
	}
	d := e.DecideRaw(ctx, in)
	if err := ctx.Err(); err != nil {
		return nil, err // a decision cut short is no answer of the candidate's
	}
	rp.Replayed++
	if d.Allow == r.Allow && slices.Equal(sortedCopy(d.Reasons), sortedCopy(r.Reasons)) {
		return nil, nil
	}
	rp.Changed++
	switch {
	case r.Allow && !d.Allow:
		rp.NewlyDenied++
	case !r.Allow && d.Allow:
		rp.NewlyAllowed++
	}
	c := Change{Recorded: r, NowAllow: d.Allow, NowReasons: shown(d.Reasons)}
	if rp.MaxChanges == 0 || len(rp.Changes) < rp.MaxChanges {
		rp.Changes = append(rp.Changes, c)
	}
	return &c, nil
}

// shown is what a change keeps of a candidate's reasons, which are its own
// text of any length: the first 20, each cut at 300 bytes.
func shown(reasons []string) []string {
	out := slices.Clone(reasons[:min(len(reasons), 20)])
	for i, r := range out {
		if len(r) > 300 {
			out[i] = strings.ToValidUTF8(r[:300], "") + "…"
		}
	}
	return out
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
