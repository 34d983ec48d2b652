package policy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A policy cannot reach outside its decision: http.send, name lookups and the
// process's runtime are not built in, so such a policy does not load.
func TestPolicyCannotReachOutside(t *testing.T) {
	for _, call := range []string{`http.send({"method": "GET", "url": "http://169.254.169.254/"}).raw_body`,
		`sprintf("%v", [net.lookup_ip_addr("example.com")])`, `sprintf("%v", [opa.runtime()])`,
		`sprintf("%v", [json.match_schema({}, {"$ref": "file:///etc/passwd"})])`,
		`sprintf("%v", [json.verify_schema({"$ref": "file:///etc/passwd"})])`} {
		dir := t.TempDir()
		src := "package consentgate\n\ndecision := {\"allow\": false, \"reasons\": [" + call + "]}\n"
		os.WriteFile(filepath.Join(dir, "p.rego"), []byte(src), 0o600)
		_, err := New(context.Background(), Options{Source: Source{Dir: dir}})
		if err == nil || !strings.Contains(err.Error(), "undefined function") {
			t.Errorf("%s: %v", call, err)
		}
	}
}

// The engine remembers the revisions it served, with their text, and a
// candidate is loaded without serving.
func TestHistoryAndCandidate(t *testing.T) {
	dir := t.TempDir()
	write := func(reason string) {
		os.WriteFile(filepath.Join(dir, "p.rego"), []byte("package consentgate\n\ndecision := {\"allow\": false, \"reasons\": [\""+reason+"\"]}\n"), 0o600)
	}
	write("one")
	e, err := New(context.Background(), Options{Source: Source{Dir: dir}})
	if err != nil {
		t.Fatal(err)
	}
	write("two")
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := e.History()
	if len(h) != 2 || h[1].ID != e.Revision() || !strings.Contains(h[0].Sources["p.rego"], `"one"`) || !strings.Contains(h[1].Sources["p.rego"], `"two"`) {
		t.Fatalf("history = %+v", h)
	}
	cand := t.TempDir()
	os.WriteFile(filepath.Join(cand, "p.rego"), []byte("package consentgate\n\ndecision := {\"allow\": false, \"reasons\": [\"three\"]}\n"), 0o600)
	in := e.DryRunInput(cand)
	in.Decisions = []Recorded{{Seq: 7, Input: `{"app":{"id":"web"}}`, Allow: false, Reasons: []string{"two"}}}
	res, err := DryRun(context.Background(), in)
	if err != nil || res.Error != "" {
		t.Fatal(err, res.Error)
	}
	if res.Candidate.ID == e.Revision() || len(e.History()) != 2 || e.Revision() != h[1].ID {
		t.Errorf("the candidate %s changed the engine's history or revision", res.Candidate.ID)
	}
	if res.Replay.Replayed != 1 || res.Replay.Changed != 1 || len(res.Replay.Changes) != 1 || res.Replay.Changes[0].NowReasons[0] != "three" {
		t.Errorf("replay = %+v", res.Replay)
	}
}

// The built-ins a policy may call are the ones judged not to reach outside
// the decision (testdata/builtins.txt). An OPA upgrade that adds one fails
// here until someone has judged it: network, files, the environment and the
// process are never for a policy.
func TestBuiltinsAreJudged(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("testdata", "builtins.txt"))
	if err != nil {
		t.Fatal(err)
	}
	judged := map[string]bool{}
	for _, n := range strings.Fields(string(want)) {
		judged[n] = true
	}
	for _, b := range capabilities.Builtins {
		if !judged[b.Name] {
			t.Errorf("OPA built-in %s is new: judge whether it reaches outside a decision (add it to policy.denied if it does), then list it in testdata/builtins.txt", b.Name)
		}
		if denied[b.Name] {
			t.Errorf("denied built-in %s is available", b.Name)
		}
	}
}
