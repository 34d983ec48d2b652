package refusal

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Refusal is why a call stops. Title and Detail are consentgate's own text and
// identifiers the caller already knows: never a secret, never a vendor's value.
type Refusal struct {
	Status int
	Kind   Kind
	Title  string
	Detail string
	// Reasons and DecisionID explain a policy denial.
	Reasons    []string
	DecisionID string
	// Header is set on the answer (Retry-After, a vendor's rate-limit headers).
	Header http.Header
	// Note is what the audit record and the log keep of it; the caller never
	// sees it. Empty: nothing beyond the kind.
	Note string
	// Failed marks consentgate's own failure (a store, a key, the audit log)
	// rather than a refusal of the call: the outcome is "failed".
	Failed bool
}

// New is a refusal with fixed text.
func New(status int, kind Kind, title, detail string) *Refusal {
	return &Refusal{Status: status, Kind: kind, Title: title, Detail: detail}
}

// WrongMethod answers a request for a route that takes other methods: 405 with
// Allow, as every listener answers it.
func WrongMethod(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	New(http.StatusMethodNotAllowed, MethodNotAllowed, "Method not allowed",
		fmt.Sprintf("%s is not allowed here; use %s", r.Method, allow)).Write(w, "")
}

// Error makes a Refusal an error for stages that return one.
func (r *Refusal) Error() string {
	if r.Detail == "" {
		return string(r.Kind)
	}
	return string(r.Kind) + ": " + r.Detail
}

// WithNote sets what the audit record keeps and returns r.
func (r *Refusal) WithNote(note string) *Refusal { r.Note = note; return r }

// AsFailure marks r as consentgate's own failure and returns r.
func (r *Refusal) AsFailure(note string) *Refusal { r.Failed, r.Note = true, note; return r }

// problem is the RFC 9457 body.
type problem struct {
	Type       string   `json:"type"`
	Title      string   `json:"title"`
	Status     int      `json:"status"`
	Detail     string   `json:"detail,omitempty"`
	RequestID  string   `json:"request_id,omitempty"`
	DecisionID string   `json:"decision_id,omitempty"`
	Reasons    []string `json:"reasons,omitempty"`
}

// Type is the problem type URI of kind k.
func (k Kind) Type() string { return "urn:consentgate:problem:" + string(k) }

// Write answers with r as problem+json. An empty requestID is the answer's
// X-Request-Id, when one is set.
func (r *Refusal) Write(w http.ResponseWriter, requestID string) {
	if requestID == "" {
		requestID = w.Header().Get("X-Request-Id")
	}
	title := r.Title
	if title == "" {
		title = http.StatusText(r.Status)
	}
	body, _ := json.Marshal(problem{Type: r.Kind.Type(), Title: title, Status: r.Status, Detail: r.Detail,
		RequestID: requestID, DecisionID: r.DecisionID, Reasons: r.Reasons})
	h := w.Header()
	for k, vals := range r.Header {
		h[k] = vals
	}
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(r.Status)
	w.Write(body)
}
