package vaultdev

import (
	"os"
	"strings"
	"testing"
)

// The operator notes show the policy the tests run with.
func TestDocumentedPolicyIsTheTestedOne(t *testing.T) {
	doc, err := os.ReadFile("../../docs/vault.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```hcl\n"+Policy("secret")+"```") {
		t.Errorf("docs/vault.md does not show the policy vaultdev provisions:\n%s", Policy("secret"))
	}
}

// Without the binary, the error says how to build it.
func TestMissingBinaryNamesTheBuildCommand(t *testing.T) {
	t.Setenv(BinEnv, "/nonexistent/vault")
	_, err := Binary()
	if err == nil || !strings.Contains(err.Error(), "make vault") || !strings.Contains(err.Error(), "deploy/scripts/build-vault.sh") {
		t.Fatalf("err = %v", err)
	}
}
