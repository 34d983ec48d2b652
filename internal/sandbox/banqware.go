package sandbox

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Banqware's onboarding guide gives the management, user, consent and update paths below.
// Two things are assumptions, which the banqware vendor profile must share:
//   - the data paths, which the guide only calls "account information resources" and "KYC
//     resources": banqwareAccounts and banqwareKYC;
//   - banqwareAuthorize, which stands for the bank's login page: the user's browser opens it
//     (no client certificate), the consent becomes "given", and the browser is redirected
//     (302) to the consent's redirectUrl with consentId and status in the query.
const (
	banqwareBase       = "/sandbox"
	banqwareTenantURLs = banqwareBase + "/management-resources/api/tenant/urls"
	banqwareUsers      = banqwareBase + "/user-resources/api/user"
	banqwareConsents   = banqwareBase + "/consent-resources/api/user/id/{userId}/consent"
	banqwareConsent    = banqwareConsents + "/{consentId}"
	banqwareUpdates    = banqwareBase + "/update-resources/api/user/id/{userId}/consent/{consentId}/update"
	banqwareUpdate     = banqwareBase + "/update-resources/api/user/id/{userId}/update/{updateId}"
	banqwareAccounts   = banqwareBase + "/account-info-resources/api/user/id/{userId}/accounts"
	banqwareKYC        = banqwareBase + "/kyc-resources/api/user/id/{userId}/kyc"
	banqwareAuthorize  = banqwareBase + "/authorize/{consentId}"
)

// Consent and update statuses as the guide names them.
const (
	consentRequested = "requested"
	consentGiven     = "given"
	updateCompleted  = "completed"
)

// banqware stands in for the banqware PSD2 API Hub sandbox. The hub fetches a user's data from
// the bank during an update; here the update completes at once and the data is the invented
// client of banqwareClient, kept per consent so that deleting the consent erases it.
type banqware struct {
	log       *slog.Logger
	callbacks *http.Client // nil: update callbacks are not sent
	origin    string       // for authorization URLs, which the user's browser opens
	now       func() time.Time
	mux       *http.ServeMux

	mu           sync.Mutex
	redirectURLs []string
	callbackURLs []string
	users        map[string]*bqUser    // by userId
	clientIDs    map[string]string     // clientId → userId
	consents     map[string]*bqConsent // by consentId
	updates      map[string]*bqUpdate  // by updateId
	acquisitions int                   // orders bqData.seq
}

type bqUser struct {
	UserID   string `json:"userId"`
	ClientID string `json:"clientId,omitempty"`
}

type bqConsent struct {
	ConsentID        string     `json:"consentId"`
	UserID           string     `json:"userId"`
	BankID           string     `json:"bankId"`
	BankIDType       string     `json:"bankIdType"`
	Status           string     `json:"status"`
	AuthorizationURL string     `json:"authorizationUrl"`
	RedirectURL      string     `json:"redirectUrl"`
	CreatedAt        time.Time  `json:"createdAt"`
	GivenAt          *time.Time `json:"givenAt,omitempty"`

	// data is what the latest completed update acquired under this consent.
	data *bqData
}

