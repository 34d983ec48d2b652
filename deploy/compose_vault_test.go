package deploy_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/internal/tier"
	"github.com/consentgate/consentgate/proxy"
)

// vaultBinEnv overrides where the Vault server binary is (as the secrets tests do).
const vaultBinEnv = "CONSENTGATE_VAULT_BIN"

// vaultBinary is the real Vault server: $CONSENTGATE_VAULT_BIN, else the one
// deploy/scripts/build-vault.sh builds into .cache/bin/vault.
func vaultBinary(t *testing.T) string {
	t.Helper()
	tier.Needs(t, "a Vault server and busybox")
	p := os.Getenv(vaultBinEnv)
	if p == "" {
		p = filepath.Join("..", ".cache", "bin", "vault")
	}
	abs, err := filepath.Abs(p)
	if err == nil {
		_, err = os.Stat(abs)
	}
	if err != nil {
		t.Fatalf("no Vault server binary (%v): build it once with `make vault` (deploy/scripts/build-vault.sh, about 11 minutes cold) or set %s", err, vaultBinEnv)
	}
	return abs
}

// devVault is a real Vault dev server on loopback.
type devVault struct {
	addr, root string
}

func startVault(t *testing.T, bin string) devVault {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := l.Addr().String()
	l.Close()
	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		t.Fatal(err)
	}
	v := devVault{addr: "http://" + listen, root: hex.EncodeToString(tok)}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "server", "-dev", "-dev-root-token-id="+v.root, "-dev-listen-address="+listen)
	// Dev mode writes the root token to ~/.vault-token: keep it out of $HOME.
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "VAULT_ADDR="+v.addr)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(v.addr + "/v1/sys/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return v
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Vault did not become healthy at %s: %v", v.addr, err)
		}
	}
}

// do calls Vault's HTTP API and decodes the JSON answer; it returns the status.
func (v devVault) do(t *testing.T, token, method, path string, body any, out any) int {
	t.Helper()
	var in io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		in = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, v.addr+"/v1/"+path, in)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

