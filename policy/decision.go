package policy

import (
	"fmt"
	"regexp"
	"time"
)

// Query is the rule every policy revision must define.
const Query = "data.consentgate.decision"

// Reasons the engine gives when the policy could not decide. They are fixed
// strings so alerts and apps can match them; the detail goes to the log only.
const (
	ReasonNoPolicy   = "no policy loaded"
	ReasonEvalError  = "policy evaluation failed"
	ReasonTimeout    = "policy evaluation timed out"
	ReasonBusy       = "policy engine busy"
	ReasonUndefined  = "policy decision undefined"
	ReasonMalformed  = "policy decision malformed"
	ReasonReportOnly = "report-only: would deny"
)

// Actions a decision can name for a field.
const (
	ActionKeep = "keep"
	ActionDrop = "drop"
	ActionMask = "mask"
	ActionHash = "hash"
	// ActionTokenize replaces the value with a token the app can send back
	// later, bound to the consent (package tokens).
	ActionTokenize = "tokenize"
	// ActionTokenizeIdentifiers is for a purpose's category table, never a
	// decision: the category's identifiers (input.fields.identifiers) are
	// tokenized and its other fields kept.
	ActionTokenizeIdentifiers = "tokenize:identifiers"
)

// Derivations a decision can name as "derive:<fn>".
var Derivations = []string{"age_over_18", "age_over_21", "country_only", "year_only", "last4"}

var actionRE = regexp.MustCompile(`^(keep|drop|mask|hash|tokenize|derive:(age_over_18|age_over_21|country_only|year_only|last4))$`)

// ValidAction reports whether a is an action consentgate can apply.
func ValidAction(a string) bool { return actionRE.MatchString(a) }

// ValidCategoryAction reports whether a purpose may map a category to a.
func ValidCategoryAction(a string) bool { return ValidAction(a) || a == ActionTokenizeIdentifiers }

// App is the caller as its certificate proves it.
type App struct {
	ID   string `json:"id"`
	Role string `json:"role"`
	URI  string `json:"uri"`
}

