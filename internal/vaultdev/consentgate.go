package vaultdev

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/vault/api"
)

// PolicyName is the Vault policy consentgate's AppRole gets.
const PolicyName = "consentgate"

// Policy is the policy consentgate needs on a KV v2 mount: read the vendor
// credentials and its own keys, nothing else. docs/security.md shows the same.
func Policy(mount string) string {
	return fmt.Sprintf(`# consentgate reads vendor credentials and its own keys; it writes nothing.
path "%[1]s/data/vendors/*" {
  capabilities = ["read"]
}
path "%[1]s/data/consentgate/*" {
  capabilities = ["read"]
}
`, mount)
}

// Provision sets up what consentgate needs: the policy, an AppRole
// "consentgate" holding it, and the secrets (KV path → key → value) in the
// "secret" mount. It writes the role id and secret id to dir (mode 0600) and
// returns the two files, as `secrets.vault.role_id_file` and `secret_id_file`.
func (s *Server) Provision(ctx context.Context, dir string, values map[string]map[string]string, o RoleOptions) (roleIDFile, secretIDFile string, err error) {
	if err := s.PutPolicy(ctx, PolicyName, Policy("secret")); err != nil {
		return "", "", err
	}
	o.Policies = []string{PolicyName}
	creds, err := s.EnableAppRole(ctx, "consentgate", o)
	if err != nil {
		return "", "", err
	}
	for _, path := range slices.Sorted(maps.Keys(values)) {
		if _, err := s.Put(ctx, path, values[path]); err != nil {
			return "", "", err
		}
	}
	roleIDFile, secretIDFile = filepath.Join(dir, "role-id"), filepath.Join(dir, "secret-id")
	if err := os.WriteFile(roleIDFile, []byte(creds.RoleID+"\n"), 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(secretIDFile, []byte(creds.SecretID+"\n"), 0o600); err != nil {
		return "", "", err
	}
	return roleIDFile, secretIDFile, nil
}

// TransitPolicy is what consentgate further needs where the token vault's
// keys are wrapped by Vault's transit engine (keys.token_vault_transit):
// encrypt and decrypt with one key, nothing else. docs/vault.md shows it.
func TransitPolicy(mount, key string) string {
	return fmt.Sprintf(`# consentgate wraps and unwraps its token data keys with one transit key.
path "%[1]s/encrypt/%[2]s" {
  capabilities = ["update"]
}
path "%[1]s/decrypt/%[2]s" {
  capabilities = ["update"]
}
`, mount, key)
}

// EnableTransit mounts the transit engine at mount (once) and creates key, of
// type aes256-gcm96 (it binds associated data).
func (s *Server) EnableTransit(ctx context.Context, mount, key string) error {
	return s.apply(ctx, func(ctx context.Context, c *api.Client) error {
		if err := c.Sys().MountWithContext(ctx, mount, &api.MountInput{Type: "transit"}); err != nil && !strings.Contains(err.Error(), "path is already in use") {
			return fmt.Errorf("mounting transit at %s: %w", mount, err)
		}
		if _, err := c.Logical().WriteWithContext(ctx, mount+"/keys/"+key, map[string]any{"type": "aes256-gcm96"}); err != nil {
			return fmt.Errorf("creating transit key %s: %w", key, err)
		}
		return nil
	})
}
