package consent

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/identity"
	"github.com/consentgate/consentgate/refusal"
)

// fakeIdentity stands in for the TLS certificate and identity.Middleware:
// "role/name" in a test header.
func fakeIdentity(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if role, name, ok := strings.Cut(req.Header.Get("X-Test-Identity"), "/"); ok {
			req = req.WithContext(identity.With(req.Context(), identity.Identity{Role: role, Name: name}))
		}
		h.ServeHTTP(w, req)
	})
}

const (
	asApp     = "app/onboarding-web"
	asOther   = "app/loans-app"
	asAdmin   = "admin/secops"
	asAuditor = "auditor/auditor-1"
	anonymous = ""
)

func call(t testing.TB, h http.Handler, method, path, who, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if who != anonymous {
		req.Header.Set("X-Test-Identity", who)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func decode[T any](t testing.TB, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decoding %q: %v", rec.Body, err)
	}
	return v
}

// wantProblem checks an RFC 9457 answer of the given status and kind.
// problem is the RFC 9457 body as a client reads it.
type problem struct {
	Type, Title, Detail string
	Status              int
}

func wantProblem(t testing.TB, rec *httptest.ResponseRecorder, status int, kind refusal.Kind) problem {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q", ct)
	}
	p := decode[problem](t, rec)
	if p.Type != kind.Type() || p.Status != status || p.Title == "" || p.Detail == "" {
		t.Errorf("problem %+v, want kind %s", p, kind)
	}
	return p
}

const createBody = `{"subject":"` + testSubject + `","vendors":["airbank"],"purposes":["kyc-onboarding"],
	"categories":["identity"],"evidence":{"text":"I agree.","reference":"form-1"},"ttl":"720h"}`

func newAPI(t testing.TB, b backend) (*Registry, http.Handler, *hookLog) {
	t.Helper()
	hooks := &hookLog{}
	o := testOptions(newClock())
	o.Hook = hooks.hook
	r, _ := mustOpen(t, b, o)
	return r, fakeIdentity(r.Handler()), hooks
}

func TestHandlerLifecycle(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		r, h, hooks := newAPI(t, b)

		rec := call(t, h, "POST", "/v1/consents", asApp, createBody)
		if rec.Code != http.StatusCreated {
			t.Fatalf("create: %d %s", rec.Code, rec.Body)
		}
		c := decode[Consent](t, rec)
		if rec.Header().Get("Location") != "/v1/consents/"+c.ID || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("headers %v", rec.Header())
		}
		if c.App != "onboarding-web" || c.Status != Active || c.Subject != r.SubjectHMAC(testSubject) {
			t.Errorf("created %+v", c)
		}

		rec = call(t, h, "GET", "/v1/consents/"+c.ID, asApp, "")
		if got := decode[Consent](t, rec); rec.Code != 200 || got.ID != c.ID {
			t.Fatalf("get: %d %s", rec.Code, rec.Body)
		}
		rec = call(t, h, "GET", "/v1/consents?subject="+testSubject, asApp, "")
		if list := decode[struct{ Consents []Consent }](t, rec); rec.Code != 200 || len(list.Consents) != 1 || list.Consents[0].ID != c.ID {
			t.Fatalf("list: %d %s", rec.Code, rec.Body)
		}

		rec = call(t, h, "DELETE", "/v1/consents/"+c.ID, asApp, "")
		rev := decode[Consent](t, rec)
		if rec.Code != 200 || rev.Status != Revoked || rev.RevokedBy != "onboarding-web" {
			t.Fatalf("revoke: %d %s", rec.Code, rec.Body)
		}
		// The gateway's next lookup sees the revocation.
		if got, err := r.Get(t.Context(), c.ID); err != nil || got.Status != Revoked {
			t.Fatalf("Get after DELETE: %+v, %v", got, err)
		}
		again := call(t, h, "DELETE", "/v1/consents/"+c.ID, asApp, "")
		if again.Code != 200 || again.Body.String() != rec.Body.String() {
			t.Errorf("second DELETE: %d %s, want the first answer %s", again.Code, again.Body, rec.Body)
		}
		if n := len(hooks.seen()); n != 2 {
			t.Errorf("hook saw %d changes, want 2", n)
		}
	})
}

