package sandbox

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// The FinID documentation published so far names no paths; these are assumptions shared with
// the finid vendor profile.
const (
	finidTokenPath         = "/oauth/token"
	finidVerificationsPath = "/api/v1/verifications"
)

// finid stands in for FinID two-factor identity authentication (NPCK). One verification
// request starts the whole check (liveness, comparison with the state photo, SMS code,
// consent), which the end user then goes through: the verification is pending, then
// succeeded, with the person's data, or failed, with a reason and no personal data. The
// sandbox decides from the request: a photo whose bytes start with SPOOF fails liveness,
// one starting with OTHER does not match the state photo, a phone ending in 0000 never
// confirms the SMS code; anything else succeeds. The request is answered pending; every
// read of the verification gives its outcome.
type finid struct {
	clientID, clientSecret string
	ttl                    time.Duration
	now                    func() time.Time
	mux                    *http.ServeMux

	mu            sync.Mutex
	tokens        map[string]time.Time         // access token → issued at
	verifications map[string]finidVerification // as they end; the answer to the request is pending
}

type finidVerification struct {
	ID        string       `json:"id"`
	Status    string       `json:"status"` // pending, succeeded, failed
	Reason    string       `json:"reason,omitempty"`
	CreatedAt string       `json:"createdAt"`
	Person    *finidPerson `json:"person,omitempty"`
}

// FinID verification states.
const (
	finidPending   = "pending"
	finidSucceeded = "succeeded"
	finidFailed    = "failed"
)

type finidPerson struct {
	IIN                string `json:"iin"`
	Surname            string `json:"surname"`
	Name               string `json:"name"`
	Patronymic         string `json:"patronymic"`
	BirthDate          string `json:"birthDate"`
	Gender             string `json:"gender"`
	BirthPlace         string `json:"birthPlace"`
	Nationality        string `json:"nationality"`
	Citizenship        string `json:"citizenship"`
	Phone              string `json:"phone"`
	DocumentType       string `json:"documentType"`
	DocumentNumber     string `json:"documentNumber"`
	DocumentIssuer     string `json:"documentIssuer"`
	DocumentIssueDate  string `json:"documentIssueDate"`
	DocumentExpiryDate string `json:"documentExpiryDate"`
}

func newFinID(cfg Config) *finid {
	h := &finid{
		clientID:      cfg.Credentials.FinIDClientID,
		clientSecret:  cfg.Credentials.FinIDClientSecret,
		ttl:           cfg.FinIDTokenTTL,
		now:           cfg.now,
		mux:           http.NewServeMux(),
		tokens:        make(map[string]time.Time),
		verifications: make(map[string]finidVerification),
	}
	h.mux.HandleFunc(finidTokenPath, h.token)
	h.mux.HandleFunc(finidVerificationsPath, h.createVerification)
	h.mux.HandleFunc(finidVerificationsPath+"/{id}", h.getVerification)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		finidError(w, http.StatusNotFound, "not_found", "no such resource")
	})
	return h
}

func (h *finid) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// token is an OAuth2 client-credentials token endpoint (RFC 6749 §4.4). It takes the client
// in HTTP Basic or in the form, because golang.org/x/oauth2 tries both, but not both at once.
func (h *finid) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		finidError(w, http.StatusMethodNotAllowed, "invalid_request", "the token endpoint takes POST")
		return
	}
	// PostForm, not Form: credentials in the query string are not accepted.
	if err := r.ParseForm(); err != nil {
		finidError(w, http.StatusBadRequest, "invalid_request", "the body is not a form")
		return
	}
	switch grant := r.PostForm.Get("grant_type"); grant {
	case "client_credentials":
	case "":
		finidError(w, http.StatusBadRequest, "invalid_request", "grant_type is required")
		return
	default:
		finidError(w, http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported")
		return
	}
	id, secret, ok := clientOf(r)
	if !ok {
		finidError(w, http.StatusBadRequest, "invalid_request", "send the client either in HTTP Basic or in the form, not both")
		return
	}
	if id == "" || !secretEqual(id, h.clientID) || !secretEqual(secret, h.clientSecret) {
		w.Header().Set("WWW-Authenticate", `Basic realm="finid"`)
		finidError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	token, err := randomSecret(32)
	if err != nil {
		finidError(w, http.StatusInternalServerError, "server_error", "could not issue a token")
		return
	}
	h.mu.Lock()
	now := h.now()
	for t, issued := range h.tokens {
		if h.expired(issued, now) {
			delete(h.tokens, t)
		}
	}
	h.tokens[token] = now
	h.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": token,
		"token_type":   "Bearer",
		"expires_in":   int(h.ttl.Seconds()),
	})
}

