package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/audit"
)

// The attacker's requests of issue 13 §1: the same FinID verification, labelled
// and encoded every way an app could, under a purpose (kyc-onboarding) that does
// not cover the photo. Whatever the label, the photo must not reach the vendor:
// the call is refused with problem+json and the vendor not called, or the body
// is read as the JSON the operation takes and minimised. (FinID itself then
// refuses a verification without a photo: status 0 below means "forwarded",
// whatever the vendor answered.)

const (
	bypassPhoto = "UEhPVE8tT0YtQU5PVEhFUi1QRVJTT04=" // base64 "PHOTO-OF-ANOTHER-PERSON"
	bypassIIN   = "900315401233"
	bypassPhone = "+77011234567"
)

var bypassBody = `{"iin":"` + bypassIIN + `","phone":"` + bypassPhone + `","photo":"` + bypassPhoto + `"}`

func gzipped(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// send makes a request with exactly the headers given (no Content-Type added).
func send(t *testing.T, c *http.Client, method, url, body string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(req.Header, header)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestDevRequestMinimisationCannotBeSkipped(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	form := url.Values{"iin": {bypassIIN}, "phone": {bypassPhone}, "photo": {bypassPhoto}}.Encode()
	tests := []struct {
		name         string
		contentType  []string // nil: none sent
		encoding     string
		body         string
		status       int    // 0: forwarded to the vendor
		kind         string // for refusals
		wantWithheld []string
	}{
		{"json", []string{"application/json"}, "", bypassBody, 0, "", []string{"header:user-agent", "photo"}},
		{"json, RFC 9110 case and parameters", []string{"Application/JSON; Charset=\"UTF-8\""}, "", bypassBody, 0, "", []string{"header:user-agent", "photo"}},
		{"json suffix", []string{"application/vnd.finid+json"}, "", bypassBody, 0, "", []string{"header:user-agent", "photo"}},
		{"gzip", []string{"application/json"}, "gzip", gzipped(t, bypassBody), 0, "", []string{"header:user-agent", "photo"}},
		{"text/plain", []string{"text/plain"}, "", bypassBody, 415, "unsupported-media-type", nil},
		{"no Content-Type", nil, "", bypassBody, 415, "unsupported-media-type", nil},
		{"form", []string{"application/x-www-form-urlencoded"}, "", form, 415, "unsupported-media-type", nil},
		{"multipart", []string{"multipart/form-data; boundary=x"}, "", "--x\r\nContent-Disposition: form-data; name=\"photo\"\r\n\r\n" + bypassPhoto + "\r\n--x--\r\n", 415, "unsupported-media-type", nil},
		{"two Content-Types", []string{"application/json", "text/plain"}, "", bypassBody, 415, "unsupported-media-type", nil},
		{"another charset", []string{"application/json; charset=iso-8859-1"}, "", bypassBody, 415, "unsupported-media-type", nil},
		{"json inside text/json", []string{"text/json"}, "", bypassBody, 415, "unsupported-media-type", nil},
		{"brotli", []string{"application/json"}, "br", bypassBody, 415, "unsupported-content-encoding", nil},
		{"gzip twice", []string{"application/json"}, "gzip, gzip", gzipped(t, gzipped(t, bypassBody)), 415, "unsupported-content-encoding", nil},
		{"claims gzip, is not", []string{"application/json"}, "gzip", bypassBody, 400, "malformed-body", nil},
		{"not JSON", []string{"application/json"}, "", "photo=" + bypassPhoto, 400, "malformed-body", nil},
		{"JSON array", []string{"application/json"}, "", "[" + bypassBody + "]", 400, "malformed-body", nil},
		{"JSON string", []string{"application/json"}, "", `"` + bypassPhoto + `"`, 400, "malformed-body", nil},
		{"repeated key", []string{"application/json"}, "", `{"iin":"1","iin":"` + bypassPhoto + `"}`, 400, "malformed-body", nil},
		{"two JSON values", []string{"application/json"}, "", bypassBody + bypassBody, 400, "malformed-body", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.sandboxes.FinID.Count()
			h := http.Header{"X-Consent-Id": {"dev-kyc"}, "X-Purpose": {"kyc-onboarding"}}
			if tt.contentType != nil {
				h["Content-Type"] = tt.contentType
			}
			if tt.encoding != "" {
				h.Set("Content-Encoding", tt.encoding)
			}
			resp, body := send(t, e.app, "POST", e.gatewayURL()+"/v/finid/api/v1/verifications", tt.body, h)
			if tt.status != 0 && resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			var sent []byte
			for _, r := range e.sandboxes.FinID.Requests()[before:] {
				if r.Path == "/api/v1/verifications" {
					sent = r.Body
				}
			}
			if tt.status != 0 {
				assertProblem(t, resp, body, tt.kind)
				if sent != nil {
					t.Fatalf("refused, but the vendor was called with %s", sent)
				}
				return
			}
			if sent == nil {
				t.Fatalf("the vendor was not called: %d %s", resp.StatusCode, body)
			}
			if bytes.Contains(sent, []byte(bypassPhoto)) {
				t.Fatalf("the photo reached the vendor: %s", sent)
			}
			var got map[string]any
			if err := json.Unmarshal(sent, &got); err != nil || got["iin"] != bypassIIN || got["phone"] != bypassPhone || len(got) != 2 {
				t.Errorf("vendor got %s, want the IIN and phone only", sent)
			}
			intent := e.intentOf(t, resp.Header.Get("X-Request-Id"))
			if !slices.Equal(intent.RequestWithheld, tt.wantWithheld) || !slices.Equal(intent.RequestDisclosed, []string{"iin", "phone"}) {
				t.Errorf("intent record: disclosed %v, withheld %v", intent.RequestDisclosed, intent.RequestWithheld)
			}
		})
	}
}

// Query parameters and headers are personal data too: none the operation does
// not declare reaches the vendor, and the audit record names them withheld.
func TestDevUndeclaredQueryAndHeadersNeverReachTheVendor(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	created := decode(t, e.step(t, "biometric-verification", "POST", "/v/finid/api/v1/verifications", `{"iin":"`+bypassIIN+`","phone":"`+bypassPhone+`","photo":"aGVsbG8gZmFjZQ=="}`))
	id, _ := created["id"].(string)
	h := http.Header{"X-Consent-Id": {"dev-kyc"}, "X-Purpose": {"kyc-onboarding"},
		"X-Birth-Number":  {"8001011234"},
		"User-Agent":      {"Mozilla/5.0 (jan.novak@example.cz)"},
		"Referer":         {"https://shop.example/checkout?email=jan.novak@example.cz"},
		"X-900315401233":  {"1"},
		"Accept-Language": {"cs-CZ"},
	}
	resp, body := send(t, e.app, "GET", e.gatewayURL()+"/v/finid/api/v1/verifications/"+id+"?iin="+bypassIIN+"&email=jan.novak%40example.cz", "", h)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	r := lastRequest(t, e.sandboxes.FinID)
	if r.RawQuery != "" {
		t.Errorf("the vendor got the query %q", r.RawQuery)
	}
	for name, vals := range r.Header {
		for _, v := range vals {
			if strings.Contains(v, "8001011234") || strings.Contains(v, "jan.novak") || strings.Contains(v, "cs-CZ") || strings.Contains(name, "900315401233") {
				t.Errorf("the vendor got the app's header %s: %s", name, v)
			}
		}
	}
	intent := e.intentOf(t, resp.Header.Get("X-Request-Id"))
	// Standard headers and names a profile uses are named; anything else could
	// be someone's data (X-Birth-Number could as well be X-Jan-Novak).
	want := []string{"header:(redacted)", "header:accept-language", "header:referer", "header:user-agent", "query:(redacted)", "query:iin"}
	if !slices.Equal(intent.RequestWithheld, want) {
		t.Errorf("withheld %v, want %v", intent.RequestWithheld, want)
	}
	e.assertNoPII(t, "900315401233", "8001011234", "jan.novak", "Birth-Number")
}

func assertProblem(t *testing.T, resp *http.Response, body []byte, kind string) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q", ct)
	}
	var p struct{ Type string }
	if err := json.Unmarshal(body, &p); err != nil || p.Type != "urn:consentgate:problem:"+kind {
		t.Errorf("problem %s, want kind %s", body, kind)
	}
}

