package sandbox

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/certs"
)

func TestKBReturnsIdentity(t *testing.T) {
	pki := newTestPKI(t)
	cfg := testConfig(t, pki)
	set := startSet(t, cfg)
	cert := clientCert(t, pki.ica, companySubject(testCompanyICO))
	c := newClient(t, pki, cert)
	token := loginToken(t, set, cfg, "kb", c).AccessToken

	resp := send(t, c, http.MethodGet, set.KB.URL+kbIdentityPath, "",
		"apikey", cfg.Credentials.KBAPIKey, "Authorization", "Bearer "+token)
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	got := decode[map[string]any](t, resp.body)
	for _, field := range []string{"givenName", "surname", "birthNumber", "dateOfBirth", "gender", "citizenship", "nationality",
		"politicallyExposedPerson", "placeOfBirth", "identityDocument", "permanentAddress", "identifyingCompanyIco"} {
		if _, ok := got[field]; !ok {
			t.Errorf("identity lacks %s", field)
		}
	}
	doc, _ := got["identityDocument"].(map[string]any)
	for _, field := range []string{"type", "number", "issuingCountry", "placeOfIssue", "issueDate", "expiryDate"} {
		if s, _ := doc[field].(string); s == "" {
			t.Errorf("identityDocument.%s is empty", field)
		}
	}
	addr, _ := got["permanentAddress"].(map[string]any)
	for _, field := range []string{"street", "descriptiveNumber", "postalCode", "municipality", "country"} {
		if s, _ := addr[field].(string); s == "" {
			t.Errorf("permanentAddress.%s is empty", field)
		}
	}
	if bn, _ := got["birthNumber"].(string); !validBirthNumber(bn) {
		t.Errorf("birthNumber %q is not a valid rodné číslo", bn)
	}
	if ico, _ := got["identifyingCompanyIco"].(string); certs.ValidateICO(ico) != nil {
		t.Errorf("identifyingCompanyIco %q is not a valid IČO", ico)
	}
	rec := lastRecorded(t, set.KB, 1)
	if rec.Status != http.StatusOK || rec.ClientCert == nil || rec.ClientCert.SerialNumber.Cmp(cert.Leaf.SerialNumber) != 0 {
		t.Errorf("recorded status %d and client certificate %v", rec.Status, rec.ClientCert)
	}
}

// Verify mode answers, for the fields sent and only those, whether they match the
// client's record, and never with the record's values.
func TestKBVerifiesTypedInData(t *testing.T) {
	pki := newTestPKI(t)
	cfg := testConfig(t, pki)
	set := startSet(t, cfg)
	c := newClient(t, pki, clientCert(t, pki.ica, companySubject(testCompanyICO)))
	token := loginToken(t, set, cfg, "kb", c).AccessToken
	p := kbClient()
	typed := fmt.Sprintf(`{"givenName":" %s ","surname":%q,"birthNumber":%q,"permanentAddress":{"postalCode":"00000"}}`,
		strings.ToUpper(p.GivenName), p.Surname, strings.ReplaceAll(p.BirthNumber, "/", ""))
	resp := send(t, c, http.MethodPost, set.KB.URL+kbVerifyPath, typed,
		"apikey", cfg.Credentials.KBAPIKey, "Authorization", "Bearer "+token, "Content-Type", "application/json")
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	want := `{"matches":{"birthNumber":true,"givenName":true,"permanentAddress":{"postalCode":false},"surname":true},"verified":false}`
	if got := strings.TrimSpace(string(resp.body)); got != want {
		t.Errorf("answer %s, want %s", got, want)
	}
	if strings.Contains(string(resp.body), p.Address.PostalCode) {
		t.Error("the answer holds the record's postal code")
	}
}

