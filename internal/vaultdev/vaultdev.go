// Package vaultdev runs a real Vault server in dev mode on loopback, for the
// integration tests and `consentgate dev --vault`: it finds (or builds) the
// binary, starts it with a random root token, and provisions what consentgate needs.
package vaultdev

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/consentgate/consentgate/internal/freeport"

	"github.com/hashicorp/vault/api"
)

// BinEnv names the environment variable that overrides where the binary is.
const BinEnv = "CONSENTGATE_VAULT_BIN"

// BuildHint is how to get the binary, for error messages.
const BuildHint = "build it once with `make vault` (runs deploy/scripts/build-vault.sh, about 11 minutes cold; it lands in .cache/bin/vault)"

// ErrNoBinary means the Vault server binary is missing.
var ErrNoBinary = errors.New("vault server binary not found")

// ModuleRoot finds the consentgate module root from the working directory up.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(data), []byte("module github.com/consentgate/consentgate\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the consentgate source tree (no go.mod of github.com/consentgate/consentgate above the working directory)")
		}
		dir = parent
	}
}

// Binary returns the Vault server binary: $CONSENTGATE_VAULT_BIN, else
// <module root>/.cache/bin/vault. The error says how to build it.
func Binary() (string, error) {
	if p := os.Getenv(BinEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: %s=%s: %v; %s", ErrNoBinary, BinEnv, p, err, BuildHint)
		}
		return p, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", fmt.Errorf("%w: %v; set %s or %s", ErrNoBinary, err, BinEnv, BuildHint)
	}
	p := filepath.Join(root, ".cache", "bin", "vault")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%w at %s: %s", ErrNoBinary, p, BuildHint)
	}
	return p, nil
}

// Build runs deploy/scripts/build-vault.sh from the module root (it does
// nothing when the binary is already there) and returns the binary's path.
func Build(ctx context.Context, progress io.Writer) (string, error) {
	if p, err := Binary(); err == nil {
		return p, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(root, "deploy", "scripts", "build-vault.sh"))
	cmd.Dir, cmd.Stdout, cmd.Stderr = root, progress, progress
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building the vault server (deploy/scripts/build-vault.sh): %w", err)
	}
	return Binary()
}

// Options configure Start.
type Options struct {
	// Bin is the server binary; empty: Binary().
	Bin string
	// LogFile receives the server's output, which includes the root token:
	// keep it private. Empty: discarded.
	LogFile string
}

// Server is a running (or stopped) dev Vault. Dev Vault keeps everything in
// memory, so what was set up through the Server (policies, AppRoles, secrets)
// is applied again when it is started again after Stop.
type Server struct {
	// Addr is the server's URL, http://127.0.0.1:PORT; it stays the same across
	// Stop and Start.
	Addr string
	// RootToken is the dev root token (random).
	RootToken string

	bin, listen, logFile string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	setup   []func(context.Context, *api.Client) error
	secrets map[string]map[string]string // latest data per KV path
}

// Start starts a dev Vault on a free loopback port and waits until it serves.
func Start(ctx context.Context, o Options) (*Server, error) {
	bin := o.Bin
	if bin == "" {
		var err error
		if bin, err = Binary(); err != nil {
			return nil, err
		}
	}
	listen, err := freeport.LoopbackAddr()
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: "http://" + listen, RootToken: "root-" + randomHex(16), bin: bin, listen: listen,
		logFile: o.LogFile, secrets: map[string]map[string]string{}}
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Start (re)starts a stopped server on its address and applies what was set up.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("vault dev server is already running")
	}
	var out io.Writer = io.Discard
	if s.logFile != "" {
		f, err := os.OpenFile(s.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("vault log: %w", err)
		}
		defer f.Close() // the child has its own descriptor
		out = f
	}
	// The root token goes in the environment, not the command line, which any
	// local user can read in ps.
	cmd := exec.Command(s.bin, "server", "-dev", "-dev-listen-address="+s.listen, "-dev-no-store-token")
	cmd.Env = append(cleanEnv(), "VAULT_DEV_ROOT_TOKEN_ID="+s.RootToken)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = childAttrs()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	if err := s.waitReady(ctx, exited); err != nil {
		s.stopLocked()
		return err
	}
	c, err := s.client()
	if err != nil {
		s.stopLocked()
		return err
	}
	for _, step := range s.setup {
		if err := step(ctx, c); err != nil {
			s.stopLocked()
			return err
		}
	}
	for _, path := range slices.Sorted(maps.Keys(s.secrets)) {
		if _, err := putKV(ctx, c, path, s.secrets[path]); err != nil {
			s.stopLocked()
			return err
		}
	}
	return nil
}

// Stop ends the server (an outage); Start brings it back on the same address.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

// Close stops the server for good; it is safe to call more than once, and on
// a nil Server.
func (s *Server) Close() {
	if s != nil {
		s.Stop()
	}
}

func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd, s.exited = nil, nil
}

// waitReady polls sys/health until Vault is initialised, unsealed and active.
func (s *Server) waitReady(ctx context.Context, exited <-chan struct{}) error {
	c, err := s.client()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second) // a loaded 2-core machine
	for {
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		h, err := c.Sys().HealthWithContext(hctx)
		cancel()
		if err == nil && h.Initialized && !h.Sealed && !h.Standby {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("vault dev server exited at start (address %s in use?)%s", s.listen, s.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vault dev server not ready after 60s: %v%s", err, s.logTail())
		}
	}
}

