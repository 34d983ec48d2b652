package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/internal/logsink"
	"github.com/consentgate/consentgate/internal/tier"
	"github.com/consentgate/consentgate/internal/vaultdev"
	"github.com/consentgate/consentgate/secrets"
)

// The Vault end-to-end tests run `consentgate dev --vault` in-process against
// the real Vault server in .cache/bin/vault; without it they fail, naming the
// command that builds it.

const (
	testVaultRefresh  = 200 * time.Millisecond
	testVaultMaxStale = 4 * time.Second // longer than stopping Vault takes
)

func startTestDevVault(t *testing.T) *devEnv {
	t.Helper()
	tier.Needs(t, "a Vault server")
	if _, err := vaultdev.Binary(); err != nil {
		t.Fatal(err)
	}
	e, stop := startTestDevOpts(t, devOptions{dir: t.TempDir(), vault: true,
		vaultRefresh: testVaultRefresh, vaultMaxStale: testVaultMaxStale})
	t.Cleanup(stop)
	if e.vault == nil || e.cfg.Secrets.Provider != "vault" {
		t.Fatal("dev --vault is not using Vault")
	}
	return e
}

// vaultLeaks are values that must never appear in a log, a body or a metric:
// the dev Vault's root token, the AppRole credentials, and any Vault token.
func (e *devEnv) assertNoVaultLeaks(t *testing.T, where, text string) {
	t.Helper()
	e.assertNoSecrets(t, where, text)
	vdir := filepath.Join(e.cfg.DataDir, "vault")
	for _, f := range []string{"role-id", "secret-id", "root-token"} {
		data, err := os.ReadFile(filepath.Join(vdir, f))
		if err != nil {
			t.Fatal(err)
		}
		if v := strings.TrimSpace(string(data)); strings.Contains(text, v) {
			t.Errorf("%s contains the dev Vault's %s", where, f)
		}
	}
	// Vault service tokens start with hvs.
	if regexp.MustCompile(`hvs\.[A-Za-z0-9_-]{20,}`).MatchString(text) {
		t.Errorf("%s contains a Vault token", where)
	}
}

func (e *devEnv) airbankCards(t *testing.T) (*http.Response, []byte) {
	t.Helper()
	return call(t, e.app, "GET", e.gatewayURL()+"/v/airbank/openapi/glClientIdentity/v1/cards", "", under("dev-kyc", "account-aggregation"))
}

