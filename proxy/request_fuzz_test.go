package proxy

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"

	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/minimise"
)

// fuzzOps are the echo profile's operations with declared request fields; the
// test policy withholds every field named photo.
var fuzzOps = []struct{ path, kind string }{
	{"/verify", configs.RequestJSON}, {"/form", configs.RequestForm}, {"/upload", configs.RequestMultipart},
}

// FuzzRequestMinimisation is the differential test of issue 13: for any body
// bytes, labels, query and header, the gateway either refuses (problem+json, the
// vendor not called) or the vendor receives exactly what a plain reading of the
// request as its operation declares, less every undeclared or withheld field.
func FuzzRequestMinimisation(f *testing.F) {
	env := newTestEnv(f)
	mp := "--b\r\nContent-Disposition: form-data; name=\"iin\"\r\n\r\n900315401233\r\n" +
		"--b\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"p.jpg\"\r\nContent-Type: image/jpeg\r\n\r\nJPEG\r\n--b--\r\n"
	seeds := []struct {
		op                  uint8
		ctype, enc, body, q string
		hname, hval         string
	}{
		{0, "application/json", "", `{"iin":"900315401233","photo":"P","meta":{"n":1,"tags":["a"],"x":2},"y":3}`, "lang=cs&photo=p&email=e", "X-Note", "n"},
		{0, "text/plain", "", `{"photo":"P"}`, "", "", ""},
		{0, "", "", `{"photo":"P"}`, "", "User-Agent", "u"},
		{0, "application/vnd.x+json; charset=UTF-8", "", `{"iin":1e400,"phone":"\u0000","photo":{"a":"P"}}`, "", "X-Birth-Number", "8001011234"},
		{0, "application/json", "gzip", "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff\xabV\xca,\xcbS\xb2R2\xb4\xb04\xb0\x04\x00", "", "", ""},
		{0, "application/json", "", `{"iin":"1","iin":"P"}`, "", "", ""},
		{0, "application/json", "", `{"meta.n":"P","meta":{"tags":[{"a":1},"t",[]]}}`, "", "X-Document-Number", "AB123"},
		{1, "application/x-www-form-urlencoded", "", "iin=1&photo=P&lang=cs&lang=en&x=%41", "lang=cs", "", ""},
		{1, "application/json", "", `{"photo":"P"}`, "", "", ""},
		{1, "application/x-www-form-urlencoded", "", "iin=1;photo=P", "", "", ""},
		{2, "multipart/form-data; boundary=b", "", mp, "", "", ""},
		{2, "multipart/form-data; boundary=b", "", strings.ReplaceAll(mp, "--b--", "--b"), "", "", ""},
		{2, "multipart/mixed; boundary=b", "", mp, "", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.op, s.ctype, s.enc, []byte(s.body), s.q, s.hname, s.hval)
	}
	f.Fuzz(func(t *testing.T, opIndex uint8, ctype, enc string, body []byte, rawQuery, hname, hval string) {
		op := fuzzOps[int(opIndex)%len(fuzzOps)]
		req, err := http.NewRequest("POST", env.gatewayURL+"/v/echo"+op.path+"?"+rawQuery, bytes.NewReader(body))
		if err != nil || req.URL.RawQuery != rawQuery || strings.ContainsFunc(rawQuery, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return // not a request target HTTP/1.1 can carry: net/http answers 400 before any handler
		}
		for name, val := range map[string]string{"Content-Type": ctype, "Content-Encoding": enc, hname: hval} {
			if val != "" && httpguts.ValidHeaderFieldName(name) && httpguts.ValidHeaderFieldValue(val) {
				req.Header.Set(name, val)
			}
		}
		before := env.seen.count()
		resp, err := env.client.Do(req)
		if err != nil {
			return
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Header.Get("Content-Type") == "application/problem+json" {
			if env.seen.count() != before {
				t.Fatalf("refused (%s), but the vendor was called", answer)
			}
			return
		}
		if resp.StatusCode != http.StatusOK || env.seen.count() != before+1 {
			t.Fatalf("status %d, vendor calls %d: %s", resp.StatusCode, env.seen.count()-before, answer)
		}
		got, sentBody := env.seen.last(t)
		compareSent(t, op.kind, req, body, got, []byte(sentBody))
	})
}

// compareSent checks what the vendor got against a plain reading of the app's
// request: the reference decodes, parses and filters on its own.
func compareSent(t *testing.T, kind string, in *http.Request, body []byte, got *http.Request, sent []byte) {
	t.Helper()
	declared := map[string]bool{}
	for _, o := range fuzzDeclared[kind] {
		declared[o] = true
	}
	plain := refDecode(t, in.Header.Get("Content-Encoding"), body)
	switch kind {
	case configs.RequestJSON:
		want := []byte(nil)
		if len(bytes.TrimSpace(plain)) > 0 {
			fields := map[string]string{}
			for p := range declared {
				if !strings.Contains(p, "photo") {
					fields[p] = minimise.ActionKeepScalar
				}
			}
			want = refKeepScalars(t, plain, fields)
		}
		if !sameJSON(t, want, sent) {
			t.Fatalf("vendor got %s, want %s", sent, want)
		}
		// And without the reference: every value sent sits at a declared path.
		if len(sent) > 0 {
			var doc any
			dec := json.NewDecoder(bytes.NewReader(sent))
			dec.UseNumber()
			if err := dec.Decode(&doc); err != nil {
				t.Fatal(err)
			}
			for _, p := range leaves(doc, "") {
				if !declared[p] || strings.Contains(p, "photo") {
					t.Fatalf("vendor got %s, which holds %s", sent, p)
				}
			}
		}
	case configs.RequestForm:
		app, err := url.ParseQuery(string(plain))
		if err != nil {
			t.Fatalf("accepted a form that does not parse: %v", err)
		}
		vendor, _ := url.ParseQuery(string(sent))
		if want := filterValues(app, declared); !reflect.DeepEqual(vendor, want) {
			t.Fatalf("vendor got %v, want %v", vendor, want)
		}
	case configs.RequestMultipart:
		want := refParts(t, in.Header.Get("Content-Type"), plain, declared)
		if vendor := refParts(t, got.Header.Get("Content-Type"), sent, nil); !reflect.DeepEqual(vendor, want) {
			t.Fatalf("vendor got parts %v, want %v", vendor, want)
		}
	}
	query, err := url.ParseQuery(in.URL.RawQuery)
	if err != nil {
		t.Fatalf("accepted a query that does not parse: %v", err)
	}
	wantQuery := url.Values{}
	if kind == configs.RequestJSON { // only /verify declares query parameters
		wantQuery = filterValues(query, map[string]bool{"lang": true, "photo": true})
	}
	if vendor := got.URL.Query(); !reflect.DeepEqual(vendor, wantQuery) {
		t.Fatalf("vendor got query %v, want %v", vendor, wantQuery)
	}
	for name, vals := range got.Header {
		switch name {
		case "Apikey", "Authorization", "Content-Type", "Content-Length", "Accept-Encoding":
		case "X-Note", "X-Document-Number":
			if kind != configs.RequestJSON || !reflect.DeepEqual(vals, onTheWire(in.Header.Values(name))) {
				t.Fatalf("vendor got %s: %q; the app sent %q", name, vals, in.Header.Values(name))
			}
		default:
			t.Fatalf("vendor got the undeclared header %s", name)
		}
	}
}

// fuzzDeclared are the body fields the echo profile declares per media type.
var fuzzDeclared = map[string][]string{
	configs.RequestJSON:      {"iin", "phone", "photo", "meta.tags[]", "meta.n"},
	configs.RequestForm:      {"iin", "photo", "lang"},
	configs.RequestMultipart: {"iin", "photo", "doc"},
}

func refDecode(t *testing.T, enc string, body []byte) []byte {
	t.Helper()
	var rd io.Reader
	var err error
	switch strings.ToLower(strings.TrimSpace(enc)) {
	case "", "identity":
		return body
	case "gzip", "x-gzip":
		rd, err = gzip.NewReader(bytes.NewReader(body))
	case "deflate":
		if rd, err = zlib.NewReader(bytes.NewReader(body)); err != nil {
			rd, err = flate.NewReader(bytes.NewReader(body)), nil
		}
	default:
		t.Fatalf("accepted content coding %q", enc)
	}
	if err != nil {
		t.Fatalf("accepted a body that does not decode: %v", err)
	}
	out, err := io.ReadAll(rd)
	if err != nil {
		t.Fatalf("accepted a body that does not decode: %v", err)
	}
	return out
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	for _, p := range []struct {
		raw []byte
		v   *any
	}{{a, &x}, {b, &y}} {
		dec := json.NewDecoder(bytes.NewReader(p.raw))
		dec.UseNumber()
		if err := dec.Decode(p.v); err != nil {
			t.Fatalf("%q: %v", p.raw, err)
		}
	}
	return reflect.DeepEqual(x, y)
}

// leaves lists the paths of a document's scalars.
func leaves(v any, path string) []string {
	switch x := v.(type) {
	case map[string]any:
		var out []string
		for k, el := range x {
			out = append(out, leaves(el, minimise.JoinPath(path, k))...)
		}
		return out
	case []any:
		var out []string
		for _, el := range x {
			out = append(out, leaves(el, path+"[]")...)
		}
		return out
	}
	return []string{path}
}

func filterValues(v url.Values, keep map[string]bool) url.Values {
	out := url.Values{}
	for k, vals := range v {
		if keep[k] && !strings.Contains(k, "photo") {
			out[k] = vals
		}
	}
	return out
}

type refPart struct{ Name, File, Type, Data string }

// refParts reads a multipart body; with keep set, only kept parts, with the
// file name and media type the gateway is expected to send.
func refParts(t *testing.T, ctype string, body []byte, keep map[string]bool) []refPart {
	t.Helper()
	_, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		t.Fatalf("Content-Type %q: %v", ctype, err)
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var out []refPart
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("multipart accepted that does not parse: %v", err)
		}
		data, err := io.ReadAll(p)
		if err != nil {
			t.Fatalf("multipart accepted that does not parse: %v", err)
		}
		rp := refPart{Name: p.FormName(), File: p.FileName(), Data: string(data)}
		if mt, _, err := mime.ParseMediaType(p.Header.Get("Content-Type")); err == nil {
			rp.Type = mt
		}
		if keep != nil {
			if !keep[rp.Name] || strings.Contains(rp.Name, "photo") {
				continue
			}
			if rp.File != "" {
				rp.File = rp.Name
			}
		}
		out = append(out, rp)
	}
}

