package secrets

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/consentgate/consentgate/internal/logsink"
	"github.com/consentgate/consentgate/internal/tier"
	"github.com/consentgate/consentgate/internal/vaultdev"
)

// These tests run a real Vault server (dev mode) from .cache/bin/vault. Without
// the binary they fail, naming the command that builds it.

var testValues = map[string]map[string]string{
	"vendors/airbank":  {"api_key": "airbank-key-v1-0123456789abcdef", "access_token": "airbank-token-0123456789abcdef"},
	"consentgate/keys": {"subject_hmac": "subject-hmac-key-0123456789abcdef"},
}

// vaultEnv is a dev Vault provisioned as consentgate needs it.
type vaultEnv struct {
	srv                    *vaultdev.Server
	root                   *api.Client
	roleIDFile, secretFile string
	logs                   *logsink.Buffer
}

func startVault(t *testing.T, role vaultdev.RoleOptions) *vaultEnv {
	t.Helper()
	tier.Needs(t, "a Vault server")
	bin, err := vaultdev.Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx := context.Background()
	srv, err := vaultdev.Start(ctx, vaultdev.Options{Bin: bin, LogFile: filepath.Join(dir, "vault.log")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	roleID, secretID, err := srv.Provision(ctx, dir, testValues, role)
	if err != nil {
		t.Fatal(err)
	}
	root, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	return &vaultEnv{srv: srv, root: root, roleIDFile: roleID, secretFile: secretID, logs: &logsink.Buffer{}}
}

func (e *vaultEnv) open(t *testing.T, o VaultOptions) *Vault {
	t.Helper()
	o.Address = e.srv.Addr
	if o.Auth == nil {
		o.Auth = AppRoleAuth{RoleIDFile: e.roleIDFile, SecretIDFile: e.secretFile}
	}
	o.Logger = slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	v, err := OpenVault(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

func get(t *testing.T, v *Vault, ref string) Secret {
	t.Helper()
	r, err := ParseRef(ref)
	if err != nil {
		t.Fatal(err)
	}
	s, err := v.Get(context.Background(), r)
	if err != nil {
		t.Fatalf("Get(%s): %v", ref, err)
	}
	return s
}

// eventually polls cond (generous: a loaded 2-core machine) and fails with what.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// assertNoLeak fails if text holds a secret value, the AppRole credentials or
// a token.
func (e *vaultEnv) assertNoLeak(t *testing.T, where, text string, tokens ...string) {
	t.Helper()
	leaks := append([]string{e.srv.RootToken}, tokens...)
	for _, path := range testValues {
		for _, v := range path {
			leaks = append(leaks, v)
		}
	}
	for _, f := range []string{e.roleIDFile, e.secretFile} {
		leaks = append(leaks, strings.TrimSpace(readFile(t, f)))
	}
	for _, l := range leaks {
		if l != "" && strings.Contains(text, l) {
			t.Errorf("%s contains a secret value or token (%.6s…)", where, l)
		}
	}
}

func TestVaultAppRoleReadsKV(t *testing.T) {
	t.Parallel()
	e := startVault(t, vaultdev.RoleOptions{})
	v := e.open(t, VaultOptions{})
	s := get(t, v, "vendors/airbank#api_key")
	if s.Value != testValues["vendors/airbank"]["api_key"] || s.Version != "1" || s.FetchedAt.IsZero() {
		t.Fatalf("Get = version %q fetched %v (value matches: %v)", s.Version, s.FetchedAt, s.Value == testValues["vendors/airbank"]["api_key"])
	}
	if v.logins.Load() != 1 {
		t.Errorf("logins = %d, want 1", v.logins.Load())
	}
	// Peek answers from the cache alone: what Get read, and nothing else.
	if p, err := v.Peek(Ref{"vendors/airbank", "api_key"}); err != nil || p.FetchedAt != s.FetchedAt {
		t.Errorf("Peek of a cached secret: %v %v", p.FetchedAt, err)
	}
	if _, err := v.Peek(Ref{"vendors/kb", "api_key"}); !errors.Is(err, ErrNotRead) {
		t.Errorf("Peek of a secret never read: %v", err)
	}
	if _, err := v.Peek(Ref{"vendors/kb", "api_key"}); !errors.Is(err, ErrNotRead) {
		t.Errorf("Peek read the secret through: %v", err)
	}
	tests := []struct {
		ref  string
		want error
		text string
	}{
		{"vendors/airbank#nope", ErrNotFound, `no key "nope"`},
		{"vendors/nobody#api_key", ErrNotFound, "vault has no secret at secret/vendors/nobody"},
		{"other/place#key", ErrUnavailable, "vault policy denies reading secret/other/place"},
	}
	var errs []string
	for _, tt := range tests {
		r, _ := ParseRef(tt.ref)
		_, err := v.Get(context.Background(), r)
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
			t.Errorf("Get(%s) = %v, want %v with %q", tt.ref, err, tt.want, tt.text)
		}
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	token := v.client.Token()
	e.assertNoLeak(t, "errors", strings.Join(errs, "\n"), token)
	e.assertNoLeak(t, "log", e.logs.String(), token)

	// The token was made by logging in: Close revokes it.
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.root.Auth().Token().Lookup(token); err == nil {
		t.Error("the AppRole token is still valid after Close")
	}
}

// A new KV version replaces the cached value at the next refresh (or at once on
// Reload), and a secret deleted in Vault stops being served.
func TestVaultPicksUpRotation(t *testing.T) {
	t.Parallel()
	e := startVault(t, vaultdev.RoleOptions{})
	v := e.open(t, VaultOptions{Refresh: 200 * time.Millisecond})
	ctx := context.Background()
	held := get(t, v, "vendors/airbank#api_key")

	if _, err := e.srv.Put(ctx, "vendors/airbank", map[string]string{"api_key": "airbank-key-v2"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the background refresh to pick up version 2", func() bool {
		return get(t, v, "vendors/airbank#api_key").Value == "airbank-key-v2"
	})
	if s := get(t, v, "vendors/airbank#api_key"); s.Version != "2" {
		t.Errorf("version %q, want 2", s.Version)
	}
	// A caller that got the old value before the rotation keeps it (an
	// in-flight call finishes with what it started with).
	if held.Value != testValues["vendors/airbank"]["api_key"] {
		t.Error("a value already handed out changed")
	}
	if !strings.Contains(e.logs.String(), "vault secret rotated") {
		t.Error("rotation not logged")
	}

	// Reload makes the very next Get see a new version, whatever the schedule.
	slow := e.open(t, VaultOptions{Refresh: time.Hour, MaxStale: 2 * time.Hour})
	get(t, slow, "vendors/airbank#api_key")
	if _, err := e.srv.Put(ctx, "vendors/airbank", map[string]string{"api_key": "airbank-key-v3"}); err != nil {
		t.Fatal(err)
	}
	if got := get(t, slow, "vendors/airbank#api_key").Value; got != "airbank-key-v2" {
		t.Fatalf("refresh hour not honoured: the cache re-read at once")
	}
	if err := slow.Reload(); err != nil {
		t.Fatal(err)
	}
	if s := get(t, slow, "vendors/airbank#api_key"); s.Value != "airbank-key-v3" || s.Version != "3" {
		t.Errorf("after Reload: version %q", s.Version)
	}

	// Deleting the secret in Vault revokes it here too.
	if err := e.root.KVv2("secret").Delete(ctx, "vendors/airbank"); err != nil {
		t.Fatal(err)
	}
	r, _ := ParseRef("vendors/airbank#api_key")
	eventually(t, "the deleted secret to stop being served", func() bool {
		_, err := v.Get(ctx, r)
		return errors.Is(err, ErrNotFound)
	})
}

// KV v2 has no lease; a secret's custom_metadata ttl makes it re-read at two
// thirds of it even when the refresh interval is long.
func TestVaultHonoursSecretTTL(t *testing.T) {
	t.Parallel()
	e := startVault(t, vaultdev.RoleOptions{})
	ctx := context.Background()
	if err := e.root.KVv2("secret").PutMetadata(ctx, "vendors/airbank", api.KVMetadataPutInput{
		CustomMetadata: map[string]any{"ttl": "600ms"}}); err != nil {
		t.Fatal(err)
	}
	v := e.open(t, VaultOptions{Refresh: time.Hour, MaxStale: 2 * time.Hour})
	if s := get(t, v, "vendors/airbank#api_key"); s.TTL != 600*time.Millisecond {
		t.Fatalf("TTL = %s, want the secret's 600ms", s.TTL)
	}
	if s := get(t, v, "consentgate/keys#subject_hmac"); s.TTL != 0 {
		t.Errorf("a secret without ttl got TTL %s", s.TTL)
	}
	if _, err := e.srv.Put(ctx, "vendors/airbank", map[string]string{"api_key": "airbank-key-v2"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the ttl-driven refresh", func() bool {
		return get(t, v, "vendors/airbank#api_key").Value == "airbank-key-v2"
	})
	// The secret without a ttl was not re-read: the hour-long interval holds.
	if _, err := e.srv.Put(ctx, "consentgate/keys", map[string]string{"subject_hmac": "rotated-subject-key"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if get(t, v, "consentgate/keys#subject_hmac").Value != testValues["consentgate/keys"]["subject_hmac"] {
		t.Error("a secret without ttl was re-read before its refresh interval")
	}
}

// The login token is renewed before it expires, so one login lasts well past
// the token's TTL.
func TestVaultRenewsTheToken(t *testing.T) {
	t.Parallel()
	const ttl = 8 * time.Second
	e := startVault(t, vaultdev.RoleOptions{TokenTTL: ttl, TokenMaxTTL: time.Hour})
	v := e.open(t, VaultOptions{Refresh: 500 * time.Millisecond})
	token := v.client.Token()
	start := time.Now()
	get(t, v, "vendors/airbank#api_key")
	time.Sleep(ttl + 3*time.Second)

	s, err := e.root.Auth().Token().Lookup(token)
	if err != nil {
		t.Fatalf("the first token expired: it was not renewed (%v)", err)
	}
	expire, _ := time.Parse(time.RFC3339Nano, s.Data["expire_time"].(string))
	if !expire.After(start.Add(ttl)) {
		t.Errorf("token expires at %v, no later than its first TTL allowed", expire)
	}
	if v.logins.Load() != 1 || v.client.Token() != token {
		t.Errorf("logged in %d times: renewal should have kept the first token", v.logins.Load())
	}
	if err := v.Reload(); err != nil {
		t.Fatalf("reading with the renewed token: %v", err)
	}
	e.assertNoLeak(t, "log", e.logs.String(), token)
}

// A token that reaches its max TTL cannot be renewed: the provider logs in
// again before it expires, and Get never fails meanwhile.
func TestVaultLogsInAgainAtMaxTTL(t *testing.T) {
	t.Parallel()
	e := startVault(t, vaultdev.RoleOptions{TokenTTL: 4 * time.Second, TokenMaxTTL: 4 * time.Second})
	v := e.open(t, VaultOptions{Refresh: 200 * time.Millisecond})
	first := v.client.Token()
	eventually(t, "a second login", func() bool {
		if _, err := v.Get(context.Background(), Ref{"vendors/airbank", "api_key"}); err != nil {
			t.Fatalf("Get failed around the re-login: %v", err)
		}
		return v.logins.Load() >= 2
	})
	if v.client.Token() == first {
		t.Error("still the first token after logging in again")
	}
	if err := v.Reload(); err != nil {
		t.Fatalf("reading with the new token: %v", err)
	}
}

// While Vault is down cached values are served until max_stale, then Get fails
// with a StaleError (and Fresh reports it); once Vault is back the provider
// logs in again and serves by itself.
func TestVaultOutage(t *testing.T) {
	t.Parallel()
	e := startVault(t, vaultdev.RoleOptions{})
	// Long enough that stopping Vault (a graceful shutdown) cannot use it up.
	const maxStale = 4 * time.Second
	v := e.open(t, VaultOptions{Refresh: 100 * time.Millisecond, MaxStale: maxStale})
	ctx := context.Background()
	want := get(t, v, "vendors/airbank#api_key").Value
	token := v.client.Token()

	// The last confirmation came at most one refresh (and a tick) before this.
	stopping := time.Now()
	e.srv.Stop()
	if s := get(t, v, "vendors/airbank#api_key"); s.Value != want {
		t.Fatal("cached value not served during the outage")
	}
	r, _ := ParseRef("vendors/airbank#api_key")
	var err error
	eventually(t, "the cached value to go stale", func() bool {
		_, err = v.Get(ctx, r)
		return err != nil
	})
	if refused := time.Since(stopping); refused < maxStale-500*time.Millisecond {
		t.Errorf("value refused %s after the outage began, before max_stale %s", refused, maxStale)
	}
	var stale *StaleError
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &stale) || stale.Ref != r || stale.Age <= maxStale {
		t.Fatalf("err = %v, want a StaleError for %s", err, r)
	}
	if ferr := v.Fresh(); !errors.Is(ferr, ErrUnavailable) {
		t.Errorf("Fresh = %v while values are stale", ferr)
	}
	if v.CacheAge() <= maxStale {
		t.Errorf("CacheAge %s not beyond max_stale", v.CacheAge())
	}
	if _, err := v.Peek(r); !errors.As(err, &stale) {
		t.Errorf("Peek of a stale secret: %v", err)
	}
	// A path never read before cannot be served either.
	if _, err := v.Get(ctx, Ref{"vendors/kb", "api_key"}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("uncached path during outage: %v", err)
	}

	// Dev Vault restarts empty; vaultdev provisions it again (same AppRole
	// credentials, same secrets) and the old token is unknown to it.
	if err := e.srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "recovery after Vault is back", func() bool {
		_, err := v.Get(ctx, r)
		return err == nil
	})
	if v.Fresh() != nil || v.logins.Load() != 2 {
		t.Errorf("after recovery: Fresh %v, logins %d (want 2)", v.Fresh(), v.logins.Load())
	}
	e.assertNoLeak(t, "errors", err.Error(), token, v.client.Token())
	e.assertNoLeak(t, "log", e.logs.String(), token, v.client.Token())
	for _, want := range []string{"vault refresh failed", "logging in again", "vault reachable again"} {
		if !strings.Contains(e.logs.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// A token handed over in a file is used as is and never revoked by consentgate.
func TestVaultTokenAuth(t *testing.T) {
	t.Parallel()
	e := startVault(t, vaultdev.RoleOptions{})
	tok, err := e.root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{vaultdev.PolicyName}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "token")
	writeFile(t, file, tok.Auth.ClientToken+"\n")
	v := e.open(t, VaultOptions{Auth: TokenAuth{File: file}})
	if got := get(t, v, "consentgate/keys#subject_hmac").Value; got != testValues["consentgate/keys"]["subject_hmac"] {
		t.Error("wrong value with token auth")
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.root.Auth().Token().Lookup(tok.Auth.ClientToken); err != nil {
		t.Errorf("the operator's token was revoked on Close: %v", err)
	}
	e.assertNoLeak(t, "log", e.logs.String(), tok.Auth.ClientToken)

	// A wrong token fails at open, naming the file, not the token.
	writeFile(t, file, "hvs.not-a-token-0123456789\n")
	_, err = OpenVault(context.Background(), VaultOptions{Address: e.srv.Addr, Auth: TokenAuth{File: file}})
	if err == nil || !strings.Contains(err.Error(), file) || strings.Contains(err.Error(), "not-a-token") {
		t.Errorf("bad token: %v", err)
	}
}

func TestVaultAppRoleWrongSecretID(t *testing.T) {
	t.Parallel()
	e := startVault(t, vaultdev.RoleOptions{})
	bad := filepath.Join(t.TempDir(), "secret-id")
	writeFile(t, bad, "wrong-secret-id-0123456789\n")
	_, err := OpenVault(context.Background(), VaultOptions{Address: e.srv.Addr,
		Auth: AppRoleAuth{RoleIDFile: e.roleIDFile, SecretIDFile: bad}})
	if err == nil || !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "auth/approle/login") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "wrong-secret-id") {
		t.Error("the error repeats the secret id")
	}
	e.assertNoLeak(t, "error", err.Error())
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Calls that all need a path not read yet (a cold start under load) wait for
// one read of it from Vault, not one each.
func TestVaultMergesConcurrentFirstReads(t *testing.T) {
	t.Parallel()
	env := startVault(t, vaultdev.RoleOptions{})
	v, reads := env.openCounting(t, "/v1/secret/data/vendors/airbank", 50*time.Millisecond)

	ref, _ := ParseRef("vendors/airbank#api_key")
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			s, err := v.Get(context.Background(), ref)
			if err != nil || s.Value != testValues["vendors/airbank"]["api_key"] {
				t.Errorf("Get: %v", err)
			}
		})
	}
	wg.Wait()
	if n := reads.Load(); n != 1 {
		t.Errorf("16 concurrent first reads of one path reached Vault %d times, want 1", n)
	}
}

// openCounting opens a Vault provider through a proxy that counts the GETs of
// path (after delay, like a Vault some way off).
func (e *vaultEnv) openCounting(t *testing.T, path string, delay time.Duration) (*Vault, *atomic.Int64) {
	t.Helper()
	target, err := url.Parse(e.srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	reads := &atomic.Int64{}
	rp := httputil.NewSingleHostReverseProxy(target)
	counter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == path {
			reads.Add(1)
			time.Sleep(delay)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(counter.Close)
	o := VaultOptions{Auth: AppRoleAuth{RoleIDFile: e.roleIDFile, SecretIDFile: e.secretFile}, Logger: slog.New(slog.DiscardHandler)}
	o.Address = counter.URL
	v, err := OpenVault(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v, reads
}

// Vault's "no such secret" is kept like an answer: a bad reference costs one
// read, not one per call; the secret is found once it exists, at the next
// refresh (here: Reload, as SIGHUP does).
func TestVaultKeepsDefiniteNotFound(t *testing.T) {
	t.Parallel()
	env := startVault(t, vaultdev.RoleOptions{})
	v, reads := env.openCounting(t, "/v1/secret/data/vendors/later", 0)
	ref, _ := ParseRef("vendors/later#api_key")
	for range 3 {
		if _, err := v.Get(context.Background(), ref); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get of a missing secret: %v", err)
		}
	}
	if n := reads.Load(); n != 1 {
		t.Errorf("three calls for a missing secret read Vault %d times, want 1", n)
	}
	if _, err := env.root.KVv2("secret").Put(context.Background(), "vendors/later", map[string]any{"api_key": "later-key-0123456789"}); err != nil {
		t.Fatal(err)
	}
	if err := v.Reload(); err != nil {
		t.Fatal(err)
	}
	if s, err := v.Get(context.Background(), ref); err != nil || s.Value != "later-key-0123456789" {
		t.Errorf("after the secret was created and the cache refreshed: %v", err)
	}
}
