package vaultdev

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
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