type bqUpdate struct {
	UpdateID    string    `json:"updateId"`
	UserID      string    `json:"userId"`
	ConsentID   string    `json:"consentId"`
	Status      string    `json:"status"`
	CallbackURL string    `json:"callbackUrl,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
	CompletedAt time.Time `json:"completedAt"`
}

type bqData struct {
	seq      int // later acquisitions have higher numbers
	Accounts []bqAccount
	KYC      bqKYC
}

type bqAccount struct {
	AccountID string    `json:"accountId"`
	ConsentID string    `json:"consentId"`
	BankID    string    `json:"bankId"`
	IBAN      string    `json:"iban"`
	Currency  string    `json:"currency"`
	Name      string    `json:"name"`
	Type      string    `json:"type"`
	OwnerName string    `json:"ownerName"`
	Balance   bqBalance `json:"balance"`
}

type bqBalance struct {
	Amount   string `json:"amount"` // a decimal string, as banking APIs send money
	Currency string `json:"currency"`
}

type bqKYC struct {
	ConsentID   string    `json:"consentId"`
	BankID      string    `json:"bankId"`
	FirstName   string    `json:"firstName"`
	LastName    string    `json:"lastName"`
	BirthDate   string    `json:"birthDate"`
	BirthNumber string    `json:"birthNumber"`
	Nationality string    `json:"nationality"`
	Address     bqAddress `json:"address"`
	Document    bqDoc     `json:"identityDocument"`
}

type bqAddress struct {
	Street         string `json:"street"`
	BuildingNumber string `json:"buildingNumber"`
	City           string `json:"city"`
	PostalCode     string `json:"postalCode"`
	Country        string `json:"country"`
}

type bqDoc struct {
	Type       string `json:"type"`
	Number     string `json:"number"`
	ValidUntil string `json:"validUntil"`
}

func newBanqware(cfg Config, origin string) *banqware {
	h := &banqware{
		log:       cfg.Logger,
		origin:    origin,
		now:       cfg.now,
		mux:       http.NewServeMux(),
		users:     make(map[string]*bqUser),
		clientIDs: make(map[string]string),
		consents:  make(map[string]*bqConsent),
		updates:   make(map[string]*bqUpdate),
	}
	for pattern, handle := range map[string]http.HandlerFunc{
		banqwareTenantURLs: h.tenantURLs,
		banqwareUsers:      h.createUser,
		banqwareConsents:   h.createConsent,
		banqwareConsent:    h.consent,
		banqwareUpdates:    h.createUpdate,
		banqwareUpdate:     h.update,
		banqwareAccounts:   h.accounts,
		banqwareKYC:        h.kyc,
		banqwareAuthorize:  h.authorize,
	} {
		h.mux.HandleFunc(pattern, handle)
	}
	if cfg.CallbackRoots != nil {
		h.callbacks = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: cfg.CallbackRoots, MinVersion: tls.VersionTLS12}}}
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, http.StatusNotFound, "no such resource")
	})
	return h
}

// ServeHTTP refuses every request without a verified client certificate, except the stand-in
// for the bank's login page, which an end user's browser opens.
func (h *banqware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if verifiedClientCert(r) == nil && !h.isAuthorizePage(r) {
		h.fail(w, r, http.StatusForbidden, "a client certificate issued from your CSR is required")
		return
	}
	h.mux.ServeHTTP(w, r)
}

func (h *banqware) isAuthorizePage(r *http.Request) bool {
	_, pattern := h.mux.Handler(r)
	return pattern == banqwareAuthorize
}

func (h *banqware) tenantURLs(w http.ResponseWriter, r *http.Request) {
	if !h.allow(w, r, http.MethodPut) {
		return
	}
	var req struct {
		RedirectURLs       []string `json:"redirectUrls"`
		UpdateCallbackURLs []string `json:"updateCallbackUrls"`
	}
	if !h.decode(w, r, &req) {
		return
	}
	if len(req.RedirectURLs) == 0 {
		h.fail(w, r, http.StatusBadRequest, "redirectUrls: at least one redirect URL is required")
		return
	}
	for _, list := range []struct {
		field string
		urls  []string
	}{{"redirectUrls", req.RedirectURLs}, {"updateCallbackUrls", req.UpdateCallbackURLs}} {
		for _, u := range list.urls {
			if !absoluteHTTPURL(u) {
				h.fail(w, r, http.StatusBadRequest, list.field+": "+u+" is not an absolute http(s) URL")
				return
			}
		}
	}
	h.mu.Lock()
	h.redirectURLs = slices.Clone(req.RedirectURLs)
	h.callbackURLs = slices.Clone(req.UpdateCallbackURLs)
	h.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string][]string{
		"redirectUrls":       req.RedirectURLs,
		"updateCallbackUrls": nonNil(req.UpdateCallbackURLs),
	})
}

func (h *banqware) createUser(w http.ResponseWriter, r *http.Request) {
	if !h.allow(w, r, http.MethodPost) {
		return
	}
	var req struct {
		ClientID string `json:"clientId"`
	}
	if !h.decode(w, r, &req) {
		return
	}
	u := &bqUser{UserID: uuid.NewString(), ClientID: req.ClientID}
	h.mu.Lock()
	defer h.mu.Unlock()
	// The client id works in place of the user id, so two users cannot share one.
	if u.ClientID != "" {
		if _, taken := h.clientIDs[u.ClientID]; taken {
			h.fail(w, r, http.StatusConflict, "a user with this clientId already exists")
			return
		}
		h.clientIDs[u.ClientID] = u.UserID
	}
	h.users[u.UserID] = u
	writeJSON(w, http.StatusCreated, u)
}

func (h *banqware) createConsent(w http.ResponseWriter, r *http.Request) {
	if !h.allow(w, r, http.MethodPost) {
		return
	}
	var req struct {
		BankID      string `json:"bankId"`
		BankIDType  string `json:"bankIdType"`
		RedirectURL string `json:"redirectUrl"`
	}
	if !h.decode(w, r, &req) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	userID, ok := h.user(w, r)
	if !ok {
		return
	}
	switch {
	case req.BankID == "" || req.BankIDType == "":
		h.fail(w, r, http.StatusBadRequest, "bankId and bankIdType are required")
		return
	case !slices.Contains(h.redirectURLs, req.RedirectURL):
		h.fail(w, r, http.StatusBadRequest, "redirectUrl must be one of the tenant's registered redirect URLs")
		return
	}
	id := uuid.NewString()
	c := &bqConsent{
		ConsentID:        id,
		UserID:           userID,
		BankID:           req.BankID,
		BankIDType:       req.BankIDType,
		Status:           consentRequested,
		AuthorizationURL: h.origin + strings.Replace(banqwareAuthorize, "{consentId}", id, 1),
		RedirectURL:      req.RedirectURL,
		CreatedAt:        h.now().UTC(),
	}
	h.consents[id] = c
	writeJSON(w, http.StatusCreated, c)
}

// consent reads (GET) or erases (DELETE) a consent; erasing also drops every update made
// under it and the data those updates acquired.
func (h *banqware) consent(w http.ResponseWriter, r *http.Request) {
	if !h.allow(w, r, http.MethodGet, http.MethodDelete) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.userConsent(w, r)
	if !ok {
		return
	}
	if r.Method == http.MethodGet {
		writeJSON(w, http.StatusOK, c)
		return
	}
	delete(h.consents, c.ConsentID)
	for id, u := range h.updates {
		if u.ConsentID == c.ConsentID {
			delete(h.updates, id)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// authorize is the stand-in for the user's login at the bank: it gives the consent.
func (h *banqware) authorize(w http.ResponseWriter, r *http.Request) {
	if !h.allow(w, r, http.MethodGet) {
		return
	}
	h.mu.Lock()
	c := h.consents[r.PathValue("consentId")]
	if c != nil && c.Status == consentRequested {
		now := h.now().UTC()
		c.Status, c.GivenAt = consentGiven, &now
	}
	h.mu.Unlock()
	if c == nil {
		h.fail(w, r, http.StatusNotFound, "consent not found")
		return
	}
	back, err := url.Parse(c.RedirectURL)
	if err != nil { // registered URLs were checked; this is defence only
		h.fail(w, r, http.StatusInternalServerError, "the consent's redirect URL does not parse")
		return
	}
	q := back.Query()
	q.Set("consentId", c.ConsentID)
	q.Set("status", consentGiven)
	back.RawQuery = q.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (h *banqware) createUpdate(w http.ResponseWriter, r *http.Request) {
	if !h.allow(w, r, http.MethodPost) {
		return
	}
	var req struct {
		CallbackURL string `json:"callbackUrl"`
	}
	if !h.decode(w, r, &req) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.userConsent(w, r)
	if !ok {
		return
	}
	if c.Status != consentGiven {
		h.fail(w, r, http.StatusConflict, "the consent is "+c.Status+": the user has not authorised it at the bank yet")
		return
	}
	if req.CallbackURL != "" && !slices.Contains(h.callbackURLs, req.CallbackURL) {
		h.fail(w, r, http.StatusBadRequest, "callbackUrl must be one of the tenant's registered update callback URLs")
		return
	}
	now := h.now().UTC()
	u := &bqUpdate{
		UpdateID:    uuid.NewString(),
		UserID:      c.UserID,
		ConsentID:   c.ConsentID,
		Status:      updateCompleted,
		CallbackURL: req.CallbackURL,
		CreatedAt:   now,
		CompletedAt: now,
	}
	h.updates[u.UpdateID] = u
	h.acquisitions++
	c.data = banqwareData(c, h.acquisitions)
	h.postUpdateCallback(u)
	writeJSON(w, http.StatusCreated, u)
}

// postUpdateCallback tells the tenant that an update changed status, by POSTing to the
// update's callbackUrl: an inbound call, which consentgate receives on its callbacks
// listener. The caller holds h.mu, so the POST is made from its own goroutine.
func (h *banqware) postUpdateCallback(u *bqUpdate) {
	if u.CallbackURL == "" || h.callbacks == nil {
		return
	}
	body, _ := json.Marshal(map[string]string{"updateId": u.UpdateID, "userId": u.UserID,
		"consentId": u.ConsentID, "status": u.Status})
	url, client := u.CallbackURL, h.callbacks
	go func() {
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			h.log.Warn("banqware sandbox: update callback failed", "error", err.Error())
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		h.log.Info("banqware sandbox: update callback delivered", "status", resp.StatusCode)
	}()
}

func (h *banqware) update(w http.ResponseWriter, r *http.Request) {
	if !h.allow(w, r, http.MethodGet) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	userID, ok := h.user(w, r)
	if !ok {
		return
	}
	u := h.updates[r.PathValue("updateId")]
	if u == nil || u.UserID != userID {
		h.fail(w, r, http.StatusNotFound, "update not found")
		return
	}
	writeJSON(w, http.StatusOK, u)
}

// accounts lists every account the user's consents acquired, in the order acquired.
func (h *banqware) accounts(w http.ResponseWriter, r *http.Request) {
	acquired, ok := h.acquired(w, r)
	if !ok {
		return
	}
	var out []bqAccount
	for _, d := range acquired {
		out = append(out, d.Accounts...)
	}
	writeJSON(w, http.StatusOK, map[string][]bqAccount{"data": out})
}

// kyc answers with one identity record, the most recently acquired: the user is one person,
// and the latest update is the freshest word on them.
func (h *banqware) kyc(w http.ResponseWriter, r *http.Request) {
	acquired, ok := h.acquired(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, acquired[len(acquired)-1].KYC)
}

// acquired returns what the user's consents acquired, oldest acquisition first, and answers
// 404 until an update has completed: before that the hub holds nothing for the user. Only a
// given consent can have data, since updates need one and a consent is never withdrawn, only
// erased. The data is never changed once built, so callers read it after the lock is released.
func (h *banqware) acquired(w http.ResponseWriter, r *http.Request) ([]*bqData, bool) {
	if !h.allow(w, r, http.MethodGet) {
		return nil, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	userID, ok := h.user(w, r)
	if !ok {
		return nil, false
	}
	var out []*bqData
	for _, c := range h.consents {
		if c.UserID == userID && c.data != nil {
			out = append(out, c.data)
		}
	}
	if len(out) == 0 {
		h.fail(w, r, http.StatusNotFound, "no data for this user: complete an update under a given consent first")
		return nil, false
	}
	slices.SortFunc(out, func(a, b *bqData) int { return a.seq - b.seq })
	return out, true
}

// banqwareData is what the hub would have fetched from the consent's bank.
func banqwareData(c *bqConsent, seq int) *bqData {
	p := banqwareClient()
	const bankCode = "0800"
	current := czechAccountNumber("190735842")
	savings := czechAccountNumber("286104557")
	owner := p.GivenName + " " + p.Surname
	return &bqData{
		seq: seq,
		Accounts: []bqAccount{
			{
				AccountID: uuid.NewString(), ConsentID: c.ConsentID, BankID: c.BankID,
				IBAN: czechIBAN(bankCode, "", current), Currency: "CZK", Name: "Osobní účet",
				Type: "CURRENT", OwnerName: owner, Balance: bqBalance{Amount: "48210.55", Currency: "CZK"},
			},
			{
				AccountID: uuid.NewString(), ConsentID: c.ConsentID, BankID: c.BankID,
				IBAN: czechIBAN(bankCode, "", savings), Currency: "CZK", Name: "Spořicí účet",
				Type: "SAVINGS", OwnerName: owner, Balance: bqBalance{Amount: "125000.00", Currency: "CZK"},
			},
		},
		KYC: bqKYC{
			ConsentID:   c.ConsentID,
			BankID:      c.BankID,
			FirstName:   p.GivenName,
			LastName:    p.Surname,
			BirthDate:   p.Birth.Format(time.DateOnly),
			BirthNumber: p.BirthNumber,
			Nationality: p.Citizenship,
			Address: bqAddress{
				Street:         p.Address.Street,
				BuildingNumber: p.Address.buildingNumber(),
				City:           p.Address.Municipality,
				PostalCode:     p.Address.PostalCode,
				Country:        p.Address.Country,
			},
			Document: bqDoc{Type: p.Document.Type, Number: p.Document.Number, ValidUntil: p.Document.Valid.Format(time.DateOnly)},
		},
	}
}

// user resolves the {userId} of the path, which may be the user's clientId (the
// overview lets one stand for the other); the caller holds h.mu.
func (h *banqware) user(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("userId")
	if byClient, ok := h.clientIDs[id]; ok {
		id = byClient
	}
	u := h.users[id]
	if u == nil {
		h.fail(w, r, http.StatusNotFound, "user not found")
		return "", false
	}
	return u.UserID, true
}

// userConsent resolves {userId} and {consentId}; a consent of another user is not found.
// The caller holds h.mu.
func (h *banqware) userConsent(w http.ResponseWriter, r *http.Request) (*bqConsent, bool) {
	userID, ok := h.user(w, r)
	if !ok {
		return nil, false
	}
	c := h.consents[r.PathValue("consentId")]
	if c == nil || c.UserID != userID {
		h.fail(w, r, http.StatusNotFound, "consent not found")
		return nil, false
	}
	return c, true
}

func (h *banqware) allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	if slices.Contains(methods, r.Method) {
		return true
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	h.fail(w, r, http.StatusMethodNotAllowed, "method "+r.Method+" is not supported here")
	return false
}

func (h *banqware) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		h.fail(w, r, http.StatusBadRequest, jsonProblem("", err))
		return false
	}
	return true
}

// fail answers in the shape of a Spring Boot error body. The guide shows no error body, so
// the shape is an assumption; the status codes are the ordinary REST ones.
func (h *banqware) fail(w http.ResponseWriter, r *http.Request, status int, message string) {
	writeJSON(w, status, map[string]any{
		"timestamp": h.now().UTC().Format(time.RFC3339Nano),
		"status":    status,
		"error":     http.StatusText(status),
		"message":   message,
		"path":      r.URL.Path,
	})
}

func absoluteHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
