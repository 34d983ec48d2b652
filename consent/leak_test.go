package consent

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/internal/logsink"
)

// TestRawSubjectNeverLeaves drives every route and failure with the raw subject, then
// searches the store (the bbolt file's bytes; PostgreSQL's tables and server log), every
// answer (headers too) and the log for it.
func TestRawSubjectNeverLeaves(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		logs := &logsink.Buffer{}
		hooks := &hookLog{}
		o := testOptions(newClock())
		o.Hook = hooks.hook
		o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		r, st := mustOpen(t, b, o)
		h := fakeIdentity(r.Handler())
		var answers strings.Builder
		do := func(method, target, who, body string) *Consent {
			rec := call(t, h, method, target, who, body)
			fmt.Fprintf(&answers, "%d %v %s\n", rec.Code, rec.Header(), rec.Body)
			var c Consent
			if rec.Code == 200 || rec.Code == 201 {
				c = decode[Consent](t, rec)
			}
			return &c
		}

		created := do("POST", "/v1/consents", asApp, createBody)
		if created.ID == "" {
			t.Fatal("create failed")
		}
		do("POST", "/v1/consents", asApp, strings.Replace(createBody, `"airbank"`, `"evilcorp"`, 1))
		do("POST", "/v1/consents", asApp, strings.Replace(createBody, `"ttl"`, `"tll"`, 1))
		do("POST", "/v1/consents", asApp, strings.Replace(createBody, `"`+testSubject+`"`, `42`, 1))
		do("POST", "/v1/consents", asAdmin, createBody)
		for _, who := range []string{asApp, asOther, asAdmin, asAuditor, anonymous} {
			do("GET", "/v1/consents?subject="+testSubject, who, "")
			do("GET", "/v1/consents/"+created.ID, who, "")
		}
		do("PUT", "/v1/consents?subject="+testSubject, asApp, createBody)
		hooks.fail = errors.New("audit log unavailable")
		do("POST", "/v1/consents", asApp, createBody)
		do("DELETE", "/v1/consents/"+created.ID, asApp, "")
		hooks.fail = nil
		do("DELETE", "/v1/consents/"+created.ID, asApp, "")
		if _, err := r.Create(t.Context(), "loans-app", testRequest()); err != nil {
			t.Fatal(err)
		}
		if err := r.Put(t.Context(), Consent{ID: "seed-raw", Subject: testSubject}); err == nil {
			t.Fatal("Put took a raw subject")
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}

		stored := st.contents(t)
		hmac := r.SubjectHMAC(testSubject)
		if !strings.Contains(stored, hmac) {
			t.Fatal("the store does not hold the subject HMAC either: this search proves nothing")
		}
		for what, out := range map[string]string{string(b) + " store": stored, "answers": answers.String(), "log": logs.String()} {
			if strings.Contains(out, testSubject) {
				t.Errorf("the raw subject is in the %s", what)
			}
		}
		if !strings.Contains(logs.String(), hmac) || !strings.Contains(logs.String(), "not recorded") {
			t.Errorf("the log lacks the events it should hold:\n%s", logs)
		}
		for _, c := range hooks.seen() {
			if c.Consent.Subject != hmac {
				t.Errorf("hook got subject %q", c.Consent.Subject)
			}
		}
	})
}