func (s *Server) logTail() string {
	if s.logFile == "" {
		return ""
	}
	data, err := os.ReadFile(s.logFile)
	if err != nil {
		return ""
	}
	// The log holds the root token; never pass it on. Redact before cutting, so
	// the cut cannot leave part of it.
	text := strings.ReplaceAll(string(data), s.RootToken, "[root token]")
	// The dev server prints its unseal key too.
	text = regexp.MustCompile(`(?m)^(\s*Unseal Key[^:]*:).*$`).ReplaceAllString(text, "$1 [redacted]")
	return "\nvault log (tail):\n" + text[max(0, len(text)-2000):]
}

// Client is a root-token API client for the server.
func (s *Server) Client() (*api.Client, error) { return s.client() }

func (s *Server) client() (*api.Client, error) {
	cfg := api.DefaultConfig()
	cfg.Address = s.Addr
	cfg.MaxRetries = 0
	cfg.Timeout = 10 * time.Second
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	c.SetToken(s.RootToken)
	return c, nil
}

// Put writes a KV v2 secret at path in the "secret" mount (a new version) and
// returns the version number. It is written again after a restart.
func (s *Server) Put(ctx context.Context, path string, data map[string]string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.client()
	if err != nil {
		return 0, err
	}
	kv, err := putKV(ctx, c, path, data)
	if err != nil {
		return 0, err
	}
	s.secrets[path] = data
	return kv.VersionMetadata.Version, nil
}

// apply runs a setup step now and again after every restart.
func (s *Server) apply(ctx context.Context, step func(context.Context, *api.Client) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.client()
	if err != nil {
		return err
	}
	if err := step(ctx, c); err != nil {
		return err
	}
	s.setup = append(s.setup, step)
	return nil
}

// PutPolicy writes an ACL policy.
func (s *Server) PutPolicy(ctx context.Context, name, hcl string) error {
	return s.apply(ctx, func(ctx context.Context, c *api.Client) error {
		if err := c.Sys().PutPolicyWithContext(ctx, name, hcl); err != nil {
			return fmt.Errorf("writing policy %s: %w", name, err)
		}
		return nil
	})
}

// AppRole is an AppRole role's credentials.
type AppRole struct {
	RoleID, SecretID string
}

// RoleOptions shape the tokens an AppRole login gets.
type RoleOptions struct {
	Policies []string
	// TokenTTL and TokenMaxTTL bound the tokens (0: Vault's defaults, 768h).
	TokenTTL, TokenMaxTTL time.Duration
}

// EnableAppRole enables the approle auth method (once) and creates role name
// with a fixed role id and secret id, which stay valid across restarts.
func (s *Server) EnableAppRole(ctx context.Context, name string, o RoleOptions) (AppRole, error) {
	creds := AppRole{RoleID: "role-" + randomHex(12), SecretID: "secret-" + randomHex(16)}
	err := s.apply(ctx, func(ctx context.Context, c *api.Client) error {
		if err := enableAuth(ctx, c, "approle"); err != nil {
			return err
		}
		role := map[string]any{"token_policies": o.Policies, "secret_id_num_uses": 0, "secret_id_ttl": 0}
		if o.TokenTTL > 0 {
			role["token_ttl"] = o.TokenTTL.String()
		}
		if o.TokenMaxTTL > 0 {
			role["token_max_ttl"] = o.TokenMaxTTL.String()
		}
		// In order: the role, then its ids.
		for _, w := range []struct {
			path string
			body map[string]any
		}{
			{"auth/approle/role/" + name, role},
			{"auth/approle/role/" + name + "/role-id", map[string]any{"role_id": creds.RoleID}},
			{"auth/approle/role/" + name + "/custom-secret-id", map[string]any{"secret_id": creds.SecretID}},
		} {
			if _, err := c.Logical().WriteWithContext(ctx, w.path, w.body); err != nil {
				return fmt.Errorf("writing %s: %w", w.path, err)
			}
		}
		return nil
	})
	return creds, err
}

// EnableAuth enables an auth method at its default path (idempotent).
func (s *Server) EnableAuth(ctx context.Context, method string) error {
	return s.apply(ctx, func(ctx context.Context, c *api.Client) error { return enableAuth(ctx, c, method) })
}

func enableAuth(ctx context.Context, c *api.Client, method string) error {
	auths, err := c.Sys().ListAuthWithContext(ctx)
	if err != nil {
		return fmt.Errorf("listing auth methods: %w", err)
	}
	if _, ok := auths[method+"/"]; ok {
		return nil
	}
	if err := c.Sys().EnableAuthWithOptionsWithContext(ctx, method, &api.EnableAuthOptions{Type: method}); err != nil {
		return fmt.Errorf("enabling auth method %s: %w", method, err)
	}
	return nil
}

// putKV writes a secret, retrying while a fresh KV v2 mount is still upgrading
// (dev Vault mounts secret/ at start and refuses writes for a moment).
func putKV(ctx context.Context, c *api.Client, path string, data map[string]string) (*api.KVSecret, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		kv, err := c.KVv2("secret").Put(ctx, path, toAny(data))
		if err == nil {
			return kv, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("writing secret/%s: %w", path, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// cleanEnv is the environment without VAULT_* variables, which would change
// how the dev server starts.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VAULT_") {
			env = append(env, kv)
		}
	}
	return env
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