func (h *finid) expired(issued, now time.Time) bool { return now.Sub(issued) >= h.ttl }

// authorize answers 401 unless the request carries a live token it issued.
func (h *finid) authorize(w http.ResponseWriter, r *http.Request) bool {
	token, ok := bearerToken(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="finid"`)
		finidError(w, http.StatusUnauthorized, "invalid_request", "a bearer access token is required")
		return false
	}
	h.mu.Lock()
	issued, known := h.tokens[token]
	expired := known && h.expired(issued, h.now())
	if expired {
		delete(h.tokens, token)
	}
	h.mu.Unlock()
	if !known || expired {
		description := "the access token is unknown"
		if expired {
			description = "the access token has expired"
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="finid", error="invalid_token"`)
		finidError(w, http.StatusUnauthorized, "invalid_token", description)
		return false
	}
	return true
}

func (h *finid) createVerification(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		finidError(w, http.StatusMethodNotAllowed, "invalid_request", "verifications are created with POST")
		return
	}
	if !h.authorize(w, r) {
		return
	}
	var req struct {
		IIN   string `json:"iin"`
		Phone string `json:"phone"`
		Photo string `json:"photo"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		finidError(w, http.StatusBadRequest, "invalid_request", jsonProblem("", err))
		return
	}
	if _, _, err := parseIIN(req.IIN); err != nil {
		finidError(w, http.StatusBadRequest, "invalid_request", "iin: "+err.Error())
		return
	}
	if digits, ok := strings.CutPrefix(req.Phone, "+7"); !ok || !allDigits(digits, 10) {
		finidError(w, http.StatusBadRequest, "invalid_request", "phone: a Kazakh number is +7 and 10 digits")
		return
	}
	photo, err := base64.StdEncoding.DecodeString(req.Photo)
	if err != nil || len(photo) == 0 {
		finidError(w, http.StatusBadRequest, "invalid_request", "photo: a non-empty base64 image is required")
		return
	}
	p := kazakhPersonFor(req.IIN)
	v := finidVerification{
		ID:        uuid.NewString(),
		Status:    finidSucceeded,
		CreatedAt: h.now().UTC().Format(time.RFC3339),
		Person: &finidPerson{
			IIN:                p.IIN,
			Surname:            p.LastName,
			Name:               p.FirstName,
			Patronymic:         p.Patronymic,
			BirthDate:          p.Birth.Format(time.DateOnly),
			Gender:             p.gender(),
			BirthPlace:         p.BirthPlace,
			Nationality:        p.Nationality,
			Citizenship:        "KZ",
			Phone:              req.Phone,
			DocumentType:       "ID_CARD",
			DocumentNumber:     p.DocumentNumber,
			DocumentIssuer:     p.Authority,
			DocumentIssueDate:  p.DocumentIssued.Format(time.DateOnly),
			DocumentExpiryDate: p.DocumentValid.Format(time.DateOnly),
		},
	}
	switch {
	case bytes.HasPrefix(photo, []byte("SPOOF")):
		v.Status, v.Reason, v.Person = finidFailed, "liveness_failed", nil
	case bytes.HasPrefix(photo, []byte("OTHER")):
		v.Status, v.Reason, v.Person = finidFailed, "photo_mismatch", nil
	case strings.HasSuffix(req.Phone, "0000"):
		v.Status, v.Reason, v.Person = finidFailed, "sms_not_confirmed", nil
	}
	h.mu.Lock()
	h.verifications[v.ID] = v
	h.mu.Unlock()
	w.Header().Set("Location", finidVerificationsPath+"/"+v.ID)
	writeJSON(w, http.StatusOK, finidVerification{ID: v.ID, Status: finidPending, CreatedAt: v.CreatedAt})
}

func (h *finid) getVerification(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		finidError(w, http.StatusMethodNotAllowed, "invalid_request", "a verification is read with GET")
		return
	}
	if !h.authorize(w, r) {
		return
	}
	h.mu.Lock()
	v, ok := h.verifications[r.PathValue("id")]
	h.mu.Unlock()
	if !ok {
		finidError(w, http.StatusNotFound, "not_found", "verification not found")
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// finidError uses the OAuth2 error shape throughout, so one decoder reads every refusal.
func finidError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}
