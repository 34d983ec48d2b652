package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/configs"
)

// Auditor records what the gateway decides and does; *audit.Log implements it.
// In strict mode Append returns only once the record is durable, which is what
// lets the gateway promise that no vendor call and no answer goes unrecorded.
type Auditor interface {
	Append(ctx context.Context, r audit.Record) (audit.Record, error)
}

// ErrAuditUnavailable means a record could not be written: the call stops.
var ErrAuditUnavailable = errors.New("audit log unavailable")

// reserveKeeper is an Auditor that keeps the last of its disk for records of
// disclosures (*audit.Log; see audit.Options.ReserveBytes).
type reserveKeeper interface{ InReserve() bool }

// shedRefusal reports whether the outcome record of ex is left out to keep
// the audit disk reserve: only a refusal made before any vendor was called
// is, and it is counted, and the next refusal recorded says how many went
// before it. The app's answer is the same either way: the vendor is not called.
func (g *Gateway) shedRefusal(ex *exchange, kind string) bool {
	if kind != audit.KindOutcome || ex.intentRecorded {
		return false
	}
	if k, ok := g.auditor.(reserveKeeper); !ok || !k.InReserve() {
		return false
	}
	g.metrics.refusalsShed.Inc()
	g.shed.Add(1)
	return true
}

// record writes the intent or outcome record of one exchange. The request's
// context may already be cancelled (the app hung up): the record is written
// regardless, because the vendor may already have been called.
func (g *Gateway) record(ctx context.Context, ex *exchange, kind string) error {
	ctx, span := g.stage(ctx, spanAuditPrefix+kind)
	defer span.End()
	if g.shedRefusal(ex, kind) {
		return nil
	}
	var shed int64
	if kind == audit.KindOutcome && !ex.intentRecorded {
		shed = g.shed.Swap(0)
	}
	r := ex.asRecord(kind, shed)
	start := time.Now()
	_, err := g.auditor.Append(context.WithoutCancel(ctx), r)
	if err == nil && kind == audit.KindOutcome && ex.tenant {
		// A call on the tenant (class: tenant) is also an admin action.
		_, err = g.auditor.Append(context.WithoutCancel(ctx), audit.Record{Kind: audit.KindAdmin, RequestID: ex.requestID,
			DecisionID: r.DecisionID, App: ex.app, Vendor: ex.vendor, Operation: ex.op, Allow: r.Allow, Status: ex.status,
			Detail: map[string]string{"action": "tenant operation", "role": ex.role}})
	}
	g.metrics.observe(stageAudit, start)
	if err != nil {
		if shed > 0 {
			g.shed.Add(shed) // still unrecorded; the next refusal recorded says so
		}
		g.log.Error("AUDIT LOG UNWRITABLE: the call is refused", logRequestID, ex.requestID, "kind", kind, logError, err.Error())
		return errors.Join(ErrAuditUnavailable, err)
	}
	if kind == audit.KindIntent {
		ex.intentRecorded = true
	}
	return nil
}

