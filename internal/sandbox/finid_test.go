package sandbox

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

const formContent = "application/x-www-form-urlencoded"

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

// basicAuth encodes the client the way golang.org/x/oauth2 does for AuthStyleInHeader:
// each part form-encoded first (RFC 6749 §2.3.1).
func basicAuth(id, secret string) string {
	r, _ := http.NewRequest(http.MethodPost, "https://finid.test", nil)
	r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return r.Header.Get("Authorization")
}

func fetchToken(t *testing.T, c *http.Client, set *Set, cfg Config) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {cfg.Credentials.FinIDClientID}, "client_secret": {cfg.Credentials.FinIDClientSecret}}
	resp := send(t, c, http.MethodPost, set.FinID.URL+finidTokenPath, form.Encode(), "Content-Type", formContent)
	if resp.status != http.StatusOK {
		t.Fatalf("token: status %d: %s", resp.status, resp.body)
	}
	return decode[tokenResponse](t, resp.body).AccessToken
}

func verificationBody(iin, phone, photo string) string {
	b, _ := json.Marshal(map[string]string{"iin": iin, "phone": phone, "photo": photo})
	return string(b)
}

func TestFinIDTokenEndpoint(t *testing.T) {
	pki := newTestPKI(t)
	cfg := testConfig(t, pki)
	// Characters that form-encoding changes prove that Basic credentials are decoded.
	cfg.Credentials.FinIDClientSecret = "s3cr+t/with=odd&chars:" + cfg.Credentials.FinIDClientSecret
	cfg.FinIDTokenTTL = 2 * time.Minute
	set := startSet(t, cfg)
	c := newClient(t, pki)
	id, secret := cfg.Credentials.FinIDClientID, cfg.Credentials.FinIDClientSecret
	grant := url.Values{"grant_type": {"client_credentials"}}.Encode()
	inForm := func(id, secret string) string {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}.Encode()
	}

	tests := []struct {
		name    string
		method  string
		query   string
		body    string
		headers []string
		status  int
		errCode string
	}{
		{"basic", "POST", "", grant, []string{"Authorization", basicAuth(id, secret)}, 200, ""},
		{"form", "POST", "", inForm(id, secret), nil, 200, ""},
		{"basic with client_id repeated in the form", "POST", "", grant + "&client_id=" + url.QueryEscape(id), []string{"Authorization", basicAuth(id, secret)}, 200, ""},
		{"basic, wrong secret", "POST", "", grant, []string{"Authorization", basicAuth(id, secret+"x")}, 401, "invalid_client"},
		{"basic, unencoded secret", "POST", "", grant, []string{"Authorization", "Basic " + basicRaw(id, secret)}, 401, "invalid_client"},
		{"form, wrong id", "POST", "", inForm(id+"x", secret), nil, 401, "invalid_client"},
		{"form, no secret", "POST", "", inForm(id, ""), nil, 401, "invalid_client"},
		{"no client", "POST", "", grant, nil, 401, "invalid_client"},
		{"two methods", "POST", "", inForm(id, secret), []string{"Authorization", basicAuth(id, secret)}, 400, "invalid_request"},
		{"password grant", "POST", "", "grant_type=password&username=a&password=b", []string{"Authorization", basicAuth(id, secret)}, 400, "unsupported_grant_type"},
		{"no grant", "POST", "", "", []string{"Authorization", basicAuth(id, secret)}, 400, "invalid_request"},
		{"client in the query", "POST", inForm(id, secret), grant, nil, 401, "invalid_client"},
		{"wrong method", "GET", "", "", nil, 405, "invalid_request"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := set.FinID.URL + finidTokenPath
			if tt.query != "" {
				target += "?" + tt.query
			}
			resp := send(t, c, tt.method, target, tt.body, append([]string{"Content-Type", formContent}, tt.headers...)...)
			if resp.status != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.status, tt.status, resp.body)
			}
			if tt.status == http.StatusOK {
				tok := decode[tokenResponse](t, resp.body)
				if tok.AccessToken == "" || tok.TokenType != "Bearer" || tok.ExpiresIn != 120 {
					t.Errorf("token response %+v", tok)
				}
				if resp.header.Get("Cache-Control") != "no-store" {
					t.Errorf("Cache-Control %q", resp.header.Get("Cache-Control"))
				}
			} else if got := decode[map[string]string](t, resp.body)["error"]; got != tt.errCode {
				t.Errorf("error %q, want %q", got, tt.errCode)
			}
			if rec := lastRecorded(t, set.FinID, i+1); rec.Status != tt.status {
				t.Errorf("recorded status %d", rec.Status)
			}
		})
	}
}