func TestHandlerAccess(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		r, h, _ := newAPI(t, b)
		ctx := t.Context()
		mine, err := r.Create(ctx, "onboarding-web", testRequest())
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := r.Create(ctx, "loans-app", testRequest())
		if err != nil {
			t.Fatal(err)
		}
		list := "/v1/consents?subject=" + testSubject

		tests := []struct {
			name   string
			who    string
			method string
			path   string
			body   string
			status int
			kind   refusal.Kind // problem kind; "" for a success
		}{
			{"no certificate", anonymous, "GET", "/v1/consents/" + mine.ID, "", 401, refusal.IdentityRequired},
			{"no certificate, wrong path", anonymous, "GET", "/elsewhere", "", 401, refusal.IdentityRequired},
			{"unknown role", "operator/bob", "GET", "/v1/consents/" + mine.ID, "", 403, refusal.RoleNotAllowed},
			{"app reads own", asApp, "GET", "/v1/consents/" + mine.ID, "", 200, ""},
			{"app reads other's", asApp, "GET", "/v1/consents/" + theirs.ID, "", 404, refusal.NotFound},
			{"app reads unknown", asApp, "GET", "/v1/consents/nope", "", 404, refusal.NotFound},
			{"admin reads any", asAdmin, "GET", "/v1/consents/" + theirs.ID, "", 200, ""},
			{"auditor reads any", asAuditor, "GET", "/v1/consents/" + mine.ID, "", 200, ""},
			{"HEAD is GET", asApp, "HEAD", "/v1/consents/" + mine.ID, "", 200, ""},
			{"list without subject", asApp, "GET", "/v1/consents", "", 400, refusal.BadRequest},
			{"list with two subjects", asApp, "GET", list + "&subject=x", "", 400, refusal.BadRequest},
			{"admin creates", asAdmin, "POST", "/v1/consents", createBody, 403, refusal.Forbidden},
			{"auditor creates", asAuditor, "POST", "/v1/consents", createBody, 403, refusal.Forbidden},
			{"auditor revokes", asAuditor, "DELETE", "/v1/consents/" + mine.ID, "", 403, refusal.Forbidden},
			{"app revokes other's", asOther, "DELETE", "/v1/consents/" + mine.ID, "", 404, refusal.NotFound},
			{"app revokes unknown", asOther, "DELETE", "/v1/consents/nope", "", 404, refusal.NotFound},
			{"PUT a consent", asApp, "PUT", "/v1/consents/" + mine.ID, createBody, 405, refusal.MethodNotAllowed},
			{"PATCH the collection", asAdmin, "PATCH", "/v1/consents", "", 405, refusal.MethodNotAllowed},
			{"DELETE the collection", asAdmin, "DELETE", "/v1/consents", "", 405, refusal.MethodNotAllowed},
			{"unknown route", asAdmin, "GET", "/v1/other", "", 404, refusal.NotFound},
			{"nested route", asAdmin, "GET", "/v1/consents/" + mine.ID + "/x", "", 404, refusal.NotFound},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				rec := call(t, h, tt.method, tt.path, tt.who, tt.body)
				if tt.kind != "" {
					p := wantProblem(t, rec, tt.status, tt.kind)
					if tt.status == 405 && rec.Header().Get("Allow") == "" {
						t.Error("405 without Allow")
					}
					if tt.status == 404 && strings.Contains(p.Detail, "loans-app") {
						t.Errorf("404 reveals the owner: %q", p.Detail)
					}
					return
				}
				if rec.Code != tt.status {
					t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
				}
			})
		}

		// Nothing above changed anything: both consents are active and only two exist.
		for _, id := range []string{mine.ID, theirs.ID} {
			if got, _ := r.Get(ctx, id); got.Status != Active {
				t.Errorf("%s is %s", id, got.Status)
			}
		}
		if n := raw(t, r).count(); n != 4 {
			t.Errorf("%d keys stored, want 4", n)
		}

		// An app lists its own; admins and auditors list every app's.
		for who, want := range map[string]int{asApp: 1, asOther: 1, "app/third": 0, asAdmin: 2, asAuditor: 2} {
			rec := call(t, h, "GET", list, who, "")
			got := decode[struct{ Consents []Consent }](t, rec)
			if rec.Code != 200 || len(got.Consents) != want {
				t.Errorf("%s lists %d consents (%d), want %d", who, len(got.Consents), rec.Code, want)
			}
			if want == 0 && !strings.Contains(rec.Body.String(), `"consents":[]`) {
				t.Errorf("empty list is %s", rec.Body)
			}
		}

		// An admin may revoke any app's consent.
		rec := call(t, h, "DELETE", "/v1/consents/"+theirs.ID, asAdmin, "")
		if got := decode[Consent](t, rec); rec.Code != 200 || got.Status != Revoked || got.RevokedBy != "secops" {
			t.Errorf("admin revoke: %d %s", rec.Code, rec.Body)
		}
	})
}