// intentOf and outcomeOf return a request's intent and outcome records.
func (e *devEnv) intentOf(t *testing.T, requestID string) audit.Record {
	t.Helper()
	return e.recordOf(t, requestID, audit.KindIntent)
}

func (e *devEnv) outcomeOf(t *testing.T, requestID string) audit.Record {
	t.Helper()
	return e.recordOf(t, requestID, audit.KindOutcome)
}

func (e *devEnv) recordOf(t *testing.T, requestID, kind string) audit.Record {
	t.Helper()
	for _, r := range e.auditRecords(t) {
		if r.RequestID == requestID && r.Kind == kind {
			return r
		}
	}
	t.Fatalf("no %s record for request %s", kind, requestID)
	return audit.Record{}
}

// names reports whether h, a record's subject or identifier HMAC, is the end
// user subject: their HMAC, or its form under their link key.
func (e *devEnv) names(t *testing.T, h, subject string) bool {
	t.Helper()
	terms, err := e.audit.LinkTerms(e.consents.SubjectHMAC(subject))
	if err != nil {
		t.Fatal(err)
	}
	return h != "" && slices.Contains(terms, h)
}

func (e *devEnv) auditRecords(t *testing.T) []audit.Record {
	t.Helper()
	var b bytes.Buffer
	if err := e.audit.Export(context.Background(), &b, audit.Filter{}); err != nil {
		t.Fatal(err)
	}
	var out []audit.Record
	dec := json.NewDecoder(&b)
	for dec.More() {
		var r audit.Record
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// assertNoPII searches the log and the audit export for raw personal values.
func (e *devEnv) assertNoPII(t *testing.T, values ...string) {
	t.Helper()
	var b bytes.Buffer
	if err := e.audit.Export(context.Background(), &b, audit.Filter{}); err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if strings.Contains(b.String(), v) {
			t.Errorf("the audit export holds %q", v)
		}
		if strings.Contains(e.logs.String(), v) {
			t.Errorf("the log holds %q", v)
		}
	}
}
