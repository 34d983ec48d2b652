package consent

import (
	"encoding/json"
	"errors"
	"net/http"
)

// problem is an RFC 9457 problem detail. Detail is fixed text or a validation reason;
// it never quotes a subject, and never the hook's own error (the audit log's internals).
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// Problem kinds: stable strings clients can switch on (urn:consentgate:problem:<kind>).
const (
	problemBadRequest       = "bad-request"
	problemNotFound         = "not-found"
	problemForbidden        = "forbidden"
	problemUnauthorized     = "unauthorized"
	problemMethod           = "method-not-allowed"
	problemAuditUnavailable = "audit-unavailable"
	problemInternal         = "internal"
)

func writeProblem(w http.ResponseWriter, status int, kind, detail string) {
	body, _ := json.Marshal(problem{
		Type:   "urn:consentgate:problem:" + kind,
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
	})
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(body)
}

// writeError answers a registry error. Anything unexpected is logged and answered with
// fixed text: a storage error is no business of the client's.
func (r *Registry) writeError(w http.ResponseWriter, req *http.Request, err error) {
	switch {
	case errors.Is(err, ErrInvalid):
		writeProblem(w, http.StatusBadRequest, problemBadRequest, err.Error())
	case errors.Is(err, ErrNotFound):
		writeProblem(w, http.StatusNotFound, problemNotFound, err.Error())
	case errors.Is(err, ErrForbidden):
		writeProblem(w, http.StatusForbidden, problemForbidden, err.Error())
	case errors.Is(err, ErrHook):
		writeProblem(w, http.StatusServiceUnavailable, problemAuditUnavailable,
			"the audit log could not record the change, so it was not made; try again later")
	default:
		r.log.Error("consent api failed", "method", req.Method, "route", req.Pattern, "error", err)
		writeProblem(w, http.StatusInternalServerError, problemInternal, "the consent registry failed; see the gateway log")
	}
}
