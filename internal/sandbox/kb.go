package sandbox

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/consentgate/consentgate/certs"
)

// KB's service description lists the data but no paths or OAuth2 endpoints: these are
// assumptions shared with the kb vendor profile.
const (
	kbIdentityPath = "/v1/clients/me/identity"
	kbVerifyPath   = "/v1/clients/me/identity/verification"
	kbLoginPath    = "/oauth2/authorize"
	kbTokenPath    = "/oauth2/token"
)

// kb stands in for KB API "Ověřování identity klientů KB" and its OAuth2 authorization-code
// consent: the login page (where the client would confirm with KB Klíč) approves the test
// user; the token endpoint, behind the same mTLS as the API, issues expiring access tokens
// with a refresh token.
type kb struct {
	apiKeyHeader string
	apiKey       *rotatingKey
	login        *authServer
	identity     kbIdentity
}

// kbIdentity has the field set KB's service description lists; the JSON names are an
// assumption, since the description gives no encoding.
type kbIdentity struct {
	GivenName                string             `json:"givenName"`
	Surname                  string             `json:"surname"`
	BirthNumber              string             `json:"birthNumber"`
	DateOfBirth              string             `json:"dateOfBirth"`
	Gender                   string             `json:"gender"`
	Citizenship              string             `json:"citizenship"`
	Nationality              string             `json:"nationality"`
	PoliticallyExposedPerson bool               `json:"politicallyExposedPerson"`
	PlaceOfBirth             string             `json:"placeOfBirth"`
	IdentityDocument         kbIdentityDocument `json:"identityDocument"`
	PermanentAddress         kbAddress          `json:"permanentAddress"`
	IdentifyingCompanyICO    string             `json:"identifyingCompanyIco"`
}

type kbIdentityDocument struct {
	Type           string `json:"type"`
	Number         string `json:"number"`
	IssuingCountry string `json:"issuingCountry"`
	PlaceOfIssue   string `json:"placeOfIssue"`
	IssueDate      string `json:"issueDate"`
	ExpiryDate     string `json:"expiryDate"`
}

type kbAddress struct {
	Street            string `json:"street"`
	DescriptiveNumber string `json:"descriptiveNumber"`
	OrientationNumber string `json:"orientationNumber,omitempty"`
	PostalCode        string `json:"postalCode"`
	Municipality      string `json:"municipality"`
	Country           string `json:"country"`
}

type kbErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func newKB(cfg Config) *kb {
	p := kbClient()
	return &kb{
		apiKeyHeader: cfg.KBAPIKeyHeader,
		apiKey:       newRotatingKey(cfg.Credentials.KBAPIKey),
		// The registered redirect URI, matched exactly; PKCE required (both assumptions).
		login: newAuthServer(cfg.Credentials.KBClientID, cfg.Credentials.KBClientSecret,
			redirectExact, true, cfg.KBTokenTTL, cfg.now),
		identity: kbIdentity{
			GivenName:                p.GivenName,
			Surname:                  p.Surname,
			BirthNumber:              p.BirthNumber,
			DateOfBirth:              p.Birth.Format(time.DateOnly),
			Gender:                   p.gender(),
			Citizenship:              p.Citizenship,
			Nationality:              p.Nationality,
			PoliticallyExposedPerson: p.PEP,
			PlaceOfBirth:             p.BirthPlace,
			IdentityDocument: kbIdentityDocument{
				Type:           p.Document.Type,
				Number:         p.Document.Number,
				IssuingCountry: p.Document.Country,
				PlaceOfIssue:   p.Document.PlaceOfIssue,
				IssueDate:      p.Document.Issued.Format(time.DateOnly),
				ExpiryDate:     p.Document.Valid.Format(time.DateOnly),
			},
			PermanentAddress: kbAddress{
				Street:            p.Address.Street,
				DescriptiveNumber: p.Address.DescriptiveNumber,
				OrientationNumber: p.Address.OrientationNumber,
				PostalCode:        p.Address.PostalCode,
				Municipality:      p.Address.Municipality,
				Country:           p.Address.Country,
			},
			IdentifyingCompanyICO: kbIdentifyingCompanyICO(),
		},
	}
}

// kbCertificateKinds are the certificates KB's terms list: qualified company
// certificates and seals, and commercial technological server certificates.
var kbCertificateKinds = []certs.Kind{certs.KindQualifiedSeal, certs.KindQualifiedCompany, certs.KindServer}