func TestKBRefusals(t *testing.T) {
	pki := newTestPKI(t)
	cfg := testConfig(t, pki)
	set := startSet(t, cfg)
	good := clientCert(t, pki.ica, companySubject(testCompanyICO))
	noICO := companySubject(testCompanyICO)
	noICO.ExtraNames = nil
	badICO := companySubject(testCompanyICO[:7] + "9") // wrong check digit
	noOrg := companySubject(testCompanyICO)
	noOrg.Organization = nil
	key, token := cfg.Credentials.KBAPIKey, loginToken(t, set, cfg, "kb", newClient(t, pki, good)).AccessToken

	tests := []struct {
		name     string
		subject  *pkix.Name // nil: the good certificate
		noCert   bool
		method   string
		path     string
		body     string
		headers  []string
		status   int
		code     string
		contains string
	}{
		{"no client certificate", nil, true, "GET", kbIdentityPath, "",
			[]string{"apikey", key, "Authorization", "Bearer " + token}, 403, "CLIENT_CERTIFICATE_REQUIRED", "I.CA"},
		{"certificate without IČO", &noICO, false, "GET", kbIdentityPath, "",
			[]string{"apikey", key, "Authorization", "Bearer " + token}, 403, "CLIENT_CERTIFICATE_NO_ICO", "IČO"},
		{"certificate with a wrong IČO check digit", &badICO, false, "GET", kbIdentityPath, "",
			[]string{"apikey", key, "Authorization", "Bearer " + token}, 403, "CLIENT_CERTIFICATE_NO_ICO", "check digit"},
		{"certificate without organisation", &noOrg, false, "GET", kbIdentityPath, "",
			[]string{"apikey", key, "Authorization", "Bearer " + token}, 403, "CLIENT_CERTIFICATE_NO_ORGANIZATION", "organisation"},
		{"api key missing", nil, false, "GET", kbIdentityPath, "",
			[]string{"Authorization", "Bearer " + token}, 401, "API_KEY_MISSING", "apikey"},
		{"api key wrong", nil, false, "GET", kbIdentityPath, "",
			[]string{"apikey", key + "x", "Authorization", "Bearer " + token}, 401, "API_KEY_INVALID", ""},
		{"api key in another header", nil, false, "GET", kbIdentityPath, "",
			[]string{"X-API-Key", key, "Authorization", "Bearer " + token}, 401, "API_KEY_MISSING", ""},
		{"token missing", nil, false, "GET", kbIdentityPath, "",
			[]string{"apikey", key}, 401, "ACCESS_TOKEN_MISSING", ""},
		{"token wrong", nil, false, "GET", kbIdentityPath, "",
			[]string{"apikey", key, "Authorization", "Bearer " + token + "x"}, 401, "ACCESS_TOKEN_INVALID", ""},
		{"token under another scheme", nil, false, "GET", kbIdentityPath, "",
			[]string{"apikey", key, "Authorization", "Basic " + token}, 401, "ACCESS_TOKEN_MISSING", ""},
		{"api key given as the token", nil, false, "GET", kbIdentityPath, "",
			[]string{"apikey", key, "Authorization", "Bearer " + key}, 401, "ACCESS_TOKEN_INVALID", ""},
		{"unknown path", nil, false, "GET", "/v1/clients/me/accounts", "",
			[]string{"apikey", key, "Authorization", "Bearer " + token}, 404, "NOT_FOUND", ""},
		{"wrong method", nil, false, "POST", kbIdentityPath, "",
			[]string{"apikey", key, "Authorization", "Bearer " + token}, 405, "METHOD_NOT_ALLOWED", ""},
		{"verify by GET", nil, false, "GET", kbVerifyPath, "",
			[]string{"apikey", key, "Authorization", "Bearer " + token}, 405, "METHOD_NOT_ALLOWED", "POST"},
		{"verify without a token", nil, false, "POST", kbVerifyPath, `{"surname":"x"}`,
			[]string{"apikey", key}, 401, "ACCESS_TOKEN_MISSING", ""},
		{"verify a body that is not JSON", nil, false, "POST", kbVerifyPath, `surname=x`,
			[]string{"apikey", key, "Authorization", "Bearer " + token}, 400, "INVALID_BODY", ""},
		{"verify nothing", nil, false, "POST", kbVerifyPath, `{}`,
			[]string{"apikey", key, "Authorization", "Bearer " + token}, 400, "NOTHING_TO_VERIFY", ""},
		{"verify a field the record lacks", nil, false, "POST", kbVerifyPath, `{"surname":"x","email":"a@b.cz"}`,
			[]string{"apikey", key, "Authorization", "Bearer " + token}, 400, "FIELD_NOT_VERIFIABLE", "email"},
		{"verify a nested field the record lacks", nil, false, "POST", kbVerifyPath, `{"permanentAddress":{"floor":"3"}}`,
			[]string{"apikey", key, "Authorization", "Bearer " + token}, 400, "FIELD_NOT_VERIFIABLE", "permanentAddress.floor"},
		{"verify a value that is not text", nil, false, "POST", kbVerifyPath, `{"politicallyExposedPerson":false}`,
			[]string{"apikey", key, "Authorization", "Bearer " + token}, 400, "FIELD_NOT_VERIFIABLE", "politicallyExposedPerson"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c *http.Client
			switch {
			case tt.noCert:
				c = newClient(t, pki)
			case tt.subject != nil:
				c = newClient(t, pki, clientCert(t, pki.ica, *tt.subject))
			default:
				c = newClient(t, pki, good)
			}
			resp := send(t, c, tt.method, set.KB.URL+tt.path, tt.body, tt.headers...)
			if resp.status != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.status, tt.status, resp.body)
			}
			body := decode[kbErrorBody](t, resp.body)
			if body.Code != tt.code || !strings.Contains(body.Message, tt.contains) {
				t.Errorf("error %+v, want code %s and a message naming %q", body, tt.code, tt.contains)
			}
			if rec := lastRecorded(t, set.KB, i+1); rec.Status != tt.status {
				t.Errorf("recorded status %d", rec.Status)
			}
		})
	}
}

