package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/secrets"
)

// The same key as keys.token_vault_next and keys.token_vault_previous would
// open the keys still under it as next, never rewrap them, and then say the
// previous key can go: the gateway refuses to start so. Different keys start.
func TestTokenVaultNextIsNotThePreviousKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "secrets.yaml")
	os.WriteFile(file, []byte("k:\n  a: "+strings.Repeat("aa", 32)+"\n  b: "+strings.Repeat("bb", 32)+
		"\n  b2: "+strings.Repeat("BB", 32)+"\n  c: "+strings.Repeat("cc", 32)+"\n  hmac: subject-hmac-key-0123456789abcdef\n"), 0o600)
	p, err := secrets.OpenFile(file)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := consent.Open(filepath.Join(t.TempDir(), "state.db"), consent.Options{SubjectKey: []byte("subject-hmac-key-0123456789abcdef"),
		Vendors: []string{"kb"}, Purposes: []string{"p"}, Categories: []string{"identity"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	open := func(previous, next string) error {
		cfg := &configs.Config{Keys: configs.Keys{SubjectHMAC: "k#hmac", TokenVault: "k#a", TokenVaultPrevious: previous, TokenVaultNext: next}}
		_, err := openTokenVault(t.Context(), cfg, p, reg, slog.New(slog.DiscardHandler))
		return err
	}
	if err := open("k#b", "k#b2"); err == nil || !strings.Contains(err.Error(), "same key") {
		t.Errorf("the same key (spelled differently) as next and previous: %v", err)
	}
	if err := open("k#b", "k#c"); err != nil {
		t.Errorf("different keys: %v", err)
	}
}
