package proxy

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/refusal"
)

// testLimits are configs.BodyLimits' defaults.
var testLimits = configs.BodyLimits{Depth: 32, Keys: 10000, PathBytes: 512, ArrayLength: 10000}

// testOperation is an operation of kind body with declared fields, after the
// loader's defaults.
func testOperation(t testing.TB, body, undeclared string, fields configs.Fields) (*vendor, *operation) {
	t.Helper()
	op := &configs.Operation{ID: "t.op", Method: "POST", Path: "/x", RequestBody: body, Undeclared: undeclared,
		MaxRequestBytes: 4096, Fields: fields, Limits: testLimits}
	if op.Undeclared == "" {
		op.Undeclared = configs.UndeclaredDrop
	}
	v := &vendor{strip: stripRules{headers: append(append([]string{}, appCredentialHeaders...), gatewayHeaders...)}}
	c := compileOperation(op)
	v.ops = []*operation{c}
	c.known = knownNames(map[string]*vendor{"t": v})
	return v, c
}

func newAppRequest(method, target, body string, header map[string]string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	for k, v := range header {
		r.Header.Set(k, v)
	}
	return r
}

func TestReadRequestRefusals(t *testing.T) {
	fields := configs.Fields{Request: map[string]string{"iin": "national_id"}}
	gz := func(s string) string {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte(s))
		zw.Close()
		return b.String()
	}
	tests := []struct {
		name, kind, body, query string
		header                  map[string]string
		status                  int
		errKind                 refusal.Kind // "" = accepted
	}{
		{"json", configs.RequestJSON, `{"iin":"1"}`, "", map[string]string{"Content-Type": "application/json"}, 0, ""},
		{"json upper case with charset", configs.RequestJSON, `{"iin":"1"}`, "", map[string]string{"Content-Type": "APPLICATION/JSON;charset=utf-8"}, 0, ""},
		{"json suffix", configs.RequestJSON, `{"iin":"1"}`, "", map[string]string{"Content-Type": "application/problem+json"}, 0, ""},
		{"empty body needs no type", configs.RequestJSON, ``, "", nil, 0, ""},
		{"text/plain", configs.RequestJSON, `{"iin":"1"}`, "", map[string]string{"Content-Type": "text/plain"}, 415, refusal.MediaType},
		{"no type", configs.RequestJSON, `{"iin":"1"}`, "", nil, 415, refusal.MediaType},
		{"json-ish subtype", configs.RequestJSON, `{"iin":"1"}`, "", map[string]string{"Content-Type": "application/jsonx"}, 415, refusal.MediaType},
		{"+json under text", configs.RequestJSON, `{"iin":"1"}`, "", map[string]string{"Content-Type": "text/x+json"}, 415, refusal.MediaType},
		{"malformed type", configs.RequestJSON, `{"iin":"1"}`, "", map[string]string{"Content-Type": "application/json; charset"}, 415, refusal.MediaType},
		{"utf-16", configs.RequestJSON, `{"iin":"1"}`, "", map[string]string{"Content-Type": "application/json; charset=utf-16"}, 415, refusal.MediaType},
		{"gzip", configs.RequestJSON, gz(`{"iin":"1"}`), "", map[string]string{"Content-Type": "application/json", "Content-Encoding": "GZIP"}, 0, ""},
		{"gzip bomb", configs.RequestJSON, gz(`{"iin":"` + strings.Repeat("1", 10000) + `"}`), "", map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip"}, 413, refusal.TooLarge},
		{"zstd", configs.RequestJSON, `{"iin":"1"}`, "", map[string]string{"Content-Type": "application/json", "Content-Encoding": "zstd"}, 415, refusal.Encoding},
		{"form on json", configs.RequestJSON, `iin=1`, "", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, refusal.MediaType},
		{"json on form", configs.RequestForm, `{"iin":"1"}`, "", map[string]string{"Content-Type": "application/json"}, 415, refusal.MediaType},
		{"form", configs.RequestForm, `iin=1`, "", map[string]string{"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}, 0, ""},
		{"form with a bad escape", configs.RequestForm, `iin=%zz`, "", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 400, refusal.MalformedBody},
		{"form with semicolons", configs.RequestForm, `a=1;iin=2`, "", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 400, refusal.MalformedBody},
		{"multipart without boundary", configs.RequestMultipart, "--x\r\n", "", map[string]string{"Content-Type": "multipart/form-data"}, 400, refusal.MalformedBody},
		{"multipart cut short", configs.RequestMultipart, "--x\r\nContent-Disposition: form-data; name=\"iin\"\r\n\r\n1", "", map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, 400, refusal.MalformedBody},
		{"multipart part without a name", configs.RequestMultipart, "--x\r\nContent-Disposition: attachment\r\n\r\n1\r\n--x--\r\n", "", map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, 400, refusal.MalformedBody},
		{"body where none is taken", configs.RequestNone, `{}`, "", map[string]string{"Content-Type": "application/json"}, 415, refusal.MediaType},
		{"query with a bad escape", configs.RequestNone, ``, "iin=%zz", nil, 400, refusal.MalformedQuery},
		{"query with a semicolon", configs.RequestNone, ``, "a=1;iin=2", nil, 400, refusal.MalformedQuery},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fields
			if tt.kind == configs.RequestNone {
				f = configs.Fields{}
			}
			v, op := testOperation(t, tt.kind, "", f)
			_, err := readRequest(newAppRequest("POST", "/x?"+tt.query, tt.body, tt.header), v, op)
			if tt.errKind == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var rr *refusal.Refusal
			if !errors.As(err, &rr) || rr.Status != tt.status || rr.Kind != tt.errKind {
				t.Fatalf("got %#v, want %d %s", err, tt.status, tt.errKind)
			}
		})
	}
}