// KB takes the certificate kinds its terms list and no other: a technological server
// certificate (serverAuth only, IČO in the CN) and a qualified seal are served; a commercial
// certificate carrying O and NTRCZ, or a server certificate whose CN lacks the IČO, is refused.
func TestKBCertificateKinds(t *testing.T) {
	pki := newTestPKI(t)
	cfg := testConfig(t, pki)
	set := startSet(t, cfg)
	key, token := cfg.Credentials.KBAPIKey, loginToken(t, set, cfg, "kb", newClient(t, pki, serverCert(t, pki.ica, testCompanyICO))).AccessToken
	commercial := issueCert(t, pki.ica, &x509.Certificate{Subject: companySubject(testCompanyICO),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	noICO := issueCert(t, pki.ica, &x509.Certificate{Subject: pkix.Name{CommonName: "Consentgate Test s.r.o.",
		Organization: []string{"Consentgate Test s.r.o."}, SerialNumber: "ICA - 10123456"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	tests := []struct {
		name   string
		cert   tls.Certificate
		status int
		code   string
	}{
		{"technological server certificate", serverCert(t, pki.ica, testCompanyICO), http.StatusOK, ""},
		{"qualified seal", clientCert(t, pki.ica, companySubject(testCompanyICO)), http.StatusOK, ""},
		{"commercial certificate with O and NTRCZ", commercial, http.StatusForbidden, "CLIENT_CERTIFICATE_TYPE"},
		{"server certificate without the IČO", noICO, http.StatusForbidden, "CLIENT_CERTIFICATE_NO_ICO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := send(t, newClient(t, pki, tt.cert), http.MethodGet, set.KB.URL+kbIdentityPath, "",
				"apikey", key, "Authorization", "Bearer "+token)
			if resp.status != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.status, tt.status, resp.body)
			}
			if tt.code != "" {
				if body := decode[kbErrorBody](t, resp.body); body.Code != tt.code {
					t.Errorf("code %s, want %s", body.Code, tt.code)
				}
			}
		})
	}
}

func TestKBAPIKeyHeaderIsConfigurable(t *testing.T) {
	pki := newTestPKI(t)
	cfg := testConfig(t, pki)
	cfg.KBAPIKeyHeader = "X-KB-Api-Key"
	set := startSet(t, cfg)
	c := newClient(t, pki, clientCert(t, pki.ica, companySubject(testCompanyICO)))
	bearer := "Bearer " + loginToken(t, set, cfg, "kb", c).AccessToken

	if resp := send(t, c, "GET", set.KB.URL+kbIdentityPath, "", "apikey", cfg.Credentials.KBAPIKey, "Authorization", bearer); resp.status != http.StatusUnauthorized {
		t.Errorf("key in the default header: status %d, want 401", resp.status)
	}
	if resp := send(t, c, "GET", set.KB.URL+kbIdentityPath, "", "X-KB-Api-Key", cfg.Credentials.KBAPIKey, "Authorization", bearer); resp.status != http.StatusOK {
		t.Errorf("key in the configured header: status %d, want 200: %s", resp.status, resp.body)
	}
}
