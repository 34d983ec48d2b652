package admin

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/identity"
	"github.com/consentgate/consentgate/refusal"
)

var subjectKey = []byte("test-subject-hmac-key-0123456789abcdef")

// newStores are an audit log and a consent registry (under subjectKey) for a test.
func newStores(t *testing.T) (*audit.Log, *consent.Registry) {
	t.Helper()
	dir := t.TempDir()
	_, signing, _ := ed25519.GenerateKey(rand.Reader)
	alog, err := audit.Open(filepath.Join(dir, "audit.db"), audit.Options{Node: "test", SigningKey: signing})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alog.Close() })
	reg, err := consent.Open(filepath.Join(dir, "state.db"), consent.Options{SubjectKey: subjectKey,
		Vendors: []string{"bank"}, Purposes: []string{"p"}, Categories: []string{"identity"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return alog, reg
}

// Who may use which admin route: one check (identity.Require) answers 401
// without an identity and 403 role-not-allowed for a proven role the route is
// not for, on every route, and reading the audit log is itself recorded.
func TestRolesPerRoute(t *testing.T) {
	alog, reg := newStores(t)
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("# metrics\n")) })
	h := New(Options{Consents: reg, Audit: alog, Metrics: metrics})

	const none = ""
	for _, tc := range []struct {
		method, path string
		role         string
		status       int
		kind         refusal.Kind
	}{
		{"GET", "/v1/audit/head", none, 401, refusal.IdentityRequired},
		{"GET", "/v1/audit/head", identity.RoleApp, 403, refusal.RoleNotAllowed},
		{"GET", "/v1/audit/head", identity.RoleAuditor, 200, ""},
		{"GET", "/v1/audit/head", identity.RoleAdmin, 200, ""},
		{"GET", "/v1/audit/export", identity.RoleApp, 403, refusal.RoleNotAllowed},
		{"GET", "/v1/audit/export", identity.RoleAuditor, 200, ""},
		{"GET", "/v1/audit/snapshot", identity.RoleApp, 403, refusal.RoleNotAllowed},
		{"GET", "/v1/audit/tail?after=x", identity.RoleAuditor, 400, refusal.BadRequest},
		{"GET", "/metrics", none, 401, refusal.IdentityRequired},
		{"GET", "/metrics", identity.RoleApp, 403, refusal.RoleNotAllowed},
		{"GET", "/metrics", identity.RoleAdmin, 200, ""},
		{"GET", "/v1/consents/nope", none, 401, refusal.IdentityRequired},
		{"GET", "/v1/consents/nope", identity.RoleApp, 404, refusal.NotFound},
		{"GET", "/healthz", none, 200, ""},
		{"GET", "/v1/elsewhere", identity.RoleAdmin, 404, refusal.NoRoute},
		{"GET", "/v1/elsewhere", none, 401, refusal.IdentityRequired},
		{"DELETE", "/v1/policy/status", none, 401, refusal.IdentityRequired},
		{"DELETE", "/v1/policy/status", identity.RoleAdmin, 405, refusal.MethodNotAllowed},
		{"POST", "/v1/audit/export", identity.RoleAuditor, 405, refusal.MethodNotAllowed},
		{"GET", "/v1/subjects/erase", identity.RoleAdmin, 405, refusal.MethodNotAllowed},
		{"HEAD", "/v1/audit/head", identity.RoleAuditor, 200, ""},
		{"POST", "/v1/subjects/erase", identity.RoleApp, 403, refusal.RoleNotAllowed},
		{"POST", "/v1/subjects/erase", identity.RoleAuditor, 403, refusal.RoleNotAllowed},
		{"POST", "/v1/subjects/erase", identity.RoleAdmin, 400, refusal.BadRequest}, // no body
	} {
		t.Run(tc.method+" "+tc.path+" as "+tc.role, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.role != none {
				r = r.WithContext(identity.With(r.Context(), identity.Identity{Role: tc.role, Name: "someone"}))
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if tc.kind != "" && !strings.Contains(rec.Body.String(), `"type":"`+tc.kind.Type()+`"`) {
				t.Errorf("body %s, want kind %s", rec.Body, tc.kind)
			}
			if allow := rec.Header().Get("Allow"); (tc.status == 405) != (allow != "") || (allow != "" && strings.Contains(allow, tc.method)) {
				t.Errorf("Allow %q for %s", allow, tc.method)
			}
			if id := rec.Header().Get("X-Request-Id"); id == "" || (tc.kind != "" && !strings.Contains(rec.Body.String(), `"request_id":"`+id+`"`)) {
				t.Errorf("X-Request-Id %q, body %s: every answer carries its request id", id, rec.Body)
			}
		})
	}
	var out strings.Builder
	if err := alog.Export(t.Context(), &out, audit.Filter{}); err != nil {
		t.Fatal(err)
	}
	exports := strings.Count(out.String(), `"action":"audit export"`)
	if exports != 1 {
		t.Errorf("%d audit exports recorded, want the one that was allowed", exports)
	}
}

// A person looked up by an app user id with separators is found by both
// forms: the identifier HMAC (normalised) and the consent registry's (as typed).
func TestSubjectLookupGivesTheRegistrysForm(t *testing.T) {
	alog, reg := newStores(t)
	h := New(Options{Consents: reg, Audit: alog,
		SubjectHMAC: func(_ context.Context, v string) (string, error) { return audit.HMAC(subjectKey, v), nil }})
	for _, id := range []string{"123-456", " alice ", "alice"} {
		r := httptest.NewRequest("POST", "/v1/audit/subject-hmac", strings.NewReader(`{"subject":"`+id+`"}`))
		r = r.WithContext(identity.With(r.Context(), identity.Identity{Role: identity.RoleAuditor, Name: "auditor"}))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var got struct {
			SubjectHMAC string   `json:"subject_hmac"`
			Terms       []string `json:"terms"`
		}
		json.Unmarshal(w.Body.Bytes(), &got)
		raw := reg.SubjectHMAC(id)
		if raw != audit.SubjectHMAC(subjectKey, id) {
			t.Fatalf("%q: the registry's HMAC %s is not audit.SubjectHMAC's, which offline lookups use", id, raw)
		}
		if w.Code != http.StatusOK || got.SubjectHMAC != audit.HMAC(subjectKey, id) || !slices.Contains(got.Terms, raw) {
			t.Errorf("%q: %d %+v (registry form %s)", id, w.Code, got, raw)
		}
	}
}
