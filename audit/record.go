package audit

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Kinds of Record. The gateway writes the first six; the log writes checkpoints itself.
const (
	KindIntent     = "intent"     // a vendor call about to be made
	KindOutcome    = "outcome"    // what came of it, or a call refused before it was made
	KindConsent    = "consent"    // a consent created or revoked
	KindPolicy     = "policy"     // a policy revision loaded or refused
	KindAdmin      = "admin"      // an admin action
	KindSystem     = "system"     // start, stop, configuration
	KindCheckpoint = "checkpoint" // a signed statement of the chain so far (see doc.go)
	// KindElided marks a stub in a filtered export: a record outside the filter, of
	// which only seq, prev_hash and hash are kept so the chain can still be followed.
	KindElided = "elided"
)

// Detail keys of a checkpoint record.
const (
	DetailHeadSeq   = "head_seq"  // decimal sequence number of the record it covers
	DetailHeadHash  = "head_hash" // hash of that record
	DetailLogID     = "log_id"    // the log it belongs to
	DetailSignature = "signature" // hex Ed25519 signature, see headMessage
	// DetailSeals is "true" on the checkpoint that seals a segment; its signature
	// is then over sealMessage, so no other checkpoint can pass for one.
	DetailSeals = "seals"
)

// Record is one entry of the log. Append sets Seq, Time, Node, PrevHash and Hash; the
// caller fills the rest. No field may hold a raw personal value or a secret: identifiers
// are passed as HMAC (see the HMAC function), and Append refuses any that is not one.
type Record struct {
	Seq            uint64    `json:"seq"`
	Time           time.Time `json:"time"`
	Node           string    `json:"node"`
	Kind           string    `json:"kind"`
	RequestID      string    `json:"request_id,omitempty"`
	DecisionID     string    `json:"decision_id,omitempty"`
	PolicyRevision string    `json:"policy_revision,omitempty"`
	App            string    `json:"app,omitempty"`
	Vendor         string    `json:"vendor,omitempty"`
	Operation      string    `json:"operation,omitempty"`
	Method         string    `json:"method,omitempty"`
	PathTemplate   string    `json:"path_template,omitempty"`
	ConsentID      string    `json:"consent_id,omitempty"`
	Purpose        string    `json:"purpose,omitempty"`
	SubjectHMAC    string    `json:"subject_hmac,omitempty"`
	Identifiers    []string  `json:"identifiers,omitempty"` // HMAC hex of searchable identifiers (birth number, IIN, document number)
	Allow          *bool     `json:"allow,omitempty"`
	Reasons        []string  `json:"reasons,omitempty"`
	Disclosed      []string  `json:"disclosed,omitempty"`
	Withheld       []string  `json:"withheld,omitempty"`
	// RequestDisclosed and RequestWithheld are the fields of the app's request
	// (body paths, query:<name>, header:<name>) sent to the vendor and held back.
	RequestDisclosed []string          `json:"request_disclosed,omitempty"`
	RequestWithheld  []string          `json:"request_withheld,omitempty"`
	Status           int               `json:"status,omitempty"`
	LatencyUS        int64             `json:"latency_us,omitempty"`
	BytesIn          int64             `json:"bytes_in,omitempty"`
	BytesOut         int64             `json:"bytes_out,omitempty"`
	Error            string            `json:"error,omitempty"`
	Detail           map[string]string `json:"detail,omitempty"` // fixed keys for consent/policy/admin/system kinds
	PrevHash         string            `json:"prev_hash"`
	Hash             string            `json:"hash"`
}

// callerKinds are the kinds Append accepts. A checkpoint only the log may write: one
// from a caller would carry no valid signature.
var callerKinds = map[string]bool{
	KindIntent: true, KindOutcome: true, KindConsent: true,
	KindPolicy: true, KindAdmin: true, KindSystem: true,
}

// prepareRecord checks what the caller passed and returns a copy the writer can own:
// slices and the map are cloned, so a caller that reuses them after an async Append
// cannot race with the encoder, and strings are made valid UTF-8, so the stored bytes
// decode back to exactly the record that was hashed.
func prepareRecord(r Record) (Record, error) {
	if !callerKinds[r.Kind] {
		return Record{}, fmt.Errorf("%w: kind %q (want intent, outcome, consent, policy, admin or system)", ErrInvalid, r.Kind)
	}
	// Refusing anything that is not an HMAC is the last guard against a raw birth
	// number reaching the file. The message never quotes the value.
	if r.SubjectHMAC != "" && !IsHMAC(r.SubjectHMAC) {
		return Record{}, fmt.Errorf("%w: subject_hmac must be HMAC hex (64 lowercase hex digits), see audit.HMAC", ErrInvalid)
	}
	for i, id := range r.Identifiers {
		if !IsHMAC(id) {
			return Record{}, fmt.Errorf("%w: identifiers[%d] must be HMAC hex (64 lowercase hex digits), see audit.HMAC", ErrInvalid, i)
		}
	}
	if r.Allow != nil {
		allow := *r.Allow
		r.Allow = &allow
	}
	for _, s := range []*string{&r.RequestID, &r.DecisionID, &r.PolicyRevision, &r.App, &r.Vendor,
		&r.Operation, &r.Method, &r.PathTemplate, &r.ConsentID, &r.Purpose, &r.Error} {
		*s = strings.ToValidUTF8(*s, "\uFFFD")
	}
	r.Identifiers = slices.Clone(r.Identifiers)
	r.Reasons = validStrings(r.Reasons)
	r.Disclosed = validStrings(r.Disclosed)
	r.Withheld = validStrings(r.Withheld)
	r.RequestDisclosed = validStrings(r.RequestDisclosed)
	r.RequestWithheld = validStrings(r.RequestWithheld)
	if len(r.Detail) > 0 {
		d := make(map[string]string, len(r.Detail))
		for k, v := range r.Detail {
			d[strings.ToValidUTF8(k, "\uFFFD")] = strings.ToValidUTF8(v, "\uFFFD")
		}
		r.Detail = d
	} else {
		r.Detail = maps.Clone(r.Detail)
	}
	return r, nil
}

func validStrings(ss []string) []string {
	if len(ss) == 0 {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToValidUTF8(s, "\uFFFD")
	}
	return out
}

// IsHMAC reports whether s looks like HMAC-SHA256 hex as HMAC returns it.
func IsHMAC(s string) bool {
	return isHex(s, 64)
}

// isHex reports whether s is n lowercase hex digits: the only spelling the log writes,
// so any other (upper case) is a modification.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