func basicRaw(id, secret string) string {
	r, _ := http.NewRequest(http.MethodPost, "https://finid.test", nil)
	r.SetBasicAuth(id, secret)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

// finidSession is a started sandbox set, a client with a FinID bearer token,
// and the IIN of a person the sandbox knows.
func finidSession(t *testing.T) (*Set, *http.Client, string, string) {
	t.Helper()
	pki := newTestPKI(t)
	cfg := testConfig(t, pki)
	set := startSet(t, cfg)
	c := newClient(t, pki)
	return set, c, "Bearer " + fetchToken(t, c, set, cfg), kazakhIIN(date(1990, 5, 14), true, 77)
}

// What the seed describes besides success: liveness, the state photo and the SMS
// code can each fail, and a failure carries a reason and no personal data.
func TestFinIDFailedVerifications(t *testing.T) {
	set, c, bearer, iin := finidSession(t)
	for _, tt := range []struct{ phone, photo, reason string }{
		{"+77000000505", base64.StdEncoding.EncodeToString([]byte("SPOOF mask")), "liveness_failed"},
		{"+77000000505", base64.StdEncoding.EncodeToString([]byte("OTHER face")), "photo_mismatch"},
		{"+77011110000", facePhoto, "sms_not_confirmed"},
	} {
		resp := send(t, c, http.MethodPost, set.FinID.URL+finidVerificationsPath, verificationBody(iin, tt.phone, tt.photo),
			"Authorization", bearer, "Content-Type", "application/json")
		id := decode[finidVerification](t, resp.body).ID
		got := send(t, c, http.MethodGet, set.FinID.URL+finidVerificationsPath+"/"+id, "", "Authorization", bearer)
		v := decode[finidVerification](t, got.body)
		if v.Status != finidFailed || v.Reason != tt.reason || v.Person != nil || strings.Contains(string(got.body), iin) {
			t.Errorf("%s: %s", tt.reason, got.body)
		}
	}
}

func TestFinIDVerification(t *testing.T) {
	set, c, bearer, iin := finidSession(t)

	resp := send(t, c, http.MethodPost, set.FinID.URL+finidVerificationsPath, verificationBody(iin, "+77000000505", facePhoto),
		"Authorization", bearer, "Content-Type", "application/json")
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	v := decode[finidVerification](t, resp.body)
	if v.ID == "" || v.Status != finidPending || v.Person != nil {
		t.Errorf("the request's answer: %+v, want pending with no person", v)
	}
	if loc := resp.header.Get("Location"); loc != finidVerificationsPath+"/"+v.ID {
		t.Errorf("Location %q", loc)
	}
	again := send(t, c, http.MethodGet, set.FinID.URL+finidVerificationsPath+"/"+v.ID, "", "Authorization", bearer)
	if again.status != http.StatusOK {
		t.Fatalf("GET verification: status %d: %s", again.status, again.body)
	}
	v = decode[finidVerification](t, again.body)
	if v.Status != finidSucceeded || v.Person == nil {
		t.Fatalf("the verification read: %+v, want succeeded with the person", v)
	}
	p := *v.Person
	if p.IIN != iin || p.BirthDate != "1990-05-14" || p.Gender != "FEMALE" || p.Phone != "+77000000505" {
		t.Errorf("person %+v does not describe IIN %s", p, iin)
	}
	if p.Name == "" || p.Surname == "" || p.Patronymic == "" || p.DocumentNumber == "" || p.DocumentIssuer == "" {
		t.Errorf("person lacks data: %+v", p)
	}
	missing := send(t, c, http.MethodGet, set.FinID.URL+finidVerificationsPath+"/nope", "", "Authorization", bearer)
	if missing.status != http.StatusNotFound || decode[map[string]string](t, missing.body)["error"] != "not_found" {
		t.Errorf("unknown verification: status %d: %s", missing.status, missing.body)
	}
}

func TestFinIDVerificationRefusals(t *testing.T) {
	pki := newTestPKI(t)
	cfg := testConfig(t, pki)
	set := startSet(t, cfg)
	c := newClient(t, pki)
	bearer := "Bearer " + fetchToken(t, c, set, cfg)
	iin := kazakhIIN(date(1990, 5, 14), true, 77)
	wrongCheck := iin[:11] + string('0'+(iin[11]-'0'+1)%10)
	const phone = "+77000000505"

	tests := []struct {
		name    string
		body    string
		headers []string
		status  int
		errCode string
		field   string
	}{
		{"no token", verificationBody(iin, phone, facePhoto), nil, 401, "invalid_request", ""},
		{"unknown token", verificationBody(iin, phone, facePhoto), []string{"Authorization", "Bearer nope"}, 401, "invalid_token", ""},
		{"client secret as token", verificationBody(iin, phone, facePhoto), []string{"Authorization", "Bearer " + cfg.Credentials.FinIDClientSecret}, 401, "invalid_token", ""},
		{"iin 11 digits", verificationBody(iin[:11], phone, facePhoto), []string{"Authorization", bearer}, 400, "invalid_request", "iin"},
		{"iin wrong check digit", verificationBody(wrongCheck, phone, facePhoto), []string{"Authorization", bearer}, 400, "invalid_request", "iin"},
		{"phone not Kazakh", verificationBody(iin, "+420601000000", facePhoto), []string{"Authorization", bearer}, 400, "invalid_request", "phone"},
		{"phone too short", verificationBody(iin, "+7700000050", facePhoto), []string{"Authorization", bearer}, 400, "invalid_request", "phone"},
		{"phone national format", verificationBody(iin, "87000000505", facePhoto), []string{"Authorization", bearer}, 400, "invalid_request", "phone"},
		{"photo empty", verificationBody(iin, phone, ""), []string{"Authorization", bearer}, 400, "invalid_request", "photo"},
		{"photo not base64", verificationBody(iin, phone, "@@@"), []string{"Authorization", bearer}, 400, "invalid_request", "photo"},
		{"not JSON", "iin=" + iin, []string{"Authorization", bearer}, 400, "invalid_request", "the body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := set.FinID.Count()
			resp := send(t, c, http.MethodPost, set.FinID.URL+finidVerificationsPath, tt.body, tt.headers...)
			if resp.status != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.status, tt.status, resp.body)
			}
			got := decode[map[string]string](t, resp.body)
			if got["error"] != tt.errCode || !strings.HasPrefix(got["error_description"], tt.field) {
				t.Errorf("error %v, want %s about %q", got, tt.errCode, tt.field)
			}
			if tt.status == http.StatusUnauthorized && !strings.HasPrefix(resp.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate %q", resp.header.Get("WWW-Authenticate"))
			}
			if rec := lastRecorded(t, set.FinID, n+1); rec.Status != tt.status {
				t.Errorf("recorded status %d", rec.Status)
			}
		})
	}
}

