package vaultdev

import (
	"os"
	"path/filepath"
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
	if !strings.Contains(string(doc), "```hcl\n"+TransitPolicy("transit", "consentgate-tokens")+"```") {
		t.Errorf("docs/vault.md does not show the transit policy the tests run with:\n%s", TransitPolicy("transit", "consentgate-tokens"))
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

// The log tail goes into error messages: neither the root token nor the
// unseal key the dev server prints may reach them.
func TestLogTailHidesTokenAndUnsealKey(t *testing.T) {
	log := filepath.Join(t.TempDir(), "vault.log")
	content := "==> Vault server started!\nUnseal Key: q1Vb2sFZ3+unseal/KEY=\nRoot Token: s.rootTOKEN123\nready\n"
	if err := os.WriteFile(log, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	tail := (&Server{logFile: log, RootToken: "s.rootTOKEN123"}).logTail()
	if strings.Contains(tail, "q1Vb2sFZ3") || strings.Contains(tail, "rootTOKEN123") || !strings.Contains(tail, "ready") {
		t.Errorf("log tail:\n%s", tail)
	}
}
