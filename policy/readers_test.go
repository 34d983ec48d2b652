package policy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/consentgate/consentgate/configs"
)

// Every shipped rule set says what it is for in a METADATA block that OPA
// reads (title and description), and the rule the gateway queries is marked
// as the entrypoint, so that opa inspect, opa build and editors see them.
func TestShippedPoliciesCarryMetadata(t *testing.T) {
	files, _ := filepath.Glob("../configs/policies/*.rego")
	var modules int
	entrypoint := false
	for _, f := range files {
		if strings.HasSuffix(f, "_test.rego") {
			continue
		}
		modules++
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := ast.ParseModuleWithOpts(f, string(src), ast.ParserOptions{ProcessAnnotation: true, RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var pkg *ast.Annotations
		for _, a := range m.Annotations {
			switch a.Scope {
			case "package":
				pkg = a
			case "rule", "document":
				entrypoint = entrypoint || a.Entrypoint
			}
		}
		if pkg == nil || pkg.Title == "" || pkg.Description == "" {
			t.Errorf("%s: no package METADATA with a title and a description", f)
		}
	}
	if modules < 4 {
		t.Fatalf("found %d rule modules", modules)
	}
	if !entrypoint {
		t.Error("no rule is annotated entrypoint: true (data.consentgate.decision)")
	}
}

// The shipped folder is a bundle whose manifest names its roots, and OPA holds
// the policy to them: a copy whose manifest leaves one out does not load.
func TestShippedManifestRootsAreEnforced(t *testing.T) {
	dir := t.TempDir()
	if err := configs.WritePolicies(dir); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := New(ctx, Options{Source: Source{Dir: dir}}); err != nil {
		t.Fatalf("the shipped policies with their manifest: %v", err)
	}
	manifest := filepath.Join(dir, ".manifest")
	raw, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatalf("the embedded policies have no .manifest: %v", err)
	}
	narrowed := strings.Replace(string(raw), `"consentgate", `, ``, 1)
	if narrowed == string(raw) {
		t.Fatalf("cannot narrow the roots of %s", raw)
	}
	if err := os.WriteFile(manifest, []byte(narrowed), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(ctx, Options{Source: Source{Dir: dir}}); err == nil || !strings.Contains(err.Error(), "roots") {
		t.Errorf("a manifest without the consentgate root: err = %v", err)
	}
}

// policy test -v names the expression that failed, with its variables, as
// opa test --explain fails does; without -v it names only the test.
func TestPolicyTestNamesTheFailingExpression(t *testing.T) {
	dir := t.TempDir()
	if err := configs.WritePolicies(dir); err != nil {
		t.Fatal(err)
	}
	failing := "package consentgate_test\n\ntest_sum_is_three if {\n\tx := 1 + 1\n\tx == 3\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "wrong_test.rego"), []byte(failing), 0o600); err != nil {
		t.Fatal(err)
	}
	var quiet, verbose strings.Builder
	if err := Test(context.Background(), dir, &quiet, false); err == nil {
		t.Fatal("a failing test passed")
	}
	if err := Test(context.Background(), dir, &verbose, true); err == nil {
		t.Fatal("a failing test passed")
	}
	at := "failed at " + filepath.Join(dir, "wrong_test.rego") + ":5:"
	if !strings.Contains(verbose.String(), at) || !strings.Contains(verbose.String(), "x == 3") {
		t.Errorf("-v does not name the failing expression (%s):\n%s", at, verbose.String())
	}
	if strings.Contains(quiet.String(), "failed at") || !strings.Contains(quiet.String(), "FAIL "+filepath.Join(dir, "wrong_test.rego")+":3: data.consentgate_test.test_sum_is_three") {
		t.Errorf("without -v:\n%s", quiet.String())
	}
}