func TestMinimizeEveryMediaType(t *testing.T) {
	fields := configs.Fields{Request: map[string]string{"iin": "national_id", "photo": "biometric", "lang": "metadata"},
		Query: map[string]string{"lang": "metadata", "iin": "national_id"}, Headers: map[string]string{"X-Note": "metadata"}}
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	fw, _ := mw.CreateFormFile("photo", "jan-novak-passport.jpg")
	fw.Write([]byte("JPEGDATA"))
	fw, _ = mw.CreateFormFile("iin", "jan-novak-900315401233.txt")
	fw.Write([]byte("900315401233"))
	mw.WriteField("extra", "undeclared value")
	mw.Close()
	tests := []struct {
		name, kind, ctype, body string
		want                    map[string][]string // field -> values sent
	}{
		{"json", configs.RequestJSON, "application/json", `{"iin":"900315401233","photo":"JPEGDATA","extra":"x","lang":{"nested":"x"}}`,
			map[string][]string{"iin": {"900315401233"}}},
		{"form", configs.RequestForm, "application/x-www-form-urlencoded", `iin=900315401233&photo=JPEGDATA&extra=x&lang=cs&lang=en`,
			map[string][]string{"iin": {"900315401233"}, "lang": {"cs", "en"}}},
		{"multipart", configs.RequestMultipart, mw.FormDataContentType(), mp.String(),
			map[string][]string{"iin": {"900315401233"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, op := testOperation(t, tt.kind, "", fields)
			r := newAppRequest("POST", "/x?lang=cs&email=a%40b.cz&iin=900315401233", tt.body, map[string]string{
				"Content-Type": tt.ctype, "X-Note": "n", "User-Agent": "agent", "X-Consent-Id": "c", "Authorization": "Bearer x"})
			req, err := readRequest(r, v, op)
			if err != nil {
				t.Fatal(err)
			}
			sent, err := req.minimize([]string{"photo", "query:iin"})
			if err != nil {
				t.Fatal(err)
			}
			got := decodeSent(t, tt.kind, sent.contentType, sent.body)
			if !equalValues(got, tt.want) {
				t.Errorf("body sent %v, want %v", got, tt.want)
			}
			if !equalValues(sent.query, map[string][]string{"lang": {"cs"}}) {
				t.Errorf("query sent %v", sent.query)
			}
			if !equalValues(sent.header, map[string][]string{"X-Note": {"n"}}) {
				t.Errorf("headers sent %v", sent.header)
			}
			if !slices.Contains(sent.withheld, "photo") || !slices.Contains(sent.withheld, "query:(redacted)") ||
				!slices.Contains(sent.withheld, "query:iin") || !slices.Contains(sent.withheld, "header:user-agent") {
				t.Errorf("withheld %v", sent.withheld)
			}
			if slices.Contains(sent.withheld, "header:x-consent-id") || slices.Contains(sent.withheld, "header:authorization") {
				t.Errorf("consentgate's own and credential headers reported as data: %v", sent.withheld)
			}
			if !slices.Contains(sent.disclosed, "iin") || !slices.Contains(sent.disclosed, "header:x-note") || !slices.Contains(sent.disclosed, "query:lang") {
				t.Errorf("disclosed %v", sent.disclosed)
			}
			if !slices.Equal(sent.identifiers, []string{"900315401233"}) {
				t.Errorf("identifiers %v: the disclosed IIN only", sent.identifiers)
			}
			if bytes.Contains(sent.body, []byte("jan-novak")) {
				t.Errorf("a file name that names the person was sent: %s", sent.body)
			}
		})
	}
}

// decodeSent reads a body as the vendor would: field -> values.
func decodeSent(t *testing.T, kind, ctype string, body []byte) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	switch kind {
	case configs.RequestJSON:
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("sent %q: %v", body, err)
		}
		for k, v := range m {
			s, _ := json.Marshal(v)
			out[k] = []string{strings.Trim(string(s), `"`)}
		}
	case configs.RequestForm:
		q, err := url.ParseQuery(string(body))
		if err != nil {
			t.Fatal(err)
		}
		return q
	case configs.RequestMultipart:
		_, params, err := mime.ParseMediaType(ctype)
		if err != nil {
			t.Fatal(err)
		}
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(p)
			out[p.FormName()] = append(out[p.FormName()], string(b))
		}
	}
	return out
}

