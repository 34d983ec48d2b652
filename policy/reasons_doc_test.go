package policy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Reasons are a stable list apps and auditors read: every reason the shipped
// policy or the engine can give has a row in docs/policy.md's table of reasons.
func TestEveryReasonIsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	reasons := []string{ReasonNoPolicy, ReasonEvalError, ReasonTimeout, ReasonBusy, ReasonUndefined, ReasonMalformed, ReasonReportOnly}
	files, _ := filepath.Glob("../configs/policies/*.rego")
	for _, file := range files {
		if strings.HasSuffix(file, "_test.rego") {
			continue
		}
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		m, err := ast.ParseModuleWithOpts(file, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range m.Rules {
			reasons = append(reasons, ruleReasons(r)...)
		}
	}
	if len(reasons) < 20 {
		t.Fatalf("found only %d reasons: the walk no longer matches the shipped policy", len(reasons))
	}
	for _, reason := range reasons {
		row := regexp.MustCompile("(?m)^\\| [^|]*`" + regexp.QuoteMeta(reason) + "`[^|]* \\|")
		if !row.Match(readme) {
			t.Errorf("reason %q has no row in docs/policy.md's table of reasons", reason)
		}
	}
}

// ruleReasons are the strings a rule gives as reasons: the keys of
// `deny contains "..."`, and the string arrays `reasons :=` answers.
func ruleReasons(r *ast.Rule) []string {
	var out []string
	switch r.Head.Name.String() {
	case "deny":
		if s, ok := r.Head.Key.Value.(ast.String); ok {
			out = append(out, string(s))
		}
	case "reasons":
		for e := r; e != nil; e = e.Else {
			if arr, ok := e.Head.Value.Value.(*ast.Array); ok {
				arr.Foreach(func(x *ast.Term) {
					if s, ok := x.Value.(ast.String); ok {
						out = append(out, string(s))
					}
				})
			}
		}
	}
	return out
}
