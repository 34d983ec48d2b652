package proxy

import (
	"encoding/json"
	"net/http"
)

// problem is an RFC 9457 problem detail. Detail never carries a secret or a value
// from a vendor response: it is written by consentgate from fixed text and
// identifiers the app already knows.
type problem struct {
	Type       string   `json:"type"`
	Title      string   `json:"title"`
	Status     int      `json:"status"`
	Detail     string   `json:"detail,omitempty"`
	RequestID  string   `json:"request_id,omitempty"`
	DecisionID string   `json:"decision_id,omitempty"`
	Reasons    []string `json:"reasons,omitempty"`
}

// Problem types: stable strings apps can switch on.
const (
	problemNoRoute       = "no-route"
	problemBadRequest    = "bad-request"
	problemTooLarge      = "request-too-large"
	problemForbiddenRole = "role-not-allowed"
	problemCredentials   = "credentials-unavailable"
	problemUpstream      = "vendor-unreachable"
	problemTimeout       = "vendor-timeout"
	problemBadUpstream   = "vendor-response-refused"
	problemNotYet        = "not-implemented"
	problemDenied        = "policy-denied"
	problemPolicyBusy    = "policy-busy"
	problemConsentStore  = "consent-registry-unavailable"
	problemAudit         = "audit-unavailable"
	problemQuota         = "vendor-quota"
	problemNotReady      = "not-ready"
)

func writeProblem(w http.ResponseWriter, status int, kind, title, detail, requestID string) {
	writeProblemBody(w, problem{Type: "urn:consentgate:problem:" + kind, Title: title, Status: status, Detail: detail, RequestID: requestID})
}

func writeProblemBody(w http.ResponseWriter, p problem) {
	status := p.Status
	body, _ := json.Marshal(p)
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(body)
}