func TestHandlerCreateRefusals(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		_, h, _ := newAPI(t, b)
		valid := map[string]any{}
		if err := json.Unmarshal([]byte(createBody), &valid); err != nil {
			t.Fatal(err)
		}
		with := func(change func(map[string]any)) string {
			m := map[string]any{}
			for k, v := range valid {
				m[k] = v
			}
			change(m)
			b, _ := json.Marshal(m)
			return string(b)
		}
		tests := []struct {
			name   string
			body   string
			detail string
		}{
			{"empty body", "", "body is empty"},
			{"not JSON", "subject=x", "not valid JSON"},
			{"cut short", createBody[:40], "not valid JSON"},
			{"two objects", createBody + createBody, "single JSON object"},
			{"unknown field", with(func(m map[string]any) { m["owner"] = "loans-app" }), `unknown field \"owner\"`},
			{"wrong type", with(func(m map[string]any) { m["vendors"] = "airbank" }), "field vendors has the wrong type"},
			{"bad time", with(func(m map[string]any) { delete(m, "ttl"); m["expires_at"] = "next year" }), "RFC 3339"},
			{"too large", with(func(m map[string]any) { m["evidence"] = map[string]string{"text": strings.Repeat("a", 65<<10)} }), "larger than 64 KiB"},
			{"no subject", with(func(m map[string]any) { delete(m, "subject") }), "subject is required"},
			{"no vendors", with(func(m map[string]any) { m["vendors"] = []string{} }), "vendors: at least one"},
			{"no purposes", with(func(m map[string]any) { delete(m, "purposes") }), "purposes: at least one"},
			{"no categories", with(func(m map[string]any) { delete(m, "categories") }), "categories: at least one"},
			{"no evidence text", with(func(m map[string]any) { m["evidence"] = map[string]string{"reference": "r"} }), "evidence.text is required"},
			{"unknown vendor", with(func(m map[string]any) { m["vendors"] = []string{"evilcorp"} }), `vendors: \"evilcorp\"`},
			{"unknown purpose", with(func(m map[string]any) { m["purposes"] = []string{"marketing"} }), `purposes: \"marketing\"`},
			{"unknown category", with(func(m map[string]any) { m["categories"] = []string{"pep"} }), `categories: \"pep\"`},
			{"expiry in the past", with(func(m map[string]any) { delete(m, "ttl"); m["expires_at"] = "2020-01-01T00:00:00Z" }), "not in the future"},
			{"expiry too far", with(func(m map[string]any) { delete(m, "ttl"); m["expires_at"] = "2035-01-01T00:00:00Z" }), "longer than the maximum"},
			{"ttl too long", with(func(m map[string]any) { m["ttl"] = "87600h" }), "longer than the maximum"},
			{"both expiries", with(func(m map[string]any) { m["expires_at"] = "2027-01-01T00:00:00Z" }), "not both"},
			{"neither expiry", with(func(m map[string]any) { delete(m, "ttl") }), "expires_at or ttl is required"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				rec := call(t, h, "POST", "/v1/consents", asApp, tt.body)
				wantProblem(t, rec, 400, refusal.BadRequest)
				mustContain(t, "body", rec.Body.String(), tt.detail)
				if strings.Contains(rec.Body.String(), testSubject) {
					t.Errorf("answer quotes the raw subject: %s", rec.Body)
				}
			})
		}
	})
}

func TestHandlerHookFailure(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		r, h, hooks := newAPI(t, b)
		mine, err := r.Create(t.Context(), "onboarding-web", testRequest())
		if err != nil {
			t.Fatal(err)
		}
		before := raw(t, r).count()
		hooks.fail = errors.New("audit segment /var/lib/consentgate/audit.db: no space left")

		for _, c := range []struct{ method, path, body string }{
			{"POST", "/v1/consents", createBody},
			{"DELETE", "/v1/consents/" + mine.ID, ""},
		} {
			rec := call(t, h, c.method, c.path, asApp, c.body)
			p := wantProblem(t, rec, http.StatusServiceUnavailable, refusal.AuditUnavailable)
			if strings.Contains(p.Detail, "no space") {
				t.Errorf("%s answer quotes the hook's error: %q", c.method, p.Detail)
			}
		}
		if n := raw(t, r).count(); n != before {
			t.Errorf("stored keys went from %d to %d", before, n)
		}
		if got, _ := r.Get(t.Context(), mine.ID); got.Status != Active {
			t.Errorf("revocation the audit log refused took effect")
		}
	})
}
