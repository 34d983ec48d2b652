package consent_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/identity"
)

// exampleOptions: in production the key comes from the secret provider and the allowed
// values from the vendor profiles.
func exampleOptions() consent.Options {
	return consent.Options{
		SubjectKey: []byte("example key, 32 bytes or longer!"),
		Vendors:    []string{"airbank", "kb"},
		Purposes:   []string{"kyc-onboarding"},
		Categories: []string{"identity", "address"},
		Now:        func() time.Time { return time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC) },
	}
}

func ExampleRegistry_Create() {
	dir, _ := os.MkdirTemp("", "consent-example")
	defer os.RemoveAll(dir)
	reg, err := consent.Open(filepath.Join(dir, "consents.db"), exampleOptions())
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()
	ctx := context.Background()

	c, err := reg.Create(ctx, "onboarding-web", consent.Request{
		Subject:    "user-42", // the app's own user id: hashed, never stored
		Vendors:    []string{"airbank"},
		Purposes:   []string{"kyc-onboarding"},
		Categories: []string{"identity", "address"},
		Evidence:   consent.Evidence{Text: "I agree that Air Bank may confirm my identity.", Reference: "form-7"},
		TTL:        "720h",
	})
	if err != nil {
		log.Fatal(err)
	}

	// The gateway looks the consent up by the id the app sends in X-Consent-Id.
	got, err := reg.Get(ctx, c.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.App, got.Status, got.Vendors, got.ExpiresAt.Format(time.RFC3339))
	fmt.Println(got.Subject == reg.SubjectHMAC("user-42"), got.Subject == "user-42")
	// Output:
	// onboarding-web active [airbank] 2026-12-21T10:00:00Z
	// true false
}

func ExampleRegistry_Revoke() {
	dir, _ := os.MkdirTemp("", "consent-example")
	defer os.RemoveAll(dir)
	reg, err := consent.Open(filepath.Join(dir, "consents.db"), exampleOptions())
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()
	ctx := context.Background()
	c, err := reg.Create(ctx, "onboarding-web", consent.Request{
		Subject: "user-42", Vendors: []string{"kb"}, Purposes: []string{"kyc-onboarding"},
		Categories: []string{"identity"}, Evidence: consent.Evidence{Text: "I agree."}, TTL: "24h",
	})
	if err != nil {
		log.Fatal(err)
	}

	_, err = reg.Revoke(ctx, "loans-app", "app", c.ID) // not its consent
	fmt.Println(err != nil && strings.Contains(err.Error(), "not found"))
	rev, _ := reg.Revoke(ctx, "onboarding-web", "app", c.ID)
	got, _ := reg.Get(ctx, c.ID) // the very next read sees it
	fmt.Println(rev.Status, got.Status, got.RevokedBy)
	// Output:
	// true
	// revoked revoked onboarding-web
}

func ExampleRegistry_Handler() {
	dir, _ := os.MkdirTemp("", "consent-example")
	defer os.RemoveAll(dir)
	reg, err := consent.Open(filepath.Join(dir, "consents.db"), exampleOptions())
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()

	// The gateway's identity.Middleware reads the caller's verified certificate;
	// this stand-in trusts a header, which only an example may do.
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if role, name, ok := strings.Cut(r.Header.Get("X-Example-Identity"), "/"); ok {
			r = r.WithContext(identity.With(r.Context(), identity.Identity{Role: role, Name: name}))
		}
		reg.Handler().ServeHTTP(w, r)
	})
	post := func(who string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/v1/consents", strings.NewReader(`{"subject":"user-42",
			"vendors":["airbank"],"purposes":["kyc-onboarding"],"categories":["identity"],
			"evidence":{"text":"I agree."},"expires_at":"2027-01-01T00:00:00Z"}`))
		req.Header.Set("X-Example-Identity", who)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	rec := post("admin/secops") // admins may not create consents on an app's behalf
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	rec = post("app/onboarding-web")
	fmt.Println(rec.Code, strings.HasPrefix(rec.Header().Get("Location"), "/v1/consents/"))
	// Output:
	// 403 application/problem+json
	// 201 true
}