func equalValues[M ~map[string][]string](got M, want map[string][]string) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			return false
		}
	}
	return true
}

func TestUndeclaredRefusedWhenTheProfileSaysSo(t *testing.T) {
	v, op := testOperation(t, configs.RequestJSON, configs.UndeclaredRefuse, configs.Fields{Request: map[string]string{"iin": "national_id"}})
	for name, r := range map[string]*http.Request{
		"body":   newAppRequest("POST", "/x", `{"iin":"1","extra":"2"}`, map[string]string{"Content-Type": "application/json"}),
		"query":  newAppRequest("POST", "/x?email=a", `{"iin":"1"}`, map[string]string{"Content-Type": "application/json"}),
		"header": newAppRequest("POST", "/x", `{"iin":"1"}`, map[string]string{"Content-Type": "application/json", "X-Birth-Number": "8001011234"}),
	} {
		_, err := readRequest(r, v, op)
		if rr := new(refusal.Refusal); !errors.As(err, &rr) || rr.Status != 400 || rr.Kind != refusal.UndeclaredField {
			t.Errorf("%s: %v", name, err)
		} else if strings.Contains(rr.Detail, "8001011234") {
			t.Errorf("%s: the refusal repeats a value: %s", name, rr.Detail)
		}
	}
	if _, err := readRequest(newAppRequest("POST", "/x", `{"iin":"1"}`, map[string]string{"Content-Type": "application/json"}), v, op); err != nil {
		t.Errorf("a declared field only: %v", err)
	}
}

