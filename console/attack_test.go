package console

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/audit/archive"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/identity"
	"github.com/consentgate/consentgate/policy"
)

const livePolicy = `package consentgate

default decision := {"allow": false, "reasons": ["not allowed"]}

decision := {"allow": true, "reasons": ["ok"]} if input.app.id == "web"
`

type rig struct {
	h       http.Handler
	eng     *policy.Engine
	log     *audit.Log
	reg     *consent.Registry
	key     []byte
	liveDir string
}

// newRig is the console as serve.go wires it: a real policy engine from a
// folder, a consent registry and the gateway's SubjectHMAC (audit.HMAC under
// keys.subject_hmac, the registry's key too).
func newRig(t *testing.T, setup func(liveDir string)) *rig {
	t.Helper()
	_, sk, _ := ed25519.GenerateKey(rand.Reader)
	l, err := audit.Open(filepath.Join(t.TempDir(), "audit.db"), audit.Options{SigningKey: sk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	allow := true
	for range 3 {
		if _, err := l.Append(context.Background(), audit.Record{Kind: audit.KindIntent, App: "web", Vendor: "kb", Operation: "kb.check",
			Allow: &allow, Reasons: []string{"ok"},
			Detail: map[string]string{"policy_input": `{"app":{"id":"web","role":"app"},"vendor":"kb","operation":"kb.check"}`}}); err != nil {
			t.Fatal(err)
		}
	}
	live := t.TempDir()
	if err := os.WriteFile(filepath.Join(live, "policy.rego"), []byte(livePolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(live)
	}
	eng, err := policy.New(context.Background(), policy.Options{Source: policy.Source{Dir: live}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	reg, err := consent.Open(filepath.Join(t.TempDir(), "state.db"), consent.Options{SubjectKey: key, Vendors: []string{"kb"},
		Purposes: []string{"kyc"}, Categories: []string{"identity"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	secret := make([]byte, 32)
	rand.Read(secret)
	h := New(Options{Audit: l, Consents: reg, Policy: eng, Secret: secret,
		SubjectHMAC: func(_ context.Context, v string) (string, error) { return audit.HMAC(key, v), nil },
		Fields:      func(string, string) (map[string]string, map[string]string, []string) { return nil, nil, nil },
		Erasure:     func() map[string]string { return nil }})
	return &rig{h: h, eng: eng, log: l, reg: reg, key: key, liveDir: live}
}

func tokenOf(t *testing.T, h http.Handler, who identity.Identity) string {
	t.Helper()
	page := do(h, who, "GET", "/console/integrity", nil, nil).Body.String()
	i := strings.Index(page, `name="csrf" value="`)
	if i < 0 {
		t.Fatal("no token")
	}
	return page[i+len(`name="csrf" value="`):][:64]
}

func dryRun(t *testing.T, h http.Handler, token string, files map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	mw.WriteField("csrf", token)
	for name, src := range files {
		fw, _ := mw.CreateFormFile("files", name)
		fw.Write([]byte(src))
	}
	mw.Close()
	r := httptest.NewRequest("POST", "https://127.0.0.1:9443/console/policy/dry-run", &b)
	r.Header.Set("Content-Type", mw.FormDataContentType())
	r = r.WithContext(identity.With(r.Context(), admin))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// A dry run's candidate cannot fetch a URL (http.send is not built in), so
// nothing the gateway's host reaches comes back on the page.
func TestDryRunCannotReachOutside(t *testing.T) {
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("AKIA-INTERNAL-SECRET"))
	}))
	defer internal.Close()
	rg := newRig(t, nil)
	cand := `package consentgate
decision := {"allow": false, "reasons": [http.send({"method": "GET", "url": "` + internal.URL + `"}).raw_body]}
`
	w := dryRun(t, rg.h, tokenOf(t, rg.h, admin), map[string]string{"policy.rego": cand})
	if strings.Contains(w.Body.String(), "AKIA-INTERNAL-SECRET") {
		t.Errorf("the dry run fetched an internal URL and showed its body on the page (%d)", w.Code)
	}
}

// A dry run is recorded before any uploaded code runs, even when the
// candidate then does not load.
func TestDryRunIsRecordedBeforeItRuns(t *testing.T) {
	var hits atomic.Int32
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer internal.Close()
	rg := newRig(t, nil)
	token := tokenOf(t, rg.h, admin)
	head := rg.log.Head().Seq
	// allows the smoke call, so it "does not load" – after it ran.
	cand := `package consentgate
decision := {"allow": true, "reasons": [sprintf("%d", [http.send({"method": "GET", "url": "` + internal.URL + `"}).status_code])]}
`
	w := dryRun(t, rg.h, token, map[string]string{"policy.rego": cand})
	if rg.log.Head().Seq == head || hits.Load() > 0 {
		t.Errorf("a dry run (answer %d, %d outbound requests) left no audit record", w.Code, hits.Load())
	}
	// A candidate that loads: a record before and one of its result.
	head = rg.log.Head().Seq
	if w := dryRun(t, rg.h, token, map[string]string{"policy.rego": livePolicy}); w.Code != http.StatusOK {
		t.Fatalf("a dry run of the live policy: %d\n%s", w.Code, w.Body)
	}
	var b bytes.Buffer
	rg.log.Export(context.Background(), &b, audit.Filter{})
	if rg.log.Head().Seq != head+2 || !strings.Contains(b.String(), `"action":"console policy dry run"`) || !strings.Contains(b.String(), `"action":"console policy dry run result"`) {
		t.Errorf("records of a dry run: %d new", rg.log.Head().Seq-head)
	}
}

// A link in the policy folder is copied as its target's content: an upload of
// the same name never writes through it into the live file.
func TestDryRunNeverWritesThroughALink(t *testing.T) {
	shared := t.TempDir()
	realFile := filepath.Join(shared, "shared.rego")
	rg := newRig(t, func(live string) {
		os.WriteFile(realFile, []byte("package consentgate.shared\n\nx := 1\n"), 0o644)
		if err := os.Symlink(realFile, filepath.Join(live, "shared.rego")); err != nil {
			t.Fatal(err)
		}
	})
	evil := "package consentgate.shared\n\nx := 2 # written by a dry run\n"
	w := dryRun(t, rg.h, tokenOf(t, rg.h, admin), map[string]string{"shared.rego": evil})
	got, _ := os.ReadFile(realFile)
	if string(got) == evil {
		t.Errorf("a dry run (answer %d) overwrote the live policy file %s", w.Code, realFile)
	}
}

// The "Older records" link carries the next page's start and the filter,
// escaped once.
func TestTimelineOlderLink(t *testing.T) {
	h, l := newConsole(t)
	for range 60 {
		l.Append(context.Background(), audit.Record{Kind: audit.KindIntent, App: "onboarding-web", Vendor: "kb"})
	}
	w := do(h, auditor, "GET", "/console/timeline?vendor=kb", nil, nil)
	body := w.Body.String()
	i := strings.Index(body, `rel="next" href="`)
	if i < 0 {
		t.Fatal("no older link on this page")
	}
	href := body[i+len(`rel="next" href="`):]
	href = href[:strings.Index(href, `"`)]
	u, _ := url.Parse(strings.ReplaceAll(href, "&amp;", "&"))
	if u.Query().Get("before") == "" {
		t.Errorf("the older link %q carries no before=", href)
	}
}

// Consents are found by the id as the app registered it (the registry does not
// normalise ids as identifiers are normalised).
func TestPersonLookupFindsConsentsByTheIdAsTyped(t *testing.T) {
	rg := newRig(t, nil)
	for _, subject := range []string{"123-456", "915714/4238", " alice "} {
		if _, err := rg.reg.Create(context.Background(), "web", consent.Request{Subject: subject, Vendors: []string{"kb"}, Purposes: []string{"kyc"},
			Categories: []string{"identity"}, Evidence: consent.Evidence{Text: "ticked"}, TTL: "24h"}); err != nil {
			t.Fatal(err)
		}
		tok := tokenOf(t, rg.h, auditor)
		w := do(rg.h, auditor, "POST", "/console/person", url.Values{"csrf": {tok}, "subject": {subject}}, nil)
		if strings.Contains(w.Body.String(), "No consent names this person") {
			t.Errorf("person %q: the console says no consent names them; the registry holds one", subject)
		}
	}
}

// A verification's form is bounded like every other form: a large body is
// refused, not spooled.
func TestVerifyFormIsBounded(t *testing.T) {
	h, _ := newConsole(t)
	tok := tokenOf(t, h, auditor)
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	mw.WriteField("csrf", tok)
	fw, _ := mw.CreateFormFile("pad", "pad.bin")
	fw.Write(bytes.Repeat([]byte("x"), 1<<20))
	mw.Close()
	r := httptest.NewRequest("POST", "https://127.0.0.1:9443/console/integrity", &b)
	r.Header.Set("Content-Type", mw.FormDataContentType())
	r = r.WithContext(identity.With(r.Context(), auditor))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code == http.StatusOK {
		t.Errorf("a 1 MiB multipart body to /console/integrity was read whole and accepted (maxForm is %d)", maxForm)
	}
}

// A revocation needs an admin, the admin's own token and the console's own
// origin, shows its confirmation first, and does not happen unrecorded.
func TestRevokeGuards(t *testing.T) {
	rg := newRig(t, nil)
	c, err := rg.reg.Create(context.Background(), "web", consent.Request{Subject: "u1", Vendors: []string{"kb"}, Purposes: []string{"kyc"},
		Categories: []string{"identity"}, Evidence: consent.Evidence{Text: "ticked"}, TTL: "24h"})
	if err != nil {
		t.Fatal(err)
	}
	path := "/console/consents/" + c.ID + "/revoke"
	at, ot := tokenOf(t, rg.h, admin), tokenOf(t, rg.h, auditor)
	yes := func(tok string) url.Values { return url.Values{"csrf": {tok}, "confirm": {"yes"}} }
	for name, tc := range map[string]struct {
		form url.Values
		hdr  map[string]string
		want int
	}{
		"no token":        {url.Values{"confirm": {"yes"}}, nil, 403},
		"auditor's token": {yes(ot), nil, 403},
		"origin null":     {yes(at), map[string]string{"Origin": "null"}, 403},
		"cross-site":      {yes(at), map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		"same-site":       {yes(at), map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
		"evil origin":     {yes(at), map[string]string{"Origin": "https://127.0.0.1.evil.example"}, 403},
	} {
		if w := do(rg.h, admin, "POST", path, tc.form, tc.hdr); w.Code != tc.want {
			t.Errorf("%s: %d", name, w.Code)
		}
	}
	if w := do(rg.h, auditor, "POST", path, yes(ot), nil); w.Code != 403 {
		t.Errorf("auditor revoke: %d", w.Code)
	}
	if w := do(rg.h, app, "POST", path, yes(at), nil); w.Code != 403 {
		t.Errorf("app revoke: %d", w.Code)
	}
	for _, m := range []string{"GET", "HEAD", "PUT"} {
		if w := do(rg.h, admin, m, path+"?csrf="+at+"&confirm=yes", nil, nil); w.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s: %d", m, w.Code)
		}
	}
	if got, _ := rg.reg.Get(context.Background(), c.ID); got.Status != consent.Active {
		t.Fatal("revoked by a refused request")
	}
	// Without confirm: the confirmation page only.
	if w := do(rg.h, admin, "POST", path, url.Values{"csrf": {at}}, nil); !strings.Contains(w.Body.String(), "Yes, revoke it") {
		t.Errorf("no confirmation page: %d", w.Code)
	}
	// The audit log closed: nothing happens.
	rg.log.Close()
	if w := do(rg.h, admin, "POST", path, yes(at), nil); w.Code != http.StatusServiceUnavailable {
		t.Errorf("audit closed: %d", w.Code)
	}
	if got, _ := rg.reg.Get(context.Background(), c.ID); got.Status != consent.Active {
		t.Error("revoked though the audit log could not record it")
	}
}

// Values from records and the address are text, never markup or a script URL.
func TestNoMarkupFromData(t *testing.T) {
	rg := newRig(t, nil)
	h, l := rg.h, rg.log
	x := `"><script>alert(1)</script><a href="javascript:alert(1)">`
	r, err := l.Append(context.Background(), audit.Record{Kind: audit.KindOutcome, App: x, Vendor: x, Operation: x, ConsentID: "javascript:alert(1)//" + x,
		RequestID: x, Error: x, Detail: map[string]string{x: x, "outcome": x, "refusal": x}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/console/records/" + strconv.FormatUint(r.Seq, 10), "/console/timeline", "/console/consents?id=" + strings.ReplaceAll(x, " ", "%20")} {
		w := do(h, auditor, "GET", p, nil, nil)
		b := w.Body.String()
		if strings.Contains(b, "<script") || strings.Contains(b, `href="javascript`) {
			t.Errorf("%s: markup from data:\n%s", p, b)
		}
	}
}

// A candidate cannot read the gateway's files through a JSON schema's
// "$ref": "file://…": the schema built-ins are not built in.
func TestDryRunCannotReadLocalFiles(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "credentials.json")
	os.WriteFile(secret, []byte(`{"type":"HOST-SECRET-abc123","private_key":"k"}`), 0o600)
	rg := newRig(t, nil)
	cand := `package consentgate
decision := {"allow": false, "reasons": [sprintf("%v", [json.match_schema({}, {"$ref": "file://` + secret + `"})])]}
`
	w := dryRun(t, rg.h, tokenOf(t, rg.h, admin), map[string]string{"policy.rego": cand})
	if strings.Contains(w.Body.String(), "HOST-SECRET-abc123") || !strings.Contains(w.Body.String(), "undefined function") {
		t.Errorf("the dry run of a candidate reading %s (%d):\n%s", secret, w.Code, w.Body)
	}
}

// The candidate is what a reload would load: a link in the policy folder (a
// Kubernetes ConfigMap volume is made of them) is left out, as the loader
// leaves it out, so the live policy uploaded unchanged changes nothing.
func TestDryRunCandidateIsWhatAReloadLoads(t *testing.T) {
	elsewhere := filepath.Join(t.TempDir(), "old.rego")
	os.WriteFile(elsewhere, []byte("package consentgate\n\ndecision := {\"allow\": true, \"reasons\": [\"left over\"]}\n"), 0o644)
	rg := newRig(t, func(live string) {
		if err := os.Symlink(elsewhere, filepath.Join(live, "old.rego")); err != nil {
			t.Fatal(err)
		}
	})
	w := dryRun(t, rg.h, tokenOf(t, rg.h, admin), map[string]string{"policy.rego": livePolicy})
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "0 would change") {
		t.Errorf("the live policy, uploaded unchanged (%d):\n%s", w.Code, w.Body)
	}
}

// Every page renders for an auditor and an admin (a template that names a
// field its page lacks fails here, not in a browser).
func TestEveryPageRenders(t *testing.T) {
	rg := newRig(t, nil)
	rg.h = New(Options{Audit: rg.log, Consents: rg.reg, Policy: rg.eng, Secret: make([]byte, 32),
		Vendors: func(context.Context) []Vendor { return []Vendor{{ID: "kb", Remaining: -1, Calls: 2.5e6, OK: 2.5e6}} }})
	for _, who := range []identity.Identity{auditor, admin} {
		for _, path := range []string{"/console/", "/console/timeline", "/console/timeline?from=2026-12-07T10:00&to=2026-12-07T11:00:30Z",
			"/console/records/1", "/console/person", "/console/consents", "/console/consents?id=nope", "/console/policy",
			"/console/vendors", "/console/integrity"} {
			w := do(rg.h, who, "GET", path, nil, nil)
			if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "</html>") {
				t.Errorf("%s GET %s: %d\n%s", who.Role, path, w.Code, w.Body)
			}
		}
	}
	if body := do(rg.h, auditor, "GET", "/console/vendors", nil, nil).Body.String(); !strings.Contains(body, "<td>2500000</td>") {
		t.Errorf("a count of 2.5 million is not written as one:\n%s", body)
	}
	if body := do(rg.h, auditor, "GET", "/console/timeline?to=2026-12-07T11:00:30Z", nil, nil).Body.String(); !strings.Contains(body, `value="2026-12-07T11:00:30"`) {
		t.Errorf("the window's end is not given back to the form's time input:\n%s", body)
	}
}

// An access report of a log whose older segments left the node reads them
// from the archive and covers the whole history; without an archive it says
// where it starts and how to get the rest (the JSON says it too).
func TestAccessReportReadsTheArchive(t *testing.T) {
	_, sk, _ := ed25519.GenerateKey(rand.Reader)
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := audit.Open(path, audit.Options{SigningKey: sk, SegmentBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	hm := strings.Repeat("ab", 32)
	allow := true
	for i := range 600 {
		r := audit.Record{Kind: audit.KindIntent, App: "web", Vendor: "kb"}
		if i%100 == 0 { // a disclosure about the person, in every segment
			r = audit.Record{Kind: audit.KindOutcome, App: "web", Vendor: "kb", Operation: "kb.identity", Purpose: "kyc",
				SubjectHMAC: hm, Allow: &allow, Status: 200, Disclosed: []string{"name"}, Detail: map[string]string{"categories": "identity"}}
		}
		if _, err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	segs, err := audit.Segments(audit.SegmentDir(path))
	if err != nil || len(segs) < 2 {
		t.Fatalf("%d segments, %v", len(segs), err)
	}
	store := t.TempDir() // archived, as retention does: copied, then gone from the node
	if err := os.Rename(segs[0].Path, filepath.Join(store, filepath.Base(segs[0].Path))); err != nil {
		t.Fatal(err)
	}
	report := func(h http.Handler, format string) string {
		w := do(h, auditor, "POST", "/console/person/report", url.Values{"csrf": {tokenOf(t, h, auditor)}, "subject_hmac": {hm},
			"identifier_hmac": {hm}, "format": {format}}, nil)
		if w.Code != http.StatusOK {
			t.Fatalf("%s report: %d\n%s", format, w.Code, w.Body)
		}
		return w.Body.String()
	}
	node := New(Options{Audit: l, Secret: make([]byte, 32), Erasure: func() map[string]string { return nil }})
	start := strconv.FormatUint(segs[1].First, 10)
	if got := report(node, "html"); !strings.Contains(got, "from record "+start) {
		t.Errorf("the node-only report does not say it starts at %s:\n%s", start, got)
	}
	if got := report(node, "json"); !strings.Contains(got, `"start": `+start) || !strings.Contains(got, `"disclosures": 5`) {
		t.Errorf("the node-only JSON report:\n%s", got)
	}
	whole := New(Options{Audit: l, Secret: make([]byte, 32), Erasure: func() map[string]string { return nil },
		Archived: func(ctx context.Context, first uint64, tmp string) ([]string, error) {
			return archive.Archived(ctx, archive.Dir{Path: store}, first, tmp)
		}})
	if got := report(whole, "json"); strings.Contains(got, `"start"`) || !strings.Contains(got, `"disclosures": 6`) {
		t.Errorf("the report with the archive:\n%s", got)
	}
}
