package secrets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
	"github.com/hashicorp/vault/api/auth/kubernetes"
)

// DefaultKubernetesTokenFile is where Kubernetes mounts a pod's service-account token.
const DefaultKubernetesTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// VaultAuth is a Vault auth method. Login is given a client that carries no
// token and returns the login secret, whose Auth holds the token and its lease.
// Each login reads its files again, so a rotated token, secret id or
// service-account token is picked up without a restart.
type VaultAuth interface {
	api.AuthMethod
	// Name is the method, for logs: token, approle or kubernetes.
	Name() string
	// Revocable is true when the token was made by logging in, so the provider
	// revokes it when it closes; a token it was handed is not its to revoke.
	Revocable() bool
}

// TokenAuth uses a token read from File, for example one that Vault Agent
// keeps current. The token's TTL is looked up, and it is renewed if renewable.
type TokenAuth struct {
	File string
}

// AppRoleAuth logs in with a role id and a secret id read from files, at
// auth/<Mount>/login (Mount default "approle").
type AppRoleAuth struct {
	Mount        string
	RoleIDFile   string
	SecretIDFile string
}

// KubernetesAuth logs in with the pod's service-account token (JWTFile, default
// DefaultKubernetesTokenFile) for Role, at auth/<Mount>/login (Mount default
// "kubernetes").
type KubernetesAuth struct {
	Mount   string
	Role    string
	JWTFile string
}

var (
	_ VaultAuth = TokenAuth{}
	_ VaultAuth = AppRoleAuth{}
	_ VaultAuth = KubernetesAuth{}
)

func (TokenAuth) Name() string         { return "token" }
func (TokenAuth) Revocable() bool      { return false }
func (AppRoleAuth) Name() string       { return "approle" }
func (AppRoleAuth) Revocable() bool    { return true }
func (KubernetesAuth) Name() string    { return "kubernetes" }
func (KubernetesAuth) Revocable() bool { return true }

// Login checks the token with a lookup of itself and reports its TTL.
func (a TokenAuth) Login(ctx context.Context, c *api.Client) (*api.Secret, error) {
	tok, err := readCredentialFile("token_file", a.File)
	if err != nil {
		return nil, err
	}
	c.SetToken(tok)
	s, err := c.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("looking up the token from %s: %s", a.File, errText(err))
	}
	ttl, err := s.TokenTTL()
	if err != nil {
		return nil, fmt.Errorf("token lookup: %w", err)
	}
	renewable, err := s.TokenIsRenewable()
	if err != nil {
		return nil, fmt.Errorf("token lookup: %w", err)
	}
	policies, _ := s.TokenPolicies()
	return &api.Secret{Auth: &api.SecretAuth{ClientToken: tok, Renewable: renewable,
		LeaseDuration: int(ttl / time.Second), Policies: policies}}, nil
}

// Login reads the role id and secret id and logs in with vault/api/auth/approle.
func (a AppRoleAuth) Login(ctx context.Context, c *api.Client) (*api.Secret, error) {
	roleID, err := readCredentialFile("role_id_file", a.RoleIDFile)
	if err != nil {
		return nil, err
	}
	secretID, err := readCredentialFile("secret_id_file", a.SecretIDFile)
	if err != nil {
		return nil, err
	}
	mount := mountOr(a.Mount, "approle")
	m, err := approle.NewAppRoleAuth(roleID, &approle.SecretID{FromString: secretID}, approle.WithMountPath(mount))
	if err != nil {
		return nil, fmt.Errorf("approle: %w", err)
	}
	return loginWith(ctx, c, m, mount)
}

// Login reads the service-account token and logs in for the role with
// vault/api/auth/kubernetes.
func (a KubernetesAuth) Login(ctx context.Context, c *api.Client) (*api.Secret, error) {
	file := a.JWTFile
	if file == "" {
		file = DefaultKubernetesTokenFile
	}
	jwt, err := readCredentialFile("kubernetes_token_file", file)
	if err != nil {
		return nil, err
	}
	mount := mountOr(a.Mount, "kubernetes")
	m, err := kubernetes.NewKubernetesAuth(a.Role, kubernetes.WithServiceAccountToken(jwt), kubernetes.WithMountPath(mount))
	if err != nil {
		return nil, fmt.Errorf("kubernetes auth: %w", err)
	}
	return loginWith(ctx, c, m, mount)
}

// loginWith logs in with m. The files are read here on every login, not once
// by the library, so that a rotated secret id or token is picked up.
func loginWith(ctx context.Context, c *api.Client, m api.AuthMethod, mount string) (*api.Secret, error) {
	path := "auth/" + mount + "/login"
	s, err := m.Login(ctx, c)
	if err != nil {
		// Vault's answer names the path and the reason, never what was sent.
		return nil, fmt.Errorf("%s: %s", path, errText(err))
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return nil, fmt.Errorf("%s: vault answered without a token", path)
	}
	return s, nil
}

func mountOr(mount, def string) string {
	if mount == "" {
		return def
	}
	return strings.Trim(mount, "/")
}

// readCredentialFile reads a file holding one credential; errors name the
// file, never its content.
func readCredentialFile(field, file string) (string, error) {
	if file == "" {
		return "", fmt.Errorf("vault %s is not set", field)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("vault %s: %w", field, err)
	}
	v := strings.TrimSpace(string(data))
	if v == "" {
		return "", fmt.Errorf("vault %s %s is empty", field, file)
	}
	return v, nil
}

// login obtains a token with a client that carries none, so an expired token
// never travels with a login, then makes it the provider's.
func (v *Vault) login(ctx context.Context) (*api.Secret, error) {
	c, err := v.client.Clone()
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	c.ClearToken()
	ctx, cancel := context.WithTimeout(ctx, v.opts.Timeout)
	defer cancel()
	s, err := v.opts.Auth.Login(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("%w: vault login (%s) at %s: %w", ErrUnavailable, v.opts.Auth.Name(), v.opts.Address, err)
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return nil, fmt.Errorf("%w: vault login (%s): no token", ErrUnavailable, v.opts.Auth.Name())
	}
	v.client.SetToken(s.Auth.ClientToken)
	v.token.Store(s)
	v.logins.Add(1)
	v.log.Info("vault login", "auth", v.opts.Auth.Name(), "ttl_seconds", s.Auth.LeaseDuration,
		"renewable", s.Auth.Renewable, "policies", strings.Join(s.Auth.Policies, ","))
	return s, nil
}

// errNoAuth is returned for a configuration without an auth method.
var errNoAuth = errors.New("vault: no auth method")
