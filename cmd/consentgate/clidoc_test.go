package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra/doc"
)

const cliDocs = "../../docs/cli"

// docs/cli is the CLI reference cobra generates from the commands themselves:
// a flag or command added without regenerating fails here (make docs; or
// go test ./cmd/consentgate -run TestCLIReference -update).
func TestCLIReferenceIsCurrent(t *testing.T) {
	dir := t.TempDir()
	root := newRootCmd(io.Discard, io.Discard)
	root.DisableAutoGenTag = true // no date in the files: they would drift daily
	if err := doc.GenMarkdownTree(root, dir); err != nil {
		t.Fatal(err)
	}
	got, _ := filepath.Glob(filepath.Join(dir, "*.md"))
	if len(got) < 20 {
		t.Fatalf("cobra generated %d pages", len(got))
	}
	if *update {
		os.RemoveAll(cliDocs)
		if err := os.CopyFS(cliDocs, os.DirFS(dir)); err != nil {
			t.Fatal(err)
		}
		return
	}
	have, _ := filepath.Glob(filepath.Join(cliDocs, "*.md"))
	if len(have) != len(got) {
		t.Errorf("docs/cli has %d pages, the commands make %d; run make docs", len(have), len(got))
	}
	for _, f := range got {
		want, err := os.ReadFile(filepath.Join(cliDocs, filepath.Base(f)))
		gen, _ := os.ReadFile(f)
		if err != nil || !bytes.Equal(gen, want) {
			t.Errorf("docs/cli/%s is not what the commands generate; run make docs", filepath.Base(f))
		}
	}
}