// refKeepScalars is the request minimisation oracle, a tree walk independent
// of package minimise: only scalars at the declared paths go out, and a
// container emptied by minimisation goes too.
func refKeepScalars(t *testing.T, body []byte, fields map[string]string) []byte {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("accepted a body the reference cannot read: %v", err)
	}
	prefixes := map[string]bool{"": true}
	for p := range fields {
		for i := range len(p) {
			if p[i] == '.' || p[i] == '[' {
				prefixes[p[:i]] = true
			}
		}
	}
	var walk func(v any, path string) (any, bool)
	walk = func(v any, path string) (any, bool) {
		switch x := v.(type) {
		case map[string]any:
			if !prefixes[path] {
				return nil, false
			}
			out := map[string]any{}
			for k, e := range x {
				if k == "" || strings.ContainsAny(k, ".[]") {
					continue
				}
				if kept, ok := walk(e, minimise.JoinPath(path, k)); ok {
					out[k] = kept
				}
			}
			return out, len(out) > 0 || len(x) == 0
		case []any:
			if !prefixes[path] {
				return nil, false
			}
			out := []any{}
			for _, e := range x {
				if kept, ok := walk(e, path+"[]"); ok {
					out = append(out, kept)
				}
			}
			return out, len(out) > 0 || len(x) == 0
		}
		_, declared := fields[path]
		return v, declared
	}
	out, ok := walk(doc, "")
	if !ok {
		out = map[string]any{}
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// onTheWire is header values as an HTTP/1.1 server reads them: without the
// optional white space around them (RFC 9110, section 5.5).
func onTheWire(vals []string) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = strings.Trim(v, " \t")
	}
	return out
}
