package sandbox

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func airbankAuth(cfg Config, token string) []string {
	return []string{"apikey", cfg.Credentials.AirbankAPIKey, "Authorization", "Bearer " + token}
}

func TestAirbankResources(t *testing.T) {
	pki := newTestPKI(t)
	cfg := testConfig(t, pki)
	set := startSet(t, cfg)
	c := newClient(t, pki)
	token := loginToken(t, set, cfg, "airbank", c).AccessToken
	get := func(resource string) response {
		t.Helper()
		resp := send(t, c, http.MethodGet, set.Airbank.URL+airbankBasePath+resource, "", airbankAuth(cfg, token)...)
		if resp.status != http.StatusOK {
			t.Fatalf("%s: status %d: %s", resource, resp.status, resp.body)
		}
		if ct := resp.header.Get("Content-Type"); ct != "application/json;charset=UTF-8" {
			t.Errorf("%s: Content-Type %q", resource, ct)
		}
		if resp.header.Get("Content-Encoding") != "" {
			t.Errorf("%s: encoded without Accept-Encoding", resource)
		}
		return resp
	}

	personal := decode[map[string]any](t, get("personalData").body)
	for _, field := range []string{"gender", "names", "surname", "birthNumber", "birthDate", "birthPlace",
		"permanentAddress", "citizenship", "primaryPersonalDocument", "politicallyExposedPerson", "physicallyIdentified"} {
		if _, ok := personal[field]; !ok {
			t.Errorf("personalData lacks %s", field)
		}
	}
	if bn, _ := personal["birthNumber"].(string); !validBirthNumber(bn) {
		t.Errorf("birthNumber %q is not a valid rodné číslo", bn)
	}
	addr, _ := personal["permanentAddress"].(map[string]any)
	for _, field := range []string{"country", "municipality", "buildingNumber"} { // required by the schema
		if s, _ := addr[field].(string); s == "" {
			t.Errorf("permanentAddress.%s is empty", field)
		}
	}
	doc, _ := personal["primaryPersonalDocument"].(map[string]any)
	if validTo, _ := doc["validTo"].(float64); time.UnixMilli(int64(validTo)).Year() < 2030 {
		t.Errorf("primaryPersonalDocument.validTo %v is not Unix milliseconds of a future expiry", doc["validTo"])
	}
	if typ, _ := doc["type"].(string); typ != "ID_CARD" {
		t.Errorf("primaryPersonalDocument.type %q", typ)
	}

	accounts := decode[struct {
		Data []struct {
			AccountNumber airbankAccountNumber `json:"accountNumber"`
		} `json:"data"`
	}](t, get("accounts").body)
	if len(accounts.Data) == 0 {
		t.Fatal("no accounts")
	}
	for _, a := range accounts.Data {
		n := a.AccountNumber
		if n.BankCode != "3030" || n.BIC != "AIRACZPP" || !validIBAN(n.IBAN) || !strings.HasSuffix(n.IBAN, n.AccountNumber) {
			t.Errorf("account %+v", n)
		}
	}

	cards := decode[struct {
		Data []struct {
			CardNumber string `json:"cardNumber"`
		} `json:"data"`
	}](t, get("cards").body)
	masked := regexp.MustCompile(`^\d{6}\*{6}\d{4}$`)
	if len(cards.Data) == 0 {
		t.Fatal("no cards")
	}
	for _, card := range cards.Data {
		if !masked.MatchString(card.CardNumber) {
			t.Errorf("card number %q is not masked like 516822******1234", card.CardNumber)
		}
	}
	lastRecorded(t, set.Airbank, 3)
}

