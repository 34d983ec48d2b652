package sandbox

import (
	"bytes"
	"compress/gzip"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	airbankBasePath = "/openapi/glClientIdentity/v1/"
	// airbankLoginPath is the login page: https://ib.airbank.cz/ in production, a host of its
	// own; the sandbox serves it beside the API.
	airbankLoginPath   = "/"
	airbankTokenPath   = "/openapi/glClientIdentity/abauth/token"
	airbankAPIName     = "glClientIdentity" // the <API> of the per-API rate-limit headers
	airbankContentType = "application/json;charset=UTF-8"
	airbankBankCode    = "3030"
	airbankBIC         = "AIRACZPP"
)

// airbank stands in for Air Bank OpenAPI GL Client Identity v1 and its OAuth2
// authorization-code login: the login page approves the test user, the token endpoint issues
// access tokens that live AirbankTokenTTL with a refresh token.
type airbank struct {
	apiKey *rotatingKey
	login  *authServer
	limit  int
	now    func() time.Time
	// resources are encoded once: the data never changes, only the envelope does.
	resources map[string][]byte

	mu          sync.Mutex
	windowStart time.Time
	used        int
}

type airbankPersonalData struct {
	Gender                   string          `json:"gender"`
	Names                    string          `json:"names"`
	Surname                  string          `json:"surname"`
	BirthNumber              string          `json:"birthNumber"`
	BirthDate                string          `json:"birthDate"`
	BirthPlace               string          `json:"birthPlace"`
	PermanentAddress         airbankAddress  `json:"permanentAddress"`
	Citizenship              string          `json:"citizenship"`
	PrimaryPersonalDocument  airbankDocument `json:"primaryPersonalDocument"`
	PoliticallyExposedPerson bool            `json:"politicallyExposedPerson"`
	PhysicallyIdentified     bool            `json:"physicallyIdentified"`
}

type airbankAddress struct {
	Country        string `json:"country"`
	Municipality   string `json:"municipality"`
	Street         string `json:"street,omitempty"`
	Locality       string `json:"locality,omitempty"`
	BuildingNumber string `json:"buildingNumber"`
	PostalCode     string `json:"postalCode"`
}

type airbankDocument struct {
	Type    string `json:"type"`
	Number  string `json:"number"`
	ValidTo int64  `json:"validTo"` // Unix milliseconds
	Country string `json:"country"`
}

type airbankAccountNumber struct {
	Prefix        string `json:"prefix"`
	AccountNumber string `json:"accountNumber"`
	BankCode      string `json:"bankCode"`
	IBAN          string `json:"iban"`
	BIC           string `json:"bic"`
}

type airbankError struct {
	Code     string `json:"code"`
	Message  string `json:"message"`
	Severity string `json:"severity"`
}

func newAirbank(cfg Config) *airbank {
	p := airbankClient()
	var accounts []map[string]airbankAccountNumber
	for _, first9 := range []string{"123533501", "228713904"} { // current, savings
		number := czechAccountNumber(first9)
		accounts = append(accounts, map[string]airbankAccountNumber{"accountNumber": {
			Prefix:        "000000",
			AccountNumber: number,
			BankCode:      airbankBankCode,
			IBAN:          czechIBAN(airbankBankCode, "000000", number),
			BIC:           airbankBIC,
		}})
	}
	return &airbank{
		apiKey: newRotatingKey(cfg.Credentials.AirbankAPIKey),
		// Air Bank documents its login parameters; PKCE is not among them, so a challenge
		// is ignored like any unknown parameter.
		login: newAuthServer(cfg.Credentials.AirbankClientID, cfg.Credentials.AirbankClientSecret,
			redirectPrefix, false, cfg.AirbankTokenTTL, cfg.now),
		limit: cfg.AirbankRateLimit,
		now:   cfg.now,
		resources: map[string][]byte{
			"personalData": mustJSON(airbankPersonalData{
				Gender:      p.gender(),
				Names:       p.GivenName,
				Surname:     p.Surname,
				BirthNumber: p.BirthNumber,
				BirthDate:   p.Birth.Format(time.DateOnly),
				BirthPlace:  p.BirthPlace,
				PermanentAddress: airbankAddress{
					Country:        p.Address.Country,
					Municipality:   p.Address.Municipality,
					Street:         p.Address.Street,
					BuildingNumber: p.Address.buildingNumber(),
					PostalCode:     p.Address.PostalCode,
				},
				Citizenship: p.Citizenship,
				PrimaryPersonalDocument: airbankDocument{
					Type:    p.Document.Type,
					Number:  p.Document.Number,
					ValidTo: p.Document.Valid.UnixMilli(),
					Country: p.Document.Country,
				},
				PoliticallyExposedPerson: p.PEP,
				PhysicallyIdentified:     true,
			}),
			"accounts": mustJSON(map[string]any{"data": accounts}),
			"cards": mustJSON(map[string]any{"data": []map[string]string{
				{"cardNumber": "516822******4821"},
				{"cardNumber": "516822******9043"},
			}}),
		},
	}
}

