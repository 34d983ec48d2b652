package policy

import (
	"context"
	"strings"
	"testing"
)

func TestUnclosed(t *testing.T) {
	tests := []struct {
		name, src string
		line      int
		open      string
	}{
		{"all closed", "x if {\n\ty := [1, (2)]\n}\n", 0, ""},
		{"rule body", "a := 1\n\nx if {\n\tinput.a == 1\n\ny := 2\n", 3, "{"},
		{"first of two", "x if {\n\ty := [1,\n}\n", 1, "{"},
		{"bracket in a comment", "# {\nx := 1\n", 0, ""},
		{"bracket in a string", "x := \"{[\\\"(\"\n", 0, ""},
		{"raw string over lines", "x := `\n{\n`\ny := [\n", 4, "["},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			line, open := unclosed([]byte(tc.src))
			if line != tc.line || open != tc.open {
				t.Errorf("unclosed = %d %q, want %d %q", line, open, tc.line, tc.open)
			}
		})
	}
}

// A rule whose brace is never closed: OPA's parser gives up at the end of the
// file, lines below the mistake; the error names the brace's line.
func TestParseErrorNamesTheUnclosedBrace(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, "policy.rego", testPolicy)
	writePolicy(t, dir, "extra.rego", "package consentgate\n\nx2 if {\n\tinput.a == 1\n\nx3 := 3\n\nx4 := 4\n\nx5 := 5\n")
	for name, err := range map[string]error{
		"load":  func() error { _, err := load(context.Background(), Source{Dir: dir}, 0, nil); return err }(),
		"check": Check(context.Background(), dir, nil),
	} {
		if err == nil || !strings.Contains(err.Error(), "extra.rego:3: rego_parse_error: \"{\" is never closed") || strings.Count(err.Error(), "never closed") != 1 {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Another parse error keeps OPA's own line.
	writePolicy(t, dir, "extra.rego", "package consentgate\n\nx2 if {\n\tinput.a == == 1\n}\n")
	if _, err := load(context.Background(), Source{Dir: dir}, 0, nil); err == nil || !strings.Contains(err.Error(), "extra.rego:4: rego_parse_error") {
		t.Errorf("a parse error inside a line: %v", err)
	}
}