func TestAirbankRefusals(t *testing.T) {
	pki := newTestPKI(t)
	cfg := testConfig(t, pki)
	set := startSet(t, cfg)
	c := newClient(t, pki)
	token := loginToken(t, set, cfg, "airbank", c).AccessToken
	key := cfg.Credentials.AirbankAPIKey
	personal := airbankBasePath + "personalData"

	type oauthError struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	tests := []struct {
		name    string
		method  string
		path    string
		headers []string
		status  int
		oauth   *oauthError // the documented token errors; otherwise errors[0].code is code
		code    string
	}{
		{"token missing", "GET", personal, []string{"apikey", key}, 401,
			&oauthError{"invalid_request", "The access token is missing"}, ""},
		{"token wrong", "GET", personal, []string{"apikey", key, "Authorization", "Bearer " + token + "x"}, 401,
			&oauthError{"invalid_token", "The access token is invalid or has expired"}, ""},
		{"api key missing", "GET", personal, []string{"Authorization", "Bearer " + token}, 401, nil, "API_KEY_MISSING"},
		{"api key wrong", "GET", personal, []string{"apikey", token, "Authorization", "Bearer " + token}, 401, nil, "API_KEY_INVALID"},
		{"unknown resource", "GET", airbankBasePath + "transactions", airbankAuth(cfg, token), 404, nil, "OBJECT_NOT_FOUND"},
		{"outside the API", "GET", "/openapi/banking/v1/accounts", airbankAuth(cfg, token), 404, nil, "OBJECT_NOT_FOUND"},
		{"wrong method", "POST", personal, airbankAuth(cfg, token), 405, nil, "METHOD_NOT_ALLOWED"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := send(t, c, tt.method, set.Airbank.URL+tt.path, "", tt.headers...)
			if resp.status != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.status, tt.status, resp.body)
			}
			if ct := resp.header.Get("Content-Type"); ct != airbankContentType {
				t.Errorf("Content-Type %q", ct)
			}
			if resp.header.Get("X-Rate-Limit-Remaining") == "" || resp.header.Get("X-RateLimit-Remaining-glClientIdentity-Minute") == "" {
				t.Errorf("refusal lacks rate-limit headers: %v", resp.header)
			}
			if tt.oauth != nil {
				if got := decode[oauthError](t, resp.body); got != *tt.oauth {
					t.Errorf("body %+v, want %+v", got, *tt.oauth)
				}
			} else {
				got := decode[struct{ Errors []airbankError }](t, resp.body)
				if len(got.Errors) != 1 || got.Errors[0].Code != tt.code || got.Errors[0].Severity != "ERROR" || got.Errors[0].Message == "" {
					t.Errorf("errors %+v, want one ERROR with code %s", got.Errors, tt.code)
				}
			}
			if tt.status == http.StatusMethodNotAllowed && resp.header.Get("Allow") != http.MethodGet {
				t.Errorf("Allow %q", resp.header.Get("Allow"))
			}
			if rec := lastRecorded(t, set.Airbank, i+1); rec.Status != tt.status {
				t.Errorf("recorded status %d", rec.Status)
			}
		})
	}
}

func TestAirbankRateLimit(t *testing.T) {
	pki := newTestPKI(t)
	cfg := testConfig(t, pki)
	cfg.AirbankRateLimit = 3
	clock := newFakeClock()
	cfg.now = clock.Now
	set := startSet(t, cfg)
	c := newClient(t, pki)
	token := loginToken(t, set, cfg, "airbank", c).AccessToken
	url := set.Airbank.URL + airbankBasePath + "cards"

	quota := func(resp response) (limit, remaining, reset, apiLimit, apiRemaining string) {
		h := resp.header
		return h.Get("X-Rate-Limit-Limit"), h.Get("X-Rate-Limit-Remaining"), h.Get("X-Rate-Limit-Reset"),
			h.Get("X-RateLimit-Limit-glClientIdentity-Minute"), h.Get("X-RateLimit-Remaining-glClientIdentity-Minute")
	}
	for i, wantRemaining := range []string{"2", "1", "0"} {
		resp := send(t, c, http.MethodGet, url, "", airbankAuth(cfg, token)...)
		limit, remaining, reset, apiLimit, apiRemaining := quota(resp)
		if resp.status != http.StatusOK || limit != "3" || apiLimit != "3" || remaining != wantRemaining || apiRemaining != wantRemaining {
			t.Fatalf("request %d: status %d, limit %s/%s, remaining %s/%s", i+1, resp.status, limit, apiLimit, remaining, apiRemaining)
		}
		if want := strconv.Itoa(60 - 15*i); reset != want {
			t.Errorf("request %d: X-Rate-Limit-Reset %s, want %s", i+1, reset, want)
		}
		clock.Advance(15 * time.Second)
	}

	resp := send(t, c, http.MethodGet, url, "", airbankAuth(cfg, token)...)
	if resp.status != http.StatusTooManyRequests || len(resp.body) != 0 {
		t.Fatalf("over the limit: status %d, body %q; want 429 with an empty body", resp.status, resp.body)
	}
	if _, remaining, reset, _, apiRemaining := quota(resp); remaining != "0" || apiRemaining != "0" || reset != "15" {
		t.Errorf("429 carries remaining %s/%s, reset %s", remaining, apiRemaining, reset)
	}
	// Refused requests count too: a client that ignores 429 stays refused.
	if resp := send(t, c, http.MethodGet, url, "", "apikey", "wrong"); resp.status != http.StatusTooManyRequests {
		t.Errorf("unauthenticated request over the limit: status %d", resp.status)
	}
	if rec := lastRecorded(t, set.Airbank, 5); rec.Status != http.StatusTooManyRequests {
		t.Errorf("recorded status %d", rec.Status)
	}

	clock.Advance(15 * time.Second) // the window has ended
	resp = send(t, c, http.MethodGet, url, "", airbankAuth(cfg, token)...)
	if _, remaining, reset, _, _ := quota(resp); resp.status != http.StatusOK || remaining != "2" || reset != "60" {
		t.Errorf("new window: status %d, remaining %s, reset %s", resp.status, remaining, reset)
	}
}