// ServeHTTP answers the login page and the token endpoint (answering as RFC 6749 prescribes,
// outside the API's quota), and the API in the order an API gateway would: quota, route, API
// key, OAuth2 token. Every API answer, refusals and 429 included, carries the quota headers.
func (h *airbank) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case airbankLoginPath:
		h.login.authorize(w, r)
		return
	case airbankTokenPath:
		h.login.token(w, r)
		return
	}
	remaining, reset, ok := h.take()
	hdr := w.Header()
	hdr.Set("X-Rate-Limit-Limit", strconv.Itoa(h.limit))
	hdr.Set("X-Rate-Limit-Remaining", strconv.Itoa(remaining))
	hdr.Set("X-Rate-Limit-Reset", strconv.Itoa(reset))
	// Assigned directly so HTTP/1.1 carries the documented spelling, not Go's canonical form.
	hdr["X-RateLimit-Limit-"+airbankAPIName+"-Minute"] = []string{strconv.Itoa(h.limit)}
	hdr["X-RateLimit-Remaining-"+airbankAPIName+"-Minute"] = []string{strconv.Itoa(remaining)}
	if !ok {
		hdr.Set("Content-Length", "0")
		w.WriteHeader(http.StatusTooManyRequests) // the documented empty body
		return
	}

	name, found := strings.CutPrefix(r.URL.Path, airbankBasePath)
	body, known := h.resources[name]
	if !found || !known {
		h.writeError(w, r, http.StatusNotFound, "OBJECT_NOT_FOUND", "resource not found")
		return
	}
	if r.Method != http.MethodGet {
		hdr.Set("Allow", http.MethodGet)
		h.writeError(w, r, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "method "+r.Method+" is not allowed for this resource")
		return
	}
	switch key := r.Header.Get("apikey"); {
	case key == "":
		h.writeError(w, r, http.StatusUnauthorized, "API_KEY_MISSING", "apikey header is missing")
		return
	case !secretEqual(key, h.apiKey.get()):
		h.writeError(w, r, http.StatusUnauthorized, "API_KEY_INVALID", "apikey is not valid")
		return
	}
	// The OAuth2 layer answers in RFC 6750 style, with the exact bodies Air Bank documents.
	token, present := bearerToken(r)
	if !present {
		hdr.Set("WWW-Authenticate", `Bearer error="invalid_request"`)
		h.write(w, r, http.StatusUnauthorized, mustJSON(map[string]string{
			"error": "invalid_request", "error_description": "The access token is missing",
		}))
		return
	}
	if known, live := h.login.check(token); !known || !live {
		hdr.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		h.write(w, r, http.StatusUnauthorized, mustJSON(map[string]string{
			"error": "invalid_token", "error_description": "The access token is invalid or has expired",
		}))
		return
	}
	h.write(w, r, http.StatusOK, body)
}

// take counts one request against the current one-minute window and says how many remain
// and how many whole seconds are left until the window resets.
func (h *airbank) take() (remaining, resetSeconds int, ok bool) {
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.windowStart.IsZero() || !now.Before(h.windowStart.Add(time.Minute)) {
		h.windowStart, h.used = now, 0
	}
	h.used++
	resetSeconds = int(math.Ceil(h.windowStart.Add(time.Minute).Sub(now).Seconds()))
	return max(h.limit-h.used, 0), resetSeconds, h.used <= h.limit
}

func (h *airbank) writeError(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	h.write(w, r, status, mustJSON(map[string][]airbankError{
		"errors": {{Code: code, Message: message, Severity: "ERROR"}},
	}))
}

// write sends body gzip-encoded when the client asked for it, as Air Bank does to save
// bandwidth.
func (h *airbank) write(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	w.Header().Add("Vary", "Accept-Encoding")
	if acceptsGzip(r.Header) {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(body) // writes to a bytes.Buffer cannot fail
		_ = zw.Close()
		body = buf.Bytes()
		w.Header().Set("Content-Encoding", "gzip")
	}
	writeBody(w, status, airbankContentType, body)
}

// acceptsGzip reads Accept-Encoding with its q-values: "gzip;q=0" is a refusal, not a request.
func acceptsGzip(h http.Header) bool {
	for _, v := range h.Values("Accept-Encoding") {
		for _, part := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
				continue
			}
			q := 1.0
			for _, p := range strings.Split(params, ";") {
				if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(k, "q") {
					if f, err := strconv.ParseFloat(v, 64); err == nil {
						q = f
					}
				}
			}
			return q > 0
		}
	}
	return false
}
