package console

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/identity"
)

func newConsole(t *testing.T) (http.Handler, *audit.Log) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(filepath.Join(t.TempDir(), "audit.db"), audit.Options{SigningKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	for range 5 {
		if _, err := l.Append(context.Background(), audit.Record{Kind: audit.KindIntent, App: "onboarding-web", Vendor: "kb"}); err != nil {
			t.Fatal(err)
		}
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	return New(Options{Audit: l, Secret: secret}), l
}

var (
	auditor = identity.Identity{Role: identity.RoleAuditor, Name: "auditor", URI: "spiffe://consentgate.test/auditor/auditor"}
	app     = identity.Identity{Role: identity.RoleApp, Name: "onboarding-web", URI: "spiffe://consentgate.test/app/onboarding-web"}
)

func do(h http.Handler, who identity.Identity, method, target string, form url.Values, header map[string]string) *httptest.ResponseRecorder {
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	r := httptest.NewRequest(method, "https://127.0.0.1:9443"+target, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	r = r.WithContext(identity.With(r.Context(), who))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// Pages are for auditors and admins, carry a strict CSP, and hold no inline
// script or style for it to refuse.
func TestConsolePagesAndRoles(t *testing.T) {
	h, l := newConsole(t)
	for _, path := range []string{"/console/", "/console/integrity"} {
		w := do(h, auditor, "GET", path, nil, nil)
		body := w.Body.String()
		if w.Code != http.StatusOK || !strings.Contains(w.Header().Get("Content-Security-Policy"), "default-src 'none'") ||
			!strings.Contains(body, "auditor (auditor)") || strings.Contains(body, "<script") || strings.Contains(body, "style=") {
			t.Errorf("GET %s as an auditor: %d %q\n%s", path, w.Code, w.Header().Get("Content-Security-Policy"), body)
		}
		if w := do(h, app, "GET", path, nil, nil); w.Code != http.StatusForbidden {
			t.Errorf("GET %s as an app: %d", path, w.Code)
		}
	}
	if w := do(h, auditor, "GET", "/console/integrity", nil, nil); !strings.Contains(w.Body.String(), "record 5,") ||
		!strings.Contains(w.Body.String(), "none in the last 1100 records") {
		t.Errorf("the integrity page does not show the head (record 5) and no checkpoint:\n%s", w.Body)
	}
	if err := l.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w := do(h, auditor, "GET", "/console/integrity", nil, nil); !strings.Contains(w.Body.String(), `<a href="/console/records/6">record 6</a>`) ||
		!strings.Contains(w.Body.String(), "vouching for records 1 to 5") {
		t.Errorf("the integrity page does not show the last checkpoint (record 6):\n%s", w.Body)
	}
	if w := do(h, auditor, "GET", "/console/static/console.css", nil, nil); w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/css") {
		t.Errorf("the stylesheet: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
}

// A verification runs only from the console's own form, and is recorded.
func TestConsoleVerifyNeedsItsOwnForm(t *testing.T) {
	h, l := newConsole(t)
	page := do(h, auditor, "GET", "/console/integrity", nil, nil).Body.String()
	i := strings.Index(page, `name="csrf" value="`)
	if i < 0 {
		t.Fatalf("no CSRF token in the form:\n%s", page)
	}
	token := page[i+len(`name="csrf" value="`):][:64]
	head := l.Head().Seq
	for name, c := range map[string]struct {
		form   url.Values
		header map[string]string
	}{
		"no token":            {url.Values{}, nil},
		"another's token":     {url.Values{"csrf": {strings.Repeat("0", 64)}}, nil},
		"from another site":   {url.Values{"csrf": {token}}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		"from another origin": {url.Values{"csrf": {token}}, map[string]string{"Origin": "https://evil.example"}},
	} {
		if w := do(h, auditor, "POST", "/console/integrity", c.form, c.header); w.Code != http.StatusForbidden {
			t.Errorf("%s: %d", name, w.Code)
		}
	}
	if l.Head().Seq != head {
		t.Fatal("a refused form was recorded or ran")
	}
	w := do(h, auditor, "POST", "/console/integrity", url.Values{"csrf": {token}}, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "https://127.0.0.1:9443"})
	// Six records: the five, and the record of this verification, written before it.
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "Verified: 6 records") {
		t.Fatalf("the console's own form: %d\n%s", w.Code, w.Body)
	}
	var b bytes.Buffer
	if err := l.Export(context.Background(), &b, audit.Filter{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"action":"console verify"`) || !strings.Contains(b.String(), `"action":"console verify result"`) ||
		!strings.Contains(b.String(), `"result":"verified"`) {
		t.Error("the verification is not in the audit log")
	}
}

var admin = identity.Identity{Role: identity.RoleAdmin, Name: "secops", URI: "spiffe://consentgate.test/admin/secops"}

// Every form that changes state or names a person is refused without the
// console's own token, from another site, or from an opaque origin; the admin
// forms are refused to an auditor even with a valid token.
func TestConsoleFormsAreGuarded(t *testing.T) {
	h, l := newConsole(t)
	page := do(h, auditor, "GET", "/console/integrity", nil, nil).Body.String()
	i := strings.Index(page, `name="csrf" value="`)
	auditorToken := page[i+len(`name="csrf" value="`):][:64]
	head := l.Head().Seq
	posts := []string{"/console/integrity", "/console/person", "/console/person/report", "/console/consents",
		"/console/consents/c-1/revoke", "/console/policy/dry-run"}
	for _, path := range posts {
		for name, c := range map[string]struct {
			form   url.Values
			header map[string]string
		}{
			"no token":              {url.Values{"subject": {"a"}}, nil},
			"a wrong token":         {url.Values{"subject": {"a"}, "csrf": {strings.Repeat("ab", 32)}}, nil},
			"from another site":     {url.Values{"subject": {"a"}, "csrf": {auditorToken}}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
			"from an opaque origin": {url.Values{"subject": {"a"}, "csrf": {auditorToken}}, map[string]string{"Origin": "null"}},
		} {
			if w := do(h, auditor, "POST", path, c.form, c.header); w.Code != http.StatusForbidden {
				t.Errorf("POST %s, %s: %d", path, name, w.Code)
			}
		}
	}
	for _, path := range []string{"/console/consents/c-1/revoke", "/console/policy/dry-run"} {
		w := do(h, auditor, "POST", path, url.Values{"csrf": {auditorToken}, "confirm": {"yes"}}, map[string]string{"Sec-Fetch-Site": "same-origin"})
		if w.Code != http.StatusForbidden {
			t.Errorf("an auditor's POST %s with a valid token: %d", path, w.Code)
		}
	}
	// A token is bound to its holder: the auditor's does not pass for an admin.
	if w := do(h, admin, "POST", "/console/consents/c-1/revoke", url.Values{"csrf": {auditorToken}, "confirm": {"yes"}}, nil); w.Code != http.StatusForbidden {
		t.Errorf("an admin's POST with the auditor's token: %d", w.Code)
	}
	if l.Head().Seq != head {
		t.Error("a refused form was recorded or ran")
	}
	// No state changes by GET.
	if w := do(h, admin, "GET", "/console/consents/c-1/revoke", nil, nil); w.Code != http.StatusMethodNotAllowed && w.Code != http.StatusNotFound {
		t.Errorf("GET of the revoke form: %d", w.Code)
	}
}

// A record's page links the checkpoint that vouches for it, and an intent
// and its outcome to each other, across the records of other calls between.
func TestRecordPageLinksCheckpointAndPair(t *testing.T) {
	h, l := newConsole(t) // records 1 to 5
	allow := true
	for _, r := range []audit.Record{
		{Kind: audit.KindIntent, RequestID: "req-a", App: "web", Vendor: "kb", Allow: &allow}, // 6
		{Kind: audit.KindIntent, RequestID: "req-b", App: "web", Vendor: "kb", Allow: &allow}, // 7
		{Kind: audit.KindOutcome, RequestID: "req-b", App: "web", Vendor: "kb", Status: 200},  // 8
		{Kind: audit.KindOutcome, RequestID: "req-a", App: "web", Vendor: "kb", Status: 200},  // 9
	} {
		if _, err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Checkpoint(context.Background()); err != nil { // 10
		t.Fatal(err)
	}
	// A call whose outcome comes 1,500 records after its intent.
	far, err := l.Append(context.Background(), audit.Record{Kind: audit.KindIntent, RequestID: "req-far", App: "web", Vendor: "kb", Allow: &allow})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 15 {
		wg.Go(func() {
			for range 100 {
				l.Append(context.Background(), audit.Record{Kind: audit.KindIntent, App: "web", Vendor: "kb"})
			}
		})
	}
	wg.Wait()
	out, err := l.Append(context.Background(), audit.Record{Kind: audit.KindOutcome, RequestID: "req-far", App: "web", Vendor: "kb", Status: 200})
	if err != nil {
		t.Fatal(err)
	}
	farPage := fmt.Sprintf("/console/records/%d", far.Seq)
	outLink := fmt.Sprintf(`<a href="/console/records/%d">record %d</a>`, out.Seq, out.Seq)
	for path, want := range map[string][]string{
		"/console/records/6": {`the signed checkpoint <a href="/console/records/10">10</a>`, `<a href="/console/records/9">record 9</a>`},
		"/console/records/9": {`the signed checkpoint <a href="/console/records/10">10</a>`, `<a href="/console/records/6">record 6</a>`},
		"/console/records/2": {`the signed checkpoint <a href="/console/records/10">10</a>`},
		farPage:              {outLink},
	} {
		body := do(h, auditor, "GET", path, nil, nil).Body.String()
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("%s lacks %s:\n%s", path, w, body)
			}
		}
	}
}
