package policy

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
)

// The files of a revision include its data, and its id does not depend on how
// the folder is named: `policy eval` on configs/policies and the gateway on its
// absolute path speak of the same revision.
func TestRevisionFilesAndIDOfAFolder(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, "policy.rego", testPolicy)
	writePolicy(t, dir, "data.yaml", "purposes: {}\n")
	writePolicy(t, dir, "policy_test.rego", "package consentgate_test\n\ntest_x if true\n")
	abs, err := load(context.Background(), Source{Dir: dir}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Dir(dir))
	rel, err := load(context.Background(), Source{Dir: filepath.Base(dir)}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if abs.id != rel.id {
		t.Errorf("revision %s by absolute path, %s by relative path", abs.id, rel.id)
	}
	if want := []string{filepath.Join(dir, "data.yaml"), filepath.Join(dir, "policy.rego")}; !slices.Equal(abs.files, want) {
		t.Errorf("files %v, want %v", abs.files, want)
	}
}
