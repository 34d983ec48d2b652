package consent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/consentgate/consentgate/identity"
	"github.com/consentgate/consentgate/refusal"
)

// maxBody bounds a create request; a consent with its evidence text is a few KiB.
const maxBody = 64 << 10

type caller struct{ name, role string }

type callerKey struct{}

func callerOf(req *http.Request) caller {
	c, _ := req.Context().Value(callerKey{}).(caller)
	return c
}

// Handler serves the admin API to the caller identity.Middleware proved (apps,
// auditors and admins; without one, 401). Every request is checked before
// routing, so even a wrong path or method needs a certificate.
//
// The list route carries the raw subject in its query string (GET /v1/consents?subject=),
// so nothing here logs URLs; whoever serves this handler must not log them either.
func (r *Registry) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/consents", r.serveCreate)
	mux.HandleFunc("GET /v1/consents", r.serveList)
	mux.HandleFunc("GET /v1/consents/{id}", r.serveGet)
	mux.HandleFunc("DELETE /v1/consents/{id}", r.serveRevoke)
	// Without these, ServeMux answers a wrong method with its own text/plain 405.
	mux.HandleFunc("/v1/consents", methodNotAllowed("GET, HEAD, POST"))
	mux.HandleFunc("/v1/consents/{id}", methodNotAllowed("GET, HEAD, DELETE"))
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeProblem(w, http.StatusNotFound, refusal.NotFound, "no such route")
	})
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		id, ref := identity.Require(req.Context(), roleApp, roleAuditor, roleAdmin)
		if ref != nil {
			ref.Write(w, "")
			return
		}
		ctx := context.WithValue(req.Context(), callerKey{}, caller{name: id.Name, role: id.Role})
		mux.ServeHTTP(w, req.WithContext(ctx))
	})
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) { refusal.WrongMethod(w, req, allow) }
}

func (r *Registry) serveCreate(w http.ResponseWriter, req *http.Request) {
	who := callerOf(req)
	if who.role != roleApp {
		// An admin creating a consent "for" an app would be evidence of a user's
		// agreement that the app never collected.
		writeProblem(w, http.StatusForbidden, refusal.Forbidden, fmt.Sprintf("only apps create consents; role %q may not create one on an app's behalf", who.role))
		return
	}
	body, err := decodeRequest(w, req)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, refusal.BadRequest, err.Error())
		return
	}
	c, err := r.Create(req.Context(), who.name, body)
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	w.Header().Set("Location", "/v1/consents/"+url.PathEscape(c.ID))
	writeJSON(w, http.StatusCreated, c)
}

func (r *Registry) serveGet(w http.ResponseWriter, req *http.Request) {
	who := callerOf(req)
	id := req.PathValue("id")
	c, err := r.Get(req.Context(), id)
	if err == nil && who.role == roleApp && c.App != who.name {
		err = fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	// Where the withdrawal stands at each vendor: pending, done, failed (with
	// the reason), or unavailable (the vendor's API has no erasure call).
	erasure, err := r.Erasures(req.Context(), id)
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		*Consent
		Erasure []Erasure `json:"erasure"`
	}{c, erasure})
}

func (r *Registry) serveList(w http.ResponseWriter, req *http.Request) {
	who := callerOf(req)
	subjects := req.URL.Query()["subject"]
	if len(subjects) != 1 || subjects[0] == "" {
		writeProblem(w, http.StatusBadRequest, refusal.BadRequest, "give exactly one subject query parameter")
		return
	}
	app := ""
	if who.role == roleApp {
		app = who.name
	}
	list, err := r.BySubject(req.Context(), app, subjects[0])
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Consents []Consent `json:"consents"`
	}{list})
}

func (r *Registry) serveRevoke(w http.ResponseWriter, req *http.Request) {
	who := callerOf(req)
	c, err := r.Revoke(req.Context(), who.name, who.role, req.PathValue("id"))
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// decodeRequest reads one JSON object and nothing after it. Its errors are fixed text
// naming at most a field: a decoder's own message can quote the input.
func decodeRequest(w http.ResponseWriter, req *http.Request) (Request, error) {
	var body Request
	dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(&body)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		return body, errors.New("body must be a single JSON object")
	}
	if err == nil {
		return body, nil
	}
	var (
		tooLarge  *http.MaxBytesError
		syntax    *json.SyntaxError
		wrongType *json.UnmarshalTypeError
		badTime   *time.ParseError
	)
	switch {
	case errors.As(err, &tooLarge):
		return body, fmt.Errorf("body is larger than %d KiB", maxBody>>10)
	case errors.Is(err, io.EOF):
		return body, errors.New("body is empty")
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return body, errors.New("body is not valid JSON")
	case errors.As(err, &wrongType):
		return body, fmt.Errorf("field %s has the wrong type", wrongType.Field)
	case errors.As(err, &badTime):
		return body, errors.New("expires_at must be an RFC 3339 time such as 2027-01-31T00:00:00Z")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return body, fmt.Errorf("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return body, errors.New("body is not a consent request")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, http.StatusInternalServerError, refusal.Internal, "encoding the answer failed")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}