func TestAirbankGzip(t *testing.T) {
	pki := newTestPKI(t)
	cfg := testConfig(t, pki)
	set := startSet(t, cfg)
	c := newClient(t, pki)
	token := loginToken(t, set, cfg, "airbank", c).AccessToken
	url := set.Airbank.URL + airbankBasePath + "personalData"
	plain := send(t, c, http.MethodGet, url, "", airbankAuth(cfg, token)...)

	tests := []struct {
		acceptEncoding string
		gzipped        bool
	}{
		{"gzip", true},
		{"br, gzip;q=0.5", true},
		{"GZIP", true},
		{"gzip;q=0", false},
		{"br", false},
		{"identity", false},
	}
	for _, tt := range tests {
		t.Run(tt.acceptEncoding, func(t *testing.T) {
			resp := send(t, c, http.MethodGet, url, "", append(airbankAuth(cfg, token), "Accept-Encoding", tt.acceptEncoding)...)
			if resp.status != http.StatusOK {
				t.Fatalf("status %d", resp.status)
			}
			body := resp.body
			if got := resp.header.Get("Content-Encoding") == "gzip"; got != tt.gzipped {
				t.Fatalf("Content-Encoding %q", resp.header.Get("Content-Encoding"))
			}
			if tt.gzipped {
				zr, err := gzip.NewReader(bytes.NewReader(resp.body))
				if err != nil {
					t.Fatalf("body is not gzip: %v", err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatalf("gunzip: %v", err)
				}
			}
			if !bytes.Equal(body, plain.body) {
				t.Errorf("decoded body differs from the plain one")
			}
		})
	}

	// Errors are compressed as well: the client asked for gzip, whatever the answer.
	resp := send(t, c, http.MethodGet, url, "", "apikey", cfg.Credentials.AirbankAPIKey, "Accept-Encoding", "gzip")
	if resp.status != http.StatusUnauthorized || resp.header.Get("Content-Encoding") != "gzip" {
		t.Errorf("error: status %d, Content-Encoding %q", resp.status, resp.header.Get("Content-Encoding"))
	}
}

// Over HTTP/1.1 the per-API headers keep Air Bank's spelling, which Go would otherwise
// canonicalise to X-Ratelimit-Limit-Glclientidentity-Minute.
func TestAirbankRateLimitHeaderSpelling(t *testing.T) {
	pki := newTestPKI(t)
	set := startSet(t, testConfig(t, pki))
	conn, err := tls.Dial("tcp", strings.TrimPrefix(set.Airbank.URL, "https://"), &tls.Config{RootCAs: pki.serverRoots})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "GET "+airbankBasePath+"cards HTTP/1.1\r\nHost: api.airbank.cz\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"X-RateLimit-Limit-glClientIdentity-Minute: ", "X-RateLimit-Remaining-glClientIdentity-Minute: ", "X-Rate-Limit-Reset: "} {
		if !bytes.Contains(raw, []byte("\r\n"+name)) {
			t.Errorf("response lacks %q:\n%s", name, raw)
		}
	}
}