// imageTools lays out a PATH like the hashicorp/vault image's: busybox applets
// and the vault binary, nothing else.
func imageTools(t *testing.T, vault string) (path, shell string) {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox (the shell and tools of the hashicorp/vault image) is not installed: %v; `make test-deps` installs it", err)
	}
	dir := t.TempDir()
	for _, tool := range []string{"sh", "head", "od", "tr", "base64", "sed", "sort", "cat", "chmod", "chown", "mv", "echo", "printf"} {
		if err := os.Symlink(bb, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(vault, filepath.Join(dir, "vault")); err != nil {
		t.Fatal(err)
	}
	return dir, filepath.Join(dir, "sh")
}

// secretRefs are the references a configuration makes the gateway read.
func secretRefs(cfg *configs.Config) []string {
	refs := []string{cfg.Keys.SubjectHMAC, cfg.Keys.FieldHMAC, cfg.Keys.AuditSigning}
	for _, v := range cfg.Vendors {
		for _, c := range v.Credentials {
			for _, r := range []string{c.Secret, c.ClientID, c.ClientSecret} {
				if strings.Contains(r, "#") {
					refs = append(refs, r)
				}
			}
		}
		if cc := v.ClientCertificate; cc != nil {
			for _, s := range []*configs.Source{cc.Cert, cc.Key, cc.PKCS12, cc.Password} {
				if s != nil && s.Secret != "" {
					refs = append(refs, s.Secret)
				}
			}
		}
	}
	return refs
}

// composeConfig loads deploy/compose/consentgate.yaml with the vendor profiles
// compose mounts beside it.
func composeConfig(t *testing.T) *configs.Config {
	t.Helper()
	dir := t.TempDir()
	for src, dst := range map[string]string{"compose/consentgate.yaml": "consentgate.yaml", "../configs/vendors": "vendors"} {
		abs, err := filepath.Abs(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(abs, filepath.Join(dir, dst)); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := configs.Load(filepath.Join(dir, "consentgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// What vault-init does in deploy/compose.yaml, against a real Vault server and
// with the image's shell and tools: afterwards the gateway's AppRole can log in
// with the two files, read every secret the compose configuration names (and
// each is fit for its use), and write nothing; a second run changes no value;
// nothing secret is printed.
func TestComposeVaultSeed(t *testing.T) {
	bin := vaultBinary(t)
	tools, shell := imageTools(t, bin)
	v := startVault(t, bin)
	cfg := composeConfig(t)
	pki, err := certs.LoadOrCreateDevPKI(filepath.Join(t.TempDir(), "pki"), nil)
	if err != nil {
		t.Fatal(err)
	}
	vendors, err := filepath.Abs("../configs/vendors")
	if err != nil {
		t.Fatal(err)
	}
	approle := t.TempDir()
	seed := func() string {
		t.Helper()
		cmd := exec.Command(shell, "compose/seed-vault.sh")
		cmd.Env = []string{"PATH=" + tools, "HOME=" + t.TempDir(), "VAULT_ADDR=" + v.addr, "VAULT_TOKEN=" + v.root,
			"VENDORS_DIR=" + vendors, "PKI_DIR=" + pki.Dir, "APPROLE_DIR=" + approle, "GATEWAY_UID=" + strconv.Itoa(os.Getuid())}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("seed-vault.sh: %v\n%s", err, out)
		}
		return string(out)
	}
	out := seed()

	// The gateway's credentials: owner-only files, a working AppRole login.
	creds := map[string]string{}
	for _, name := range []string{"role-id", "secret-id"} {
		file := filepath.Join(approle, name)
		info, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o400 {
			t.Errorf("%s has mode %04o, want 0400", name, info.Mode().Perm())
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		creds[name] = strings.TrimSpace(string(b))
	}
	login := func() string {
		t.Helper()
		var resp struct {
			Auth struct {
				ClientToken string   `json:"client_token"`
				Policies    []string `json:"token_policies"`
			} `json:"auth"`
		}
		if st := v.do(t, "", "POST", "auth/approle/login", map[string]string{"role_id": creds["role-id"], "secret_id": creds["secret-id"]}, &resp); st != http.StatusOK {
			t.Fatalf("AppRole login with the seeded files: status %d", st)
		}
		if !strings.Contains(strings.Join(resp.Auth.Policies, ","), "consentgate") {
			t.Errorf("AppRole token policies %v lack consentgate", resp.Auth.Policies)
		}
		return resp.Auth.ClientToken
	}
	token := login()

	// Every reference the compose gateway reads exists and is readable by it.
	read := func() map[string]string {
		t.Helper()
		values := map[string]string{}
		for _, ref := range secretRefs(cfg) {
			path, key, _ := strings.Cut(ref, "#")
			var resp struct {
				Data struct {
					Data map[string]any `json:"data"`
				} `json:"data"`
			}
			if st := v.do(t, token, "GET", cfg.Secrets.Vault.Mount+"/data/"+path, nil, &resp); st != http.StatusOK {
				t.Errorf("%s: the gateway's token reads status %d", ref, st)
				continue
			}
			val, _ := resp.Data.Data[key].(string)
			if val == "" {
				t.Errorf("%s is not seeded", ref)
			}
			values[ref] = val
		}
		return values
	}
	values := read()
	if len(values) < 10 {
		t.Fatalf("only %d secret references checked: %v", len(values), values)
	}
	for _, ref := range []string{cfg.Keys.SubjectHMAC, cfg.Keys.FieldHMAC} {
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(values[ref]) {
			t.Errorf("%s is not 32 random bytes in hex", ref)
		}
	}
	if values[cfg.Keys.SubjectHMAC] == values[cfg.Keys.FieldHMAC] {
		t.Error("the two HMAC keys are equal")
	}
	block, _ := pem.Decode([]byte(values[cfg.Keys.AuditSigning]))
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("%s is not a PEM private key", cfg.Keys.AuditSigning)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", cfg.Keys.AuditSigning, err)
	}
	if k, ok := key.(ed25519.PrivateKey); !ok || bytes.Equal(k.Seed(), make([]byte, ed25519.SeedSize)) {
		t.Errorf("%s is %T, want a random Ed25519 key", cfg.Keys.AuditSigning, key)
	}
	// The vendor client certificates meet their profiles' requirements, as
	// serve checks at start-up.
	for _, vd := range cfg.Vendors {
		cc := vd.ClientCertificate
		if cc == nil {
			continue
		}
		pair, err := certs.ParseKeyPair([]byte(values[cc.Cert.Secret]), []byte(values[cc.Key.Secret]))
		if err != nil {
			t.Errorf("vendor %s client certificate: %v", vd.ID, err)
			continue
		}
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := proxy.CertificateRequirement(cc).Check(leaf); err != nil {
			t.Errorf("vendor %s: %v", vd.ID, err)
		}
	}

	// Read-only: the gateway's token cannot change a secret.
	if st := v.do(t, token, "POST", cfg.Secrets.Vault.Mount+"/data/vendors/kb", map[string]any{"data": map[string]string{"api_key": "x"}}, nil); st != http.StatusForbidden {
		t.Errorf("the gateway's token wrote a secret: status %d, want 403", st)
	}

	// A second run keeps every value and the role id, and its new secret id works.
	out += seed()
	b, _ := os.ReadFile(filepath.Join(approle, "role-id"))
	if strings.TrimSpace(string(b)) != creds["role-id"] {
		t.Error("the role id changed on the second run")
	}
	b, _ = os.ReadFile(filepath.Join(approle, "secret-id"))
	creds["secret-id"] = strings.TrimSpace(string(b))
	token = login()
	again := read()
	for ref, val := range values {
		if again[ref] != val {
			t.Errorf("%s changed on the second run", ref)
		}
	}

	// Nothing secret in the script's output.
	for name, s := range creds {
		values[name] = s
	}
	values["root token"] = v.root
	for ref, val := range values {
		for _, line := range strings.Split(val, "\n") {
			if len(line) >= 8 && strings.Contains(out, line) {
				t.Errorf("the output shows (part of) %s", ref)
				break
			}
		}
	}
	if !strings.Contains(out, "stored consentgate/keys#audit_signing") || !strings.Contains(out, "kept consentgate/keys#audit_signing") {
		t.Errorf("output:\n%s", out)
	}
}
