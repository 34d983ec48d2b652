package secrets

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/internal/vaultdev"
	"github.com/hashicorp/vault/api"
)

// A data key wrapped by Vault's transit engine under the documented policy:
// it opens only with the same associated data, the wrapped form holds no byte
// of it, and a token without the transit policy can do neither.
func TestVaultTransitWrapsKeys(t *testing.T) {
	t.Parallel()
	e := startVault(t, vaultdev.RoleOptions{})
	ctx := t.Context()
	if err := e.srv.EnableTransit(ctx, "transit", "consentgate-tokens"); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.PutPolicy(ctx, "consentgate-transit", vaultdev.TransitPolicy("transit", "consentgate-tokens")); err != nil {
		t.Fatal(err)
	}
	open := func(policies ...string) *Transit {
		tok, err := e.root.Auth().Token().Create(&api.TokenCreateRequest{Policies: policies, TTL: "1h"})
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "token")
		writeFile(t, file, tok.Auth.ClientToken+"\n")
		return e.open(t, VaultOptions{Auth: TokenAuth{File: file}}).Transit("transit", "consentgate-tokens")
	}
	tr := open(vaultdev.PolicyName, "consentgate-transit")
	dk := bytes.Repeat([]byte{0xA7}, 32)
	sealed, err := tr.Seal(dk, []byte("consent-1"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(sealed), "vault:v1:") || bytes.Contains(sealed, dk) {
		t.Errorf("wrapped form %q", sealed)
	}
	if got, err := tr.Open(sealed, []byte("consent-1")); err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("Open: %x, %v", got, err)
	}
	if _, err := tr.Open(sealed, []byte("consent-2")); !errors.Is(err, ErrSealBroken) {
		t.Errorf("opened under another consent's associated data: %v", err)
	}
	readOnly := open(vaultdev.PolicyName)
	if _, err := readOnly.Seal(dk, []byte("consent-1")); err == nil {
		t.Error("a token without the transit policy encrypted")
	}
	if _, err := readOnly.Open(sealed, []byte("consent-1")); !errors.Is(err, ErrSealBroken) {
		t.Errorf("a token without the transit policy decrypted: %v", err)
	}
}