// ServeHTTP serves the login page to the client's browser, which holds no certificate. Every
// other request is checked as KB checks it, transport first: the certificate (issuer verified
// in the handshake, organisation name and IČO here); then the token endpoint, or the API key
// of the portal subscription and the client's OAuth2 access token.
func (h *kb) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == kbLoginPath {
		h.login.authorize(w, r)
		return
	}
	cert := verifiedClientCert(r)
	if cert == nil {
		kbError(w, http.StatusForbidden, "CLIENT_CERTIFICATE_REQUIRED",
			"a client certificate from I.CA or PostSignum carrying the organisation name and IČO is required")
		return
	}
	if k := certs.KindOf(cert); !slices.Contains(kbCertificateKinds, k) {
		kbError(w, http.StatusForbidden, "CLIENT_CERTIFICATE_TYPE",
			fmt.Sprintf("client certificate %q is a %s certificate; KB takes a qualified company certificate or seal, or a commercial server certificate",
				cert.Subject.CommonName, k))
		return
	}
	if certs.Organization(cert) == "" {
		kbError(w, http.StatusForbidden, "CLIENT_CERTIFICATE_NO_ORGANIZATION",
			fmt.Sprintf("client certificate %q carries no organisation name (O)", cert.Subject.CommonName))
		return
	}
	if _, _, err := certs.ICO(cert); err != nil {
		kbError(w, http.StatusForbidden, "CLIENT_CERTIFICATE_NO_ICO",
			fmt.Sprintf("client certificate %q carries no IČO; KB needs it as organizationIdentifier NTRCZ-<IČO>, an 8-digit serialNumber or in the CN: %v",
				cert.Subject.CommonName, err))
		return
	}
	if r.URL.Path == kbTokenPath {
		h.login.token(w, r)
		return
	}
	method, ok := map[string]string{kbIdentityPath: http.MethodGet, kbVerifyPath: http.MethodPost}[r.URL.Path]
	if !ok {
		kbError(w, http.StatusNotFound, "NOT_FOUND", "no such resource")
		return
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		kbError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "only "+method+" is allowed on this resource")
		return
	}
	switch key := r.Header.Get(h.apiKeyHeader); {
	case key == "":
		kbError(w, http.StatusUnauthorized, "API_KEY_MISSING", fmt.Sprintf("the API key header %s is missing", h.apiKeyHeader))
		return
	case !secretEqual(key, h.apiKey.get()):
		kbError(w, http.StatusUnauthorized, "API_KEY_INVALID", "the API key is not valid for this service")
		return
	}
	token, ok := bearerToken(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="kb"`)
		kbError(w, http.StatusUnauthorized, "ACCESS_TOKEN_MISSING", "a bearer access token is required")
		return
	}
	if known, live := h.login.check(token); !known || !live {
		w.Header().Set("WWW-Authenticate", `Bearer realm="kb", error="invalid_token"`)
		kbError(w, http.StatusUnauthorized, "ACCESS_TOKEN_INVALID", "the access token is invalid or has expired")
		return
	}
	if r.URL.Path == kbVerifyPath {
		h.verify(w, r)
		return
	}
	writeJSON(w, http.StatusOK, h.identity)
}

// verify is KB's second mode: the client typed the data in and KB confirms it. The
// answer says, for each field sent and only for those, whether it matches the
// client's record, and verified when all do; KB's own values never leave. A field
// the record does not have, or one that is not text, is refused: nothing but what
// can be compared may be sent.
func (h *kb) verify(w http.ResponseWriter, r *http.Request) {
	var claims map[string]any
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	if err := dec.Decode(&claims); err != nil || dec.More() {
		kbError(w, http.StatusBadRequest, "INVALID_BODY", "the body must be one JSON object of the fields to verify")
		return
	}
	raw, _ := json.Marshal(h.identity)
	var record map[string]any
	json.Unmarshal(raw, &record)
	matches, verified, err := kbMatch(claims, record, "")
	switch {
	case err != nil:
		kbError(w, http.StatusBadRequest, "FIELD_NOT_VERIFIABLE", err.Error())
	case len(matches) == 0:
		kbError(w, http.StatusBadRequest, "NOTHING_TO_VERIFY", "name at least one field to verify")
	default:
		writeJSON(w, http.StatusOK, map[string]any{"verified": verified, "matches": matches})
	}
}

// kbMatch compares the claimed fields with the record's, recursively, as KB would
// compare what a client typed: ignoring case, spaces at the ends, and the slash of
// a birth number.
func kbMatch(claims, record map[string]any, prefix string) (map[string]any, bool, error) {
	matches, all := map[string]any{}, true
	for name, claim := range claims {
		switch c := claim.(type) {
		case string:
			have, ok := record[name].(string)
			if !ok {
				return nil, false, fmt.Errorf("%s%s cannot be verified", prefix, name)
			}
			norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), "/", "")) }
			matches[name] = norm(c) == norm(have)
			all = all && matches[name].(bool)
		case map[string]any:
			sub, ok := record[name].(map[string]any)
			if !ok {
				return nil, false, fmt.Errorf("%s%s cannot be verified", prefix, name)
			}
			m, ok, err := kbMatch(c, sub, prefix+name+".")
			if err != nil {
				return nil, false, err
			}
			if len(m) > 0 {
				matches[name], all = m, all && ok
			}
		default:
			return nil, false, fmt.Errorf("%s%s must be text", prefix, name)
		}
	}
	return matches, all, nil
}

func kbError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, kbErrorBody{Code: code, Message: message})
}