func TestFinIDTokensExpire(t *testing.T) {
	pki := newTestPKI(t)
	cfg := testConfig(t, pki)
	clock := newFakeClock()
	cfg.now = clock.Now
	set := startSet(t, cfg) // default TTL: 5 minutes
	c := newClient(t, pki)
	bearer := "Bearer " + fetchToken(t, c, set, cfg)
	body := verificationBody(kazakhIIN(date(1990, 5, 14), true, 77), "+77000000505", facePhoto)
	verify := func() response {
		return send(t, c, http.MethodPost, set.FinID.URL+finidVerificationsPath, body, "Authorization", bearer)
	}

	clock.Advance(5*time.Minute - time.Second)
	if resp := verify(); resp.status != http.StatusOK {
		t.Fatalf("token just before expiry: status %d: %s", resp.status, resp.body)
	}
	clock.Advance(time.Second)
	resp := verify()
	got := decode[map[string]string](t, resp.body)
	if resp.status != http.StatusUnauthorized || got["error"] != "invalid_token" || !strings.Contains(got["error_description"], "expired") {
		t.Errorf("expired token: status %d: %s", resp.status, resp.body)
	}
	// A fresh token works again.
	bearer = "Bearer " + fetchToken(t, c, set, cfg)
	if resp := verify(); resp.status != http.StatusOK {
		t.Errorf("fresh token: status %d", resp.status)
	}
}

func TestFinIDUnknownPath(t *testing.T) {
	pki := newTestPKI(t)
	set := startSet(t, testConfig(t, pki))
	c := newClient(t, pki)
	for _, path := range []string{"/api/v1/verify", "/api/v1/verifications/", "/"} {
		if resp := send(t, c, http.MethodGet, set.FinID.URL+path, ""); resp.status != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, resp.status)
		}
	}
}
