package policy

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// testPolicy allows app "web" and answers in every shape the tests need,
// selected by the operation.
const testPolicy = `package consentgate

default decision := {"allow": false, "reasons": ["not allowed"], "binary": "deny"}

decision := {"allow": true, "reasons": ["ok"], "response": {"default": "drop", "fields": {"name": "keep", "rc": "mask"}}, "request": {"drop": ["photo"]}, "binary": "deny"} if {
	input.app.id == "web"
	input.operation == "v.ok"
}

decision := {"allow": "yes", "reasons": ["x"]} if input.operation == "v.malformed-allow"

decision := {"allow": true, "reasons": []} if input.operation == "v.no-reasons"

decision := {"allow": true, "reasons": ["x"], "response": {"fields": {"name": "publish"}}} if input.operation == "v.bad-action"

decision := {"allow": true, "reasons": ["x"], "binary": "maybe"} if input.operation == "v.bad-binary"

decision := to_number("not a number") if input.operation == "v.error"

decision := {"allow": true, "reasons": [sprintf("%d", [n])]} if {
	input.operation == "v.slow"
	n := count([x | some x in numbers.range(1, 50000000)])
}
`

func writePolicy(t *testing.T, dir, name, src string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

// newTestEngine loads src with a generous decision bound: under the race
// detector on a busy machine a decision can take longer than the production
// default, and these tests are not about the bound (TestDecideShapes is).
func newTestEngine(t *testing.T, src string, reg prometheus.Registerer) (*Engine, string) {
	t.Helper()
	dir := t.TempDir()
	writePolicy(t, dir, "policy.rego", src)
	e, err := New(context.Background(), Options{Source: Source{Dir: dir}, Registerer: reg, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return e, dir
}

func TestDecideShapes(t *testing.T) {
	e, _ := newTestEngine(t, testPolicy, nil)
	e.opts.Timeout = 200 * time.Millisecond // "v.slow" must hit it
	tests := []struct {
		op     string
		allow  bool
		reason string
	}{
		{"v.ok", true, "ok"},
		{"v.other", false, "not allowed"},
		{"v.malformed-allow", false, ReasonMalformed},
		{"v.no-reasons", false, ReasonMalformed},
		{"v.bad-action", false, ReasonMalformed},
		{"v.bad-binary", false, ReasonMalformed},
		{"v.error", false, ReasonEvalError},
		{"v.slow", false, ReasonTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.op, func(t *testing.T) {
			d := e.Decide(context.Background(), &Input{App: App{ID: "web"}, Operation: tt.op, Now: time.Now()})
			if d.Allow != tt.allow || len(d.Reasons) != 1 || d.Reasons[0] != tt.reason {
				t.Fatalf("decision = allow %v reasons %v (err %s)", d.Allow, d.Reasons, d.Err)
			}
			// Only running out of time is worth a retry; the others are the
			// policy's own faults.
			if d.Busy != (tt.reason == ReasonTimeout) {
				t.Errorf("Busy = %v for %q", d.Busy, tt.reason)
			}
			if d.ID == "" || d.Revision != e.Revision() {
				t.Errorf("decision id %q revision %q", d.ID, d.Revision)
			}
			if !d.Allow && (len(d.Response.Fields) != 0 || d.Binary != "deny") {
				t.Errorf("a deny discloses: %+v", d)
			}
		})
	}
	ok := e.Decide(context.Background(), &Input{App: App{ID: "web"}, Operation: "v.ok"})
	if ok.Response.Default != "drop" || ok.Response.Fields["rc"] != "mask" || len(ok.Request.Drop) != 1 {
		t.Errorf("allow decision = %+v", ok)
	}
}

func TestUndefinedIsDeny(t *testing.T) {
	// Defined for the smoke input (vendor "smoke") only.
	e, _ := newTestEngine(t, `package consentgate

decision := {"allow": false, "reasons": ["smoke"]} if input.vendor == "smoke"
`, nil)
	d := e.Decide(context.Background(), &Input{Vendor: "kb"})
	if d.Allow || d.Reasons[0] != ReasonUndefined {
		t.Fatalf("decision = %+v", d)
	}
}

func TestBrokenPolicyPreventsStartWithFileAndLine(t *testing.T) {
	tests := []struct{ name, src, want string }{
		// The brace left open is on line 3; OPA gives up at the end, line 4.
		{"parse error", "package consentgate\n\ndecision := {\n", "policy.rego:3: rego_parse_error: \"{\" is never closed"},
		{"compile error", "package consentgate\n\ndecision := x if {\n\tx := input.a\n}\n\ndecision2 := undefined_fn(1)\n", "policy.rego:7"},
		{"allows the smoke call", "package consentgate\n\ndecision := {\"allow\": true, \"reasons\": [\"all\"]}\n", "smoke evaluation"},
		{"undefined", "package other\n\nx := 1\n", "undefined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writePolicy(t, dir, "policy.rego", tt.src)
			_, err := New(context.Background(), Options{Source: Source{Dir: dir}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestReloadKeepsRevisionOnFailure(t *testing.T) {
	reg := prometheus.NewRegistry()
	var events []string
	e, dir := newTestEngine(t, testPolicy, reg)
	e.opts.OnRevision = func(rev string, err error) {
		if err != nil {
			events = append(events, "failed")
		} else {
			events = append(events, rev)
		}
	}
	first := e.Revision()
	if err := e.Reload(context.Background()); err != nil || e.Revision() != first {
		t.Fatalf("reload of unchanged files: %v, revision %s → %s", err, first, e.Revision())
	}
	writePolicy(t, dir, "policy.rego", testPolicy+"\nbroken := {\n")
	if err := e.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "policy.rego:") {
		t.Fatalf("broken reload: err = %v", err)
	}
	if e.Revision() != first {
		t.Fatal("a broken policy replaced the revision in service")
	}
	if d := e.Decide(context.Background(), &Input{App: App{ID: "web"}, Operation: "v.ok"}); !d.Allow {
		t.Fatal("the old revision no longer decides")
	}
	st := e.Status()
	if st.ReloadFailures != 1 || !strings.Contains(st.LastError, "policy.rego:") || st.Revision != first {
		t.Errorf("status = %+v", st)
	}
	var m dto.Metric
	if err := e.metrics.reloadFailures.Write(&m); err != nil || m.GetCounter().GetValue() != 1 {
		got := m.GetCounter().GetValue()
		t.Errorf("reload failure metric = %v", got)
	}
	writePolicy(t, dir, "policy.rego", strings.Replace(testPolicy, `"ok"`, `"ok2"`, 1))
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e.Revision() == first {
		t.Fatal("revision id did not change with the files")
	}
	if d := e.Decide(context.Background(), &Input{App: App{ID: "web"}, Operation: "v.ok"}); d.Reasons[0] != "ok2" {
		t.Fatalf("new revision not in service: %v", d.Reasons)
	}
	if len(events) != 2 || events[0] != "failed" || events[1] != e.Revision() {
		t.Errorf("revision events = %v", events)
	}
}

// Decisions during reloads never fail: each one is made by a whole revision.
func TestReloadUnderConcurrentDecisions(t *testing.T) {
	e, dir := newTestEngine(t, testPolicy, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	bad := 0
	var firstBad Decision
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				d := e.Decide(context.Background(), &Input{App: App{ID: "web"}, Operation: "v.ok"})
				if !d.Allow || d.Err != "" {
					mu.Lock()
					if bad == 0 {
						firstBad = d
					}
					bad++
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < 10; i++ {
		src := strings.Replace(testPolicy, `"ok"`, `"ok`+string(rune('a'+i))+`"`, 1)
		if i%3 == 0 {
			src += "\nbroken := {\n"
		}
		writePolicy(t, dir, "policy.rego", src)
		e.Reload(context.Background())
	}
	cancel()
	wg.Wait()
	if bad != 0 {
		t.Fatalf("%d decisions failed during reloads, first: %v %s", bad, firstBad.Reasons, firstBad.Err)
	}
}

func TestWatchReloadsOnEdit(t *testing.T) {
	e, dir := newTestEngine(t, testPolicy, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := e.Watch(ctx, 0); err != nil {
		t.Fatal(err)
	}
	first := e.Revision()
	writePolicy(t, dir, "policy.rego", strings.Replace(testPolicy, `"ok"`, `"edited"`, 1))
	deadline := time.Now().Add(10 * time.Second)
	for e.Revision() == first && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if e.Revision() == first {
		t.Fatal("edit not picked up")
	}
}

// An edit between the load and the start of the watch is not lost: no event
// will come for it, so the watch looks once when it begins.
func TestWatchPicksUpAnEditMadeBeforeItBegan(t *testing.T) {
	e, dir := newTestEngine(t, testPolicy, nil)
	first := e.Revision()
	writePolicy(t, dir, "policy.rego", strings.Replace(testPolicy, `"ok"`, `"edited"`, 1))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := e.Watch(ctx, 0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.Revision() == first && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if e.Revision() == first {
		t.Fatal("an edit made before the watch began was never loaded")
	}
}

func TestTestFilesAreNotServed(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, "policy.rego", testPolicy)
	writePolicy(t, dir, "policy_test.rego", "package consentgate\n\ndecision := {\"allow\": true, \"reasons\": [\"from test file\"]}\n")
	e, err := New(context.Background(), Options{Source: Source{Dir: dir}})
	if err != nil {
		t.Fatal(err)
	}
	if d := e.Decide(context.Background(), &Input{App: App{ID: "x"}}); d.Allow {
		t.Fatal("a _test.rego file took part in decisions")
	}
}

// signedBundle builds a bundle tarball signed with an HMAC key.
func signedBundle(t *testing.T, src, key string) []byte {
	t.Helper()
	b := bundle.Bundle{
		Manifest: bundle.Manifest{Revision: "r1", Roots: &[]string{""}},
		Data:     map[string]any{},
		Modules:  []bundle.ModuleFile{{URL: "policy.rego", Path: "policy.rego", Raw: []byte(src), Parsed: ast.MustParseModuleWithOpts(src, ast.ParserOptions{RegoVersion: ast.RegoV1})}},
	}
	if err := b.GenerateSignature(bundle.NewSigningConfig(key, "HS256", ""), "consentgate", false); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := bundle.NewWriter(&buf).Write(b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSignedBundleFromURL(t *testing.T) {
	const key = "shared-bundle-signing-secret-0123456789"
	served := signedBundle(t, testPolicy, key)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(served) }))
	defer srv.Close()
	e, err := New(context.Background(), Options{Source: Source{Bundle: srv.URL + "/bundle.tar.gz", VerificationKey: key, KeyAlgorithm: "HS256"}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if d := e.Decide(context.Background(), &Input{App: App{ID: "web"}, Operation: "v.ok"}); !d.Allow {
		t.Fatalf("decision from bundle = %+v", d)
	}
	// Signed with another key: refused, and the revision in service stays.
	served = signedBundle(t, strings.Replace(testPolicy, `"ok"`, `"evil"`, 1), "another-key-000000000000000000000")
	if err := e.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "verif") {
		t.Fatalf("bundle signed with the wrong key: err = %v", err)
	}
	if d := e.Decide(context.Background(), &Input{App: App{ID: "web"}, Operation: "v.ok"}); d.Reasons[0] != "ok" {
		t.Fatal("an unverified bundle went into service")
	}
	// A bundle file on disk works the same way.
	file := filepath.Join(t.TempDir(), "bundle.tar.gz")
	if err := os.WriteFile(file, signedBundle(t, testPolicy, key), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(context.Background(), Options{Source: Source{Bundle: file, VerificationKey: key, KeyAlgorithm: "HS256"}}); err != nil {
		t.Fatal(err)
	}
}