func TestUndeclaredNamesAreRedacted(t *testing.T) {
	v, op := testOperation(t, configs.RequestJSON, "", configs.Fields{Request: map[string]string{"a1234": "metadata"}})
	r := newAppRequest("POST", "/x?900315401233=1&jan.novak%40example.cz=1&lang=cs", `{"a1234":1,"b":{"8001011234":1},"c d":1,"e_f-g":1}`,
		map[string]string{"Content-Type": "application/json", "X-IIN-900315401233": "1"})
	req, err := readRequest(r, v, op)
	if err != nil {
		t.Fatal(err)
	}
	// Only names a profile uses (a1234) and standard headers are named.
	want := []string{"(redacted)", "(redacted).(redacted)", "a1234", "header:(redacted)", "query:(redacted)"}
	slices.Sort(want)
	if !slices.Equal(req.present, want) {
		t.Errorf("present %v, want %v", req.present, want)
	}
	if _, ok := op.sent["a1234"]; !ok {
		t.Fatal("declared field missing")
	}
}

// A path placeholder the profile gives a category is a request field: the
// audit record names it disclosed and keeps its value as an identifier; where
// the decision withholds it (the test policy drops anything named photo), the
// call is refused before the vendor, since a path cannot go without a segment.
func TestPathFields(t *testing.T) {
	env := newTestEnv(t)
	resp, body := do(t, env.client, "GET", env.gatewayURL+"/v/echo/persons/8501011234/checks/7", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("person: %d %s", resp.StatusCode, body)
	}
	if r, _ := env.seen.last(t); r.URL.EscapedPath() != "/base/persons/8501011234/checks/7" {
		t.Errorf("vendor path %s", r.URL.EscapedPath())
	}
	var rec audit.Record
	for _, r := range env.exportAll(t) {
		if r.Operation == "echo.person" && r.Kind == audit.KindIntent {
			rec = r
		}
	}
	if !slices.Contains(rec.RequestDisclosed, "path:iin") || slices.Contains(rec.RequestDisclosed, "path:check") || len(rec.Identifiers) != 1 {
		t.Errorf("intent record: disclosed %v, %d identifiers", rec.RequestDisclosed, len(rec.Identifiers))
	}

	n := env.seen.count()
	resp, body = do(t, env.client, "GET", env.gatewayURL+"/v/echo/photos/face-123", "", nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "path-field-withheld") || !strings.Contains(body, "path:photo") {
		t.Errorf("withheld path field: %d %s", resp.StatusCode, body)
	}
	if env.seen.count() != n {
		t.Error("the vendor was called with a path field the decision withholds")
	}
}

// A body field spelled as a field of another place (path:iin, query:lang,
// header:x-note) is never that field: it is undeclared, refused where the
// profile refuses those and otherwise withheld, even when the real query
// parameter of that name is sent and kept.
func TestBodyFieldsNamedLikeOtherPlaces(t *testing.T) {
	fields := configs.Fields{Request: map[string]string{"note": "metadata"}, Query: map[string]string{"lang": "metadata"},
		Path: map[string]string{"iin": "national_id"}}
	for _, tt := range []struct{ kind, contentType, body string }{
		{configs.RequestJSON, "application/json", `{"note":"x","path:iin":"8001011234","query:lang":"8001011234"}`},
		{configs.RequestForm, "application/x-www-form-urlencoded", `note=x&path%3Aiin=8001011234&query%3Alang=8001011234`},
	} {
		t.Run(tt.kind, func(t *testing.T) {
			v, op := testOperation(t, tt.kind, configs.UndeclaredRefuse, fields)
			op.cfg.Path = "/x/{iin}"
			r := newAppRequest("POST", "/x?lang=cs", tt.body, map[string]string{"Content-Type": tt.contentType})
			if _, err := readRequest(r, v, op); err == nil {
				t.Error("undeclared: refuse let a body field named like a path or query field through")
			}
			v, op = testOperation(t, tt.kind, configs.UndeclaredDrop, fields)
			req, err := readRequest(newAppRequest("POST", "/x?lang=cs", tt.body, map[string]string{"Content-Type": tt.contentType}), v, op)
			if err != nil {
				t.Fatal(err)
			}
			sent, err := req.minimize(nil)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(sent.body), "8001011234") || sent.query.Get("lang") != "cs" {
				t.Errorf("sent body %s, query %v", sent.body, sent.query)
			}
		})
	}
}
