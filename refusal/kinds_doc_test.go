package refusal

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"strconv"
	"testing"
)

// The app developers' table of problem kinds is the one stable list apps switch
// on: every Kind declared here has a row in it.
func TestEveryKindIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/app-developers.md")
	if err != nil {
		t.Fatal(err)
	}
	kinds := declaredKinds(t)
	if len(kinds) < 30 {
		t.Fatalf("found only %d kinds in kinds.go: the parse no longer matches the code", len(kinds))
	}
	for _, k := range kinds {
		row := regexp.MustCompile("(?m)^\\| [0-9x, ]+ \\| [^|]*`" + regexp.QuoteMeta(k) + "`")
		if !row.Match(doc) {
			t.Errorf("problem kind %q has no row in docs/app-developers.md's table of problem kinds", k)
		}
	}
}

// declaredKinds reads the string of every constant of type Kind in kinds.go.
func declaredKinds(t *testing.T) []string {
	f, err := parser.ParseFile(token.NewFileSet(), "kinds.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, s := range gd.Specs {
			vs := s.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Kind" {
				t.Errorf("constant %s in kinds.go is not of type Kind", vs.Names[0].Name)
				continue
			}
			for _, v := range vs.Values {
				s, err := strconv.Unquote(v.(*ast.BasicLit).Value)
				if err != nil {
					t.Fatal(err)
				}
				kinds = append(kinds, s)
			}
		}
	}
	return kinds
}