// asRecord is the intent or outcome record of ex; shed is the number of
// refusals left unrecorded before it.
func (ex *exchange) asRecord(kind string, shed int64) audit.Record {
	r := audit.Record{
		Kind:         kind,
		RequestID:    ex.requestID,
		App:          ex.app,
		Vendor:       ex.vendor,
		Operation:    ex.op,
		Method:       ex.method,
		PathTemplate: ex.pathTemplate,
		ConsentID:    ex.consentID,
		Purpose:      ex.purpose,
		SubjectHMAC:  ex.subject,
		Identifiers:  ex.identifiers,
		BytesIn:      ex.bytesIn,
		// What of the request went to the vendor: on the intent, before it
		// leaves; on the outcome, what the app had asked to send.
		RequestDisclosed: ex.requestDisclosed,
		RequestWithheld:  ex.requestWithheld,
	}
	detail := func() map[string]string {
		if r.Detail == nil {
			r.Detail = map[string]string{}
		}
		return r.Detail
	}
	if d := ex.decision; d != nil {
		allow := d.Allow
		r.DecisionID, r.PolicyRevision, r.Allow, r.Reasons = d.ID, d.Revision, &allow, d.Reasons
		// The question the policy was asked, for `policy replay`: on the intent
		// of a call that went ahead, on the outcome of one that was denied.
		if kind == audit.KindIntent || !d.Allow {
			detail()["policy_input"] = ex.policyInput
		}
	}
	if ex.initiator != "" {
		detail()["initiator"] = ex.initiator
	}
	// The tokens whose values went to the vendor, by id: never a value.
	if len(ex.revealed) > 0 {
		detail()["revealed"] = strings.Join(ex.revealed, ",")
	}
	if n := ex.unrecordedBefore + shed; n > 0 {
		detail()["unrecorded_before"] = strconv.FormatInt(n, 10)
	}
	if kind != audit.KindOutcome {
		return r
	}
	r.Status = ex.status
	r.LatencyUS = time.Since(ex.start).Microseconds()
	r.BytesOut = ex.bytesOut
	r.Disclosed, r.Withheld = ex.disclosed, ex.withheld
	r.Error = ex.err
	detail()
	// What came of the call, and the refusal's kind when it stopped: what the
	// console's timeline filters on, without parsing Error.
	r.Detail["outcome"] = ex.outcome
	if ex.refusal != "" {
		r.Detail["refusal"] = string(ex.refusal)
	}
	if ex.wouldDeny {
		r.Detail["would_deny"] = "true"
	}
	// The data categories disclosed, for the record of processing (audit
	// report); the paths are in Disclosed.
	if len(ex.categories) > 0 {
		r.Detail["categories"] = strings.Join(ex.categories, ",")
	}
	// The paths whose values the app got as tokens, never the tokens.
	if len(ex.tokenized) > 0 {
		r.Detail["tokenized"] = strings.Join(ex.tokenized, ",")
	}
	// Counted, not named: a header's name can be someone's data too.
	if ex.responseHeadersWithheld > 0 {
		r.Detail["response_headers_withheld"] = strconv.Itoa(ex.responseHeadersWithheld)
	}
	return r
}

// identifierValues returns the scalar values at the identifier paths of fields
// found in a decoded JSON document.
func identifierValues(doc any, fields map[string]string) []string {
	var out []string
	walkPaths(doc, "", func(path string, v any) bool {
		switch x := v.(type) {
		case string:
			if configs.IdentifierField(path, fields[path]) && x != "" {
				out = append(out, x)
			}
		case json.Number:
			if configs.IdentifierField(path, fields[path]) {
				out = append(out, x.String())
			}
		}
		return true
	})
	return out
}

// disclosedCategories maps disclosed paths to the categories of the operation's
// response fields; a derived age (age_over_18) is reported as "derived_age".
func disclosedCategories(disclosed []string, fields map[string]string) []string {
	set := map[string]bool{}
	for _, p := range disclosed {
		if strings.HasPrefix(p[strings.LastIndex(p, ".")+1:], "age_over_") {
			set["derived_age"] = true
			continue
		}
		c, ok := fields[p]
		for q := p; !ok && q != ""; {
			i := strings.LastIndexAny(q, ".[")
			if i < 0 {
				break
			}
			q = q[:i]
			c, ok = fields[q]
		}
		if ok && c != "metadata" {
			set[c] = true
		}
	}
	return sortedKeys(set)
}

// SubjectHMAC is value hashed as the audit log holds identifiers (audit.HMAC
// under keys.subject_hmac), for auditors who search the log for a person.
func (g *Gateway) SubjectHMAC(ctx context.Context, value string) (string, error) {
	key, err := g.secrets.Get(ctx, g.subjectRef)
	if err != nil {
		return "", fmt.Errorf("keys.subject_hmac: %w", err)
	}
	return audit.HMAC([]byte(key.Value), value), nil
}

// sortedKeys is a set's members in order, in one allocation of the right size
// (collecting the keys' iterator grows its slice as it goes).
func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
