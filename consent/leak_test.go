package consent

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/internal/logsink"
)

// TestRawSubjectNeverLeaves drives every route and failure with the raw subject, then
// searches the bytes of the bbolt file, every answer (headers too) and the log for it.
func TestRawSubjectNeverLeaves(t *testing.T) {
	logs := &logsink.Buffer{}
	hooks := &hookLog{}
	o := testOptions(newClock())
	o.Hook = hooks.hook
	o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	path := t.TempDir() + "/consents.db"
	r := mustOpenPath(t, path, o)
	h := r.Handler(fakeIdentity)
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

	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hmac := r.SubjectHMAC(testSubject)
	if !bytes.Contains(file, []byte(hmac)) {
		t.Fatal("the file does not hold the subject HMAC either: this search proves nothing")
	}
	for what, out := range map[string]string{"bbolt file": string(file), "answers": answers.String(), "log": logs.String()} {
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
}