// Consent is the consent record as the policy sees it: the subject is an HMAC,
// never the app's user id.
type Consent struct {
	ID         string    `json:"id"`
	App        string    `json:"app"`
	Subject    string    `json:"subject"`
	Vendors    []string  `json:"vendors"`
	Purposes   []string  `json:"purposes"`
	Categories []string  `json:"categories"`
	Status     string    `json:"status"`
	GrantedAt  time.Time `json:"granted_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// Input is what the policy is asked about one call (docs/policy.md).
type Input struct {
	App       App
	Vendor    string
	Operation string
	Method    string
	// Path is the operation's path template, never the concrete path.
	Path string
	Body string // "json" or "binary"
	// Erasure says the operation erases an end user's data at the vendor (a
	// profile's erases): it carries out a withdrawal, so it runs under a
	// revoked or expired consent.
	Erasure bool
	// Class is the operation's class: "subject" or "tenant" (configs).
	Class     string
	Purpose   string
	ConsentID string
	// Consent is nil when no consent header was sent or no such consent exists.
	Consent *Consent
	// RequestFields and ResponseFields are the operation's field → category maps.
	RequestFields  map[string]string
	ResponseFields map[string]string
	// Identifiers are the response fields that hold identifiers: national
	// ids, document numbers and fields the profile gives a token format
	// (configs.Operation.Identifiers); what tokenize:identifiers tokenizes.
	Identifiers []string
	// Present are the field paths present in the app's JSON request body.
	Present []string
	// Reveals are the request fields in which the operation takes tokens back
	// (a profile's reveals).
	Reveals []string
	// QuotaRemaining is the vendor's last stated remaining budget; QuotaKnown is
	// false until the vendor has said.
	QuotaRemaining int
	QuotaKnown     bool
	Now            time.Time
}

// value is the input as the JSON-like tree OPA evaluates.
func (in *Input) value() map[string]any {
	var consent any
	if c := in.Consent; c != nil {
		consent = map[string]any{
			"id": c.ID, "app": c.App, "subject": c.Subject,
			"vendors": anySlice(c.Vendors), "purposes": anySlice(c.Purposes), "categories": anySlice(c.Categories),
			"status": c.Status, "granted_at": c.GrantedAt.UTC().Format(time.RFC3339), "expires_at": c.ExpiresAt.UTC().Format(time.RFC3339),
		}
	}
	return map[string]any{
		"app":        map[string]any{"id": in.App.ID, "role": in.App.Role, "uri": in.App.URI},
		"vendor":     in.Vendor,
		"operation":  in.Operation,
		"method":     in.Method,
		"path":       in.Path,
		"body":       in.Body,
		"erasure":    in.Erasure,
		"class":      in.Class,
		"purpose":    in.Purpose,
		"consent_id": in.ConsentID,
		"consent":    consent,
		"fields":     fieldsValue(in.RequestFields, in.ResponseFields, in.Identifiers),
		"request":    map[string]any{"fields": anySlice(in.Present), "reveals": anySlice(in.Reveals)},
		"quota":      map[string]any{"remaining": in.QuotaRemaining, "known": in.QuotaKnown},
		"now":        in.Now.UTC().Format(time.RFC3339),
	}
}

func fieldsValue(request, response map[string]string, identifiers []string) map[string]any {
	return map[string]any{"request": fieldMap(request), "response": fieldMap(response), "identifiers": anySlice(identifiers)}
}

func anySlice(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func fieldMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Decision is the answer for one call.
type Decision struct {
	// ID is a fresh UUID, given to the app and, later, the audit record.
	ID string `json:"decision_id"`
	// Revision identifies the policy that decided (hash of its files).
	Revision string   `json:"policy_revision"`
	Allow    bool     `json:"allow"`
	Reasons  []string `json:"reasons"`
	Response struct {
		Default string            `json:"default"`
		Fields  map[string]string `json:"fields"`
	} `json:"response"`
	Request struct {
		Drop []string `json:"drop"`
		// Reveal are the request fields in which a token the app sends is
		// replaced by its value.
		Reveal []string `json:"reveal"`
	} `json:"request"`
	Binary string `json:"binary"`
	// Enforced is false when the route is report-only and the decision was a deny
	// that was let through; WouldDeny says so.
	WouldDeny bool `json:"would_deny,omitempty"`
	// Err is why the engine could not decide (for the log, never for the app).
	Err string `json:"-"`
	// Busy says the engine could not decide in time: no evaluation slot came
	// free within QueueWait, or the evaluation ran past Timeout, which under
	// load is mostly time spent waiting for a core. A deny, but one worth
	// retrying, and not the policy's answer.
	Busy bool `json:"-"`
}

// deny is a decision that refuses with a fixed reason.
func deny(reason, detail string) Decision {
	d := Decision{Allow: false, Reasons: []string{reason}, Binary: "deny", Err: detail}
	d.Response.Default = ActionDrop
	d.Response.Fields = map[string]string{}
	return d
}

// parseDecision checks the shape of what the policy returned. Anything off is
// malformed: a policy bug must not turn into a disclosure.
func parseDecision(v any) (Decision, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return Decision{}, fmt.Errorf("decision is %T, not an object", v)
	}
	var d Decision
	if d.Allow, ok = m["allow"].(bool); !ok {
		return Decision{}, fmt.Errorf("allow is %T, not a boolean", m["allow"])
	}
	rs, ok := m["reasons"].([]any)
	if !ok || len(rs) == 0 {
		return Decision{}, fmt.Errorf("reasons must be a non-empty array")
	}
	for _, r := range rs {
		s, ok := r.(string)
		if !ok || s == "" {
			return Decision{}, fmt.Errorf("reasons must be strings")
		}
		d.Reasons = append(d.Reasons, s)
	}
	d.Response.Default, d.Response.Fields = ActionDrop, map[string]string{}
	if resp, ok := m["response"].(map[string]any); ok {
		if def, ok := resp["default"]; ok {
			s, _ := def.(string)
			if s != ActionDrop && s != ActionKeep {
				return Decision{}, fmt.Errorf("response.default %v is not keep or drop", def)
			}
			d.Response.Default = s
		}
		if fields, ok := resp["fields"]; ok {
			fm, ok := fields.(map[string]any)
			if !ok {
				return Decision{}, fmt.Errorf("response.fields is not an object")
			}
			for path, a := range fm {
				s, _ := a.(string)
				if !ValidAction(s) {
					return Decision{}, fmt.Errorf("response.fields[%q]: %v is not an action", path, a)
				}
				d.Response.Fields[path] = s
			}
		}
	} else if _, present := m["response"]; present {
		return Decision{}, fmt.Errorf("response is not an object")
	}
	if req, ok := m["request"].(map[string]any); ok {
		var err error
		if d.Request.Drop, err = stringList(req, "drop"); err != nil {
			return Decision{}, err
		}
		if d.Request.Reveal, err = stringList(req, "reveal"); err != nil {
			return Decision{}, err
		}
	}
	switch b := m["binary"]; b {
	case nil:
		d.Binary = "deny"
	case "allow", "deny":
		d.Binary = b.(string)
	default:
		return Decision{}, fmt.Errorf("binary %v is not allow or deny", b)
	}
	return d, nil
}

// stringList reads request.<name>, an array of strings, if it is there.
func stringList(req map[string]any, name string) ([]string, error) {
	v, ok := req[name]
	if !ok {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("request.%s is not an array", name)
	}
	var out []string
	for _, p := range list {
		s, ok := p.(string)
		if !ok {
			return nil, fmt.Errorf("request.%s must hold strings", name)
		}
		out = append(out, s)
	}
	return out, nil
}
