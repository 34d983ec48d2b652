package consent

import (
	"errors"
	"net/http"

	"github.com/consentgate/consentgate/refusal"
)

// writeProblem answers with fixed text or a validation reason: it never quotes
// a subject, and never the hook's own error (the audit log's internals).
func writeProblem(w http.ResponseWriter, status int, kind refusal.Kind, detail string) {
	refusal.New(status, kind, "", detail).Write(w, "")
}

// writeError answers a registry error. Anything unexpected is logged and answered with
// fixed text: a storage error is no business of the client's.
func (r *Registry) writeError(w http.ResponseWriter, req *http.Request, err error) {
	switch {
	case errors.Is(err, ErrInvalid):
		writeProblem(w, http.StatusBadRequest, refusal.BadRequest, err.Error())
	case errors.Is(err, ErrNotFound):
		writeProblem(w, http.StatusNotFound, refusal.NotFound, err.Error())
	case errors.Is(err, ErrForbidden):
		writeProblem(w, http.StatusForbidden, refusal.Forbidden, err.Error())
	case errors.Is(err, ErrHook):
		writeProblem(w, http.StatusServiceUnavailable, refusal.AuditUnavailable,
			"the audit log could not record the change, so it was not made; try again later")
	default:
		r.log.Error("consent api failed", "method", req.Method, "route", req.Pattern, "error", err)
		writeProblem(w, http.StatusInternalServerError, refusal.Internal, "the consent registry failed; see the gateway log")
	}
}