// The whole story with Vault holding every secret: the gateway works; a vendor
// key rotated in Vault is used without a restart; while Vault is down the
// cached values serve until max_stale, then calls fail closed with 503 and the
// vendor is not called; when Vault is back, calls succeed again by themselves.
// Nothing secret reaches a log, a body or a metric.
func TestReliabilityVaultRotationOutageRecovery(t *testing.T) {
	e := startTestDevVault(t)
	ctx := context.Background()
	admin := e.clientFor(t, "secops")

	// Every vendor call works with the secrets from Vault, and consentgate's own
	// keys come from there too: the checkpoint key the dev folder's audit.pub
	// was derived from, and the HMAC keys the audit records use.
	assertEveryVendor(t, e)
	root, err := e.vault.Client()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := root.KVv2("secret").Get(ctx, "consentgate/keys")
	if err != nil {
		t.Fatal(err)
	}
	signing, err := auditSigningKey(ctx, e.cfg, staticProvider{"consentgate/keys#audit_signing": keys.Data["audit_signing"].(string)})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(filepath.Join(e.cfg.DataDir, "audit.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pub, audit.PublicKeyPEM(signing.Public().(ed25519.PublicKey))) {
		t.Error("the audit log is not signed with the checkpoint key held in Vault")
	}
	if e.consents.SubjectHMAC(devSubject) != audit.HMAC([]byte(keys.Data["subject_hmac"].(string)), devSubject) {
		t.Error("subjects are not hashed with the HMAC key held in Vault")
	}

	// Air Bank revokes the old key and issues a new one; the security team
	// writes it to Vault. Once the gateway has read the new version, every
	// later call carries it, and the old key is never sent again.
	rotated := "rotated-airbank-key-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-0123456789abcdef"
	if err := e.sandboxes.Airbank.RotateAPIKey(rotated); err != nil {
		t.Fatal(err)
	}
	if _, err := e.vault.Put(ctx, "vendors/airbank", map[string]string{"api_key": rotated, "client_id": e.creds.AirbankClientID, "client_secret": e.creds.AirbankClientSecret}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the gateway to use the rotated key", func() bool {
		resp, _ := e.airbankCards(t)
		return resp.StatusCode == http.StatusOK
	})
	firstNew := -1
	for i, r := range e.sandboxes.Airbank.Requests() {
		if r.Header.Get("Apikey") == rotated && firstNew < 0 {
			firstNew = i
		}
	}
	if firstNew < 0 {
		t.Fatal("no call carried the rotated key")
	}
	for i := 0; i < 3; i++ {
		if resp, body := e.airbankCards(t); resp.StatusCode != http.StatusOK {
			t.Fatalf("after rotation: %d %s", resp.StatusCode, body)
		}
	}
	reqs := e.sandboxes.Airbank.Requests()
	for _, r := range reqs[firstNew:] {
		if r.Header.Get("Apikey") != rotated {
			t.Fatal("a call after the rotation was picked up went out with the old key")
		}
	}
	e.creds.AirbankAPIKey = rotated // a secret from now on, for the leak checks

	// Outage: the cached secrets keep serving.
	e.vault.Stop()
	if resp, body := e.airbankCards(t); resp.StatusCode != http.StatusOK {
		t.Fatalf("right after Vault stopped: %d %s", resp.StatusCode, body)
	}
	// Past max_stale the call fails closed: 503 problem+json, vendor uncalled.
	var resp *http.Response
	var body []byte
	var before int
	waitFor(t, "the cached secrets to go stale", func() bool {
		before = e.sandboxes.Airbank.Count()
		resp, body = e.airbankCards(t)
		return resp.StatusCode != http.StatusOK
	})
	var p struct {
		Type   string `json:"type"`
		Status int    `json:"status"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Content-Type") != "application/problem+json" ||
		p.Type != "urn:consentgate:problem:credentials-unavailable" || p.Status != 503 {
		t.Fatalf("stale secrets: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if e.sandboxes.Airbank.Count() != before {
		t.Error("the vendor was called with stale secrets")
	}
	e.assertNoVaultLeaks(t, "error body", string(body))
	// Every vendor fails closed the same way, and none is called. Each secret
	// path goes stale max_stale after its own last refresh, so a vendor may
	// still be served for a moment, and answer as it likes (banqware: 409 for a
	// user created earlier): what counts is that the 503 did not reach it.
	for _, c := range devCalls {
		s := e.sandboxes.Server(c.vendor)
		var before int
		var resp *http.Response
		var body []byte
		waitFor(t, c.vendor+" to fail closed with 503 credentials-unavailable", func() bool {
			before = s.Count()
			resp, body = call(t, e.app, c.method, e.gatewayURL()+"/v/"+c.vendor+c.path, c.body, under("dev-kyc", c.purpose))
			return resp.StatusCode == http.StatusServiceUnavailable
		})
		// The wait ended on a 503: it must be consentgate's, for the secrets.
		if !strings.Contains(string(body), "credentials-unavailable") {
			t.Errorf("%s with stale secrets: %d %s", c.vendor, resp.StatusCode, body)
		}
		if s.Count() != before {
			t.Errorf("%s was called with stale secrets", c.vendor)
		}
	}
	// Readiness and metrics say why.
	resp, body = call(t, admin, "GET", e.adminURL()+"/readyz", "", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "secrets:") {
		t.Errorf("/readyz with stale secrets: %d %s", resp.StatusCode, body)
	}
	if age := cacheAge(t, e); age <= testVaultMaxStale.Seconds() {
		t.Errorf("consentgate_secret_cache_age_seconds = %v during the outage, want above max_stale", age)
	}

	// Vault comes back (dev Vault restarts empty; vaultdev provisions it again
	// with the same AppRole and the latest secrets). No one touches consentgate.
	if err := e.vault.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "calls to succeed again after Vault is back", func() bool {
		resp, _ := e.airbankCards(t)
		return resp.StatusCode == http.StatusOK
	})
	if got := lastRequest(t, e.sandboxes.Airbank).Header.Get("Apikey"); got != rotated {
		t.Error("after recovery the vendor got another key than the rotated one")
	}
	// Secrets no call has needed since are confirmed by the background refresh,
	// within one refresh interval of Vault's return.
	waitFor(t, "/readyz after recovery", func() bool {
		resp, body = call(t, admin, "GET", e.adminURL()+"/readyz", "", nil)
		return resp.StatusCode == http.StatusOK
	})
	if age := cacheAge(t, e); age > testVaultMaxStale.Seconds() {
		t.Errorf("cache age %v after recovery", age)
	}

	_, metrics := call(t, admin, "GET", e.adminURL()+"/metrics", "", nil)
	e.assertNoVaultLeaks(t, "metrics", string(metrics))
	e.assertNoVaultLeaks(t, "log", e.logs.String())
	for _, want := range []string{"vault login", "vault secret rotated", "vault refresh failed", "vault reachable again"} {
		if !strings.Contains(e.logs.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// staticProvider serves fixed values (here: read from Vault by the test itself).
type staticProvider map[string]string

func (p staticProvider) Get(_ context.Context, ref secrets.Ref) (secrets.Secret, error) {
	v, ok := p[ref.String()]
	if !ok {
		return secrets.Secret{}, secrets.ErrNotFound
	}
	return secrets.Secret{Value: v}, nil
}

func cacheAge(t *testing.T, e *devEnv) float64 {
	t.Helper()
	_, body := call(t, e.clientFor(t, "secops"), "GET", e.adminURL()+"/metrics", "", nil)
	m := regexp.MustCompile(`(?m)^consentgate_secret_cache_age_seconds ([0-9.e+-]+)$`).FindStringSubmatch(string(body))
	if m == nil {
		t.Fatal("metrics lack consentgate_secret_cache_age_seconds")
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// `consentgate serve` with provider vault and a token file: the checkpoint key,
// the HMAC keys and the vendor client certificates are read from Vault before
// anything listens; `audit pubkey` reads the same key; the operator's token is
// not revoked when the gateway stops.
func TestServeWithVault(t *testing.T) {
	tier.Needs(t, "a Vault server")
	bin, err := vaultdev.Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir, file, pki := writeServeConfig(t)
	ctx := context.Background()
	srv, err := vaultdev.Start(ctx, vaultdev.Options{Bin: bin, LogFile: filepath.Join(dir, "vault.log")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	values, err := secrets.ReadFile(filepath.Join(dir, "secrets.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv.Provision(ctx, dir, values, vaultdev.RoleOptions{}); err != nil {
		t.Fatal(err)
	}
	root, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{vaultdev.PolicyName}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "vault-token"), tok.Auth.ClientToken+"\n")
	// The secrets file goes: everything must come from Vault.
	if err := os.Remove(filepath.Join(dir, "secrets.yaml")); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, file, strings.Replace(string(cfg), "  provider: file\n  file:\n    path: secrets.yaml\n",
		"  provider: vault\n  vault:\n    address: "+srv.Addr+"\n    auth: token\n    token_file: vault-token\n", 1))

	if out, err := runCmd(t, "config", "check", "--files", file); err != nil {
		t.Fatalf("config check: %v %s", err, out)
	}
	out, err := runCmd(t, "audit", "pubkey", "--config", file)
	if err != nil {
		t.Fatalf("audit pubkey: %v %s", err, out)
	}
	want, err := auditSigningKey(ctx, &configs.Config{Keys: configs.Keys{AuditSigning: "consentgate/keys#audit_signing"}}, staticProvider{"consentgate/keys#audit_signing": values["consentgate/keys"]["audit_signing"]})
	if err != nil {
		t.Fatal(err)
	}
	if out != string(audit.PublicKeyPEM(want.Public().(ed25519.PublicKey))) {
		t.Errorf("audit pubkey with Vault printed %q", out)
	}

	runCtx, cancel := context.WithCancel(ctx)
	stdout, stderr := &logsink.Buffer{}, &logsink.Buffer{}
	done := make(chan error, 1)
	go func() { done <- run(runCtx, []string{"serve", "--config", file}, stdout, stderr) }()
	waitFor(t, "the ready line", func() bool {
		select {
		case err := <-done:
			t.Fatalf("serve stopped: %v\n%s", err, stderr.String())
		default:
		}
		return strings.Contains(stdout.String(), "ready gateway=")
	})
	addr := regexp.MustCompile(`ready gateway=\S+ forward=\S+ admin=https://(\S+)`).FindStringSubmatch(stdout.String())[1]
	e := &devEnv{devStack: &devStack{pki: pki}}
	resp, body := call(t, e.clientFor(t, "onboarding-web"), "GET", "https://"+addr+"/readyz", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz: %d %s", resp.StatusCode, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve returned %v\n%s", err, stderr.String())
	}
	if _, err := root.Auth().Token().Lookup(tok.Auth.ClientToken); err != nil {
		t.Errorf("serve revoked the operator's token: %v", err)
	}
	for where, text := range map[string]string{"log": stderr.String(), "stdout": stdout.String()} {
		if strings.Contains(text, tok.Auth.ClientToken) || strings.Contains(text, srv.RootToken) {
			t.Errorf("the %s holds a Vault token", where)
		}
		for path, kv := range values {
			for k, v := range kv {
				if strings.Contains(text, v) {
					t.Errorf("the %s holds %s#%s", where, path, k)
				}
			}
		}
	}
}
