package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consentgate/consentgate/audit"
)

// appCall is one call of the dev app to the gateway, without the testing.T of
// call, so that load goroutines can make it: the status, the request id and the
// body, or the error.
func appCall(ctx context.Context, c *http.Client, url, method, body string, header map[string]string) (int, string, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Request-Id"), b, err
}

// The policy, the serving certificate and the secrets file are reloaded every
// 100 ms (what SIGHUP does), each time with a changed policy, while the app calls
// all five vendors: no call fails, every reload brings a new revision, and the
// calls were decided under many of them. 5 s in `make test`, 1 min in `make
// reliability` (CONSENTGATE_RELOAD_DURATION overrides).
func TestReliabilityPolicyReloadUnderLoad(t *testing.T) {
	length := reliabilityDuration(t, "CONSENTGATE_RELOAD_DURATION", 5*time.Second, time.Minute)
	dir := t.TempDir()
	// The Air Bank sandbox's documented 600 calls a minute would answer 429 here.
	e, stop := startTestDevOpts(t, devOptions{dir: dir, airbankLimit: 1 << 20})
	t.Cleanup(stop)
	file := filepath.Join(dir, "policies", "data.yaml")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	var requestIDs []string
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ctx.Err() == nil; i += 4 {
				vendor, purpose, method, path, reqBody := loadCall(i)
				status, id, body, err := appCall(ctx, e.app, e.gatewayURL()+"/v/"+vendor+path, method, reqBody, under("dev-kyc", purpose))
				if ctx.Err() != nil {
					return
				}
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, vendor+": "+err.Error())
				case status/100 != 2:
					failures = append(failures, fmt.Sprintf("%s: %d %s", vendor, status, body))
				default:
					requestIDs = append(requestIDs, id)
				}
				mu.Unlock()
			}
		}()
	}

	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	reloads := 0
	for start := time.Now(); time.Since(start) < length; reloads++ {
		<-tick.C
		prev := e.engine.Revision()
		// An app that may do nothing makes each revision new (inside the
		// manifest's roots). Written whole under a name the watcher ignores, then
		// renamed: a reload never reads half a file.
		tmp := filepath.Join(dir, "policies", ".data.yaml.tmp")
		edited := bytes.Replace(data, []byte("\napps:\n"), fmt.Appendf(nil, "\napps:\n  reload-%d: {vendors: []}\n", reloads), 1)
		if bytes.Equal(edited, data) {
			t.Fatal("data.yaml has no apps: section to edit")
		}
		if err := os.WriteFile(tmp, edited, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
		e.reload(ctx)
		if e.engine.Revision() == prev {
			t.Fatalf("reload %d kept revision %s: %+v", reloads, prev, e.engine.Status())
		}
	}
	cancel()
	wg.Wait()

	if st := e.engine.Status(); st.ReloadFailures != 0 {
		// LastError is cleared by the next success: the log keeps each one.
		var logged []string
		for _, l := range strings.Split(e.logs.String(), "\n") {
			if strings.Contains(l, `"policy reload failed`) {
				logged = append(logged, l)
			}
		}
		t.Errorf("%d reloads failed: %s", st.ReloadFailures, strings.Join(logged, "\n"))
	}
	if len(failures) > 0 {
		t.Fatalf("%d of %d calls failed during %d reloads, first: %s", len(failures), len(failures)+len(requestIDs), reloads, failures[0])
	}
	x := exportAudit(t, e.audit)
	revisions := map[string]bool{}
	for _, id := range requestIDs {
		out, ok := x.outcomes[id]
		if !ok {
			t.Fatalf("answered call %s has no outcome record", id)
		}
		revisions[out.PolicyRevision] = true
	}
	if len(requestIDs) < 20 || len(revisions) < 3 {
		t.Fatalf("%d calls under %d policy revisions: the load did not overlap the reloads", len(requestIDs), len(revisions))
	}
	t.Logf("%s: %d reloads, %d calls, 0 failed, decided under %d revisions", length, reloads, len(requestIDs), len(revisions))
}

// serve watches the vendor profiles: an operation added to a profile is routed
// without a restart; a profile that no longer parses, or a list without a
// vendor the policy in service grants, is refused (with file and line, or the
// policy's complaint) while the profiles in service keep serving. Each applied
// reload is in the audit log.
func TestServeReloadsVendorProfiles(t *testing.T) {
	dir, file, pki := writeServeConfig(t)
	s := startServe(t, file)
	app := (&devEnv{devStack: &devStack{pki: pki}}).clientFor(t, "onboarding-web")
	route := func(path string) string {
		resp, body := call(t, app, "GET", "https://"+s.addr+path, "", nil)
		if resp.StatusCode == http.StatusNotFound {
			return string(body)
		}
		return "routed"
	}
	const extra = "/v/finid/api/v1/verifications/abc/photo"
	if got := route(extra); !strings.Contains(got, "has no operation") {
		t.Fatalf("before the edit: %s", got)
	}
	profile := filepath.Join(dir, "vendors", "finid.yaml")
	orig, err := os.ReadFile(profile)
	if err != nil {
		t.Fatal(err)
	}
	added := strings.Replace(string(orig), "operations:\n", "operations:\n  - id: finid.photo\n    method: GET\n    path: /api/v1/verifications/{id}/photo\n    fields:\n      response: {status: metadata}\n", 1)
	writeTestFile(t, profile, added)
	waitFor(t, "the added operation to be routed", func() bool { return route(extra) == "routed" })

	writeTestFile(t, profile, added+"  - id: [broken\n")
	waitFor(t, "the broken profile to be refused", func() bool {
		return strings.Contains(s.log.String(), "vendor profiles refused") && strings.Contains(s.log.String(), "finid.yaml:")
	})
	if got := route(extra); got != "routed" {
		t.Errorf("after a refused edit the operation in service is gone: %s", got)
	}

	// The shipped policy grants finid: taking its profile away first would
	// leave the policy naming a vendor that is not there.
	main, _ := os.ReadFile(file)
	writeTestFile(t, file, strings.Replace(string(main), ", vendors/finid.yaml", "", 1))
	waitFor(t, "the removal to be refused", func() bool {
		return strings.Contains(s.log.String(), "vendor profiles refused") && strings.Contains(s.log.String(), "the policy in service does not fit them")
	})
	if got := route(extra); got != "routed" {
		t.Errorf("after a refused removal finid is gone: %s", got)
	}
	s.stop(t)
	var reloads []string
	exp := filepath.Join(t.TempDir(), "audit.jsonl")
	if out, err := runCmd(t, "audit", "export", "--db", filepath.Join(dir, "audit.db"), "--out", exp); err != nil {
		t.Fatalf("export: %v %s", err, out)
	}
	data, err := os.ReadFile(exp)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r audit.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		if r.Detail["event"] == "vendors-reloaded" {
			reloads = append(reloads, "changed="+r.Detail["changed"]+" removed="+r.Detail["removed"])
		}
	}
	if !slices.Equal(reloads, []string{"changed=finid removed="}) {
		t.Errorf("audit records of the reloads: %q", reloads)
	}
}
