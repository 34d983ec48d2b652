package proxy

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// The app developers' table of problem kinds is the one stable list apps switch on:
// every kind the code can answer with is in it.
func TestEveryProblemKindIsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../docs/app-developers.md")
	if err != nil {
		t.Fatal(err)
	}
	files, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	kind := regexp.MustCompile(`\bproblem[A-Z]\w*\s*=\s*"([a-z-]+)"`)
	row := func(k string) *regexp.Regexp { return regexp.MustCompile("(?m)^\\| [0-9x, ]+ \\| [^|]*`" + k + "`") }
	seen := 0
	for _, f := range files {
		if name := f.Name(); strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go") {
			src, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range kind.FindAllStringSubmatch(string(src), -1) {
				seen++
				if !row(m[1]).Match(readme) {
					t.Errorf("problem kind %q (%s) has no row in docs/app-developers.md's table of problem kinds", m[1], name)
				}
			}
		}
	}
	if seen < 20 {
		t.Fatalf("found only %d problem kinds: the pattern no longer matches the code", seen)
	}
}
