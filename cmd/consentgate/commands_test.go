package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/logsink"

	"github.com/consentgate/consentgate/ca"
	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/secrets"
)

// writeServeConfig lays out what an operator would: the shipped vendor profiles, a
// PKI, an owner-only secrets file and a main config using the file provider.
func writeServeConfig(t *testing.T) (dir, file string, pki *certs.DevPKI) {
	t.Helper()
	dir = t.TempDir()
	err := fs.WalkDir(configs.FS, "vendors", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(configs.FS, p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dir, "vendors"), 0o700); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, p), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	pki = servePKI(t, dir)
	if _, err := loadOrCreateDevSecrets(context.Background(), filepath.Join(dir, "secrets.yaml"), pki); err != nil {
		t.Fatal(err)
	}
	writeTestPolicies(t, filepath.Join(dir, "policies"))
	file = filepath.Join(dir, "consentgate.yaml")
	writeTestFile(t, file, `node: test-1
trust_domain: consentgate.test
data_dir: `+dir+`
listen:
  gateway: 127.0.0.1:0
  forward: 127.0.0.1:0
  admin: 127.0.0.1:0
  callbacks: 127.0.0.1:0
tls:
  cert_file: pki/gateway.crt
  key_file: pki/gateway.key
  client_ca_file: pki/ca.crt
secrets:
  provider: file
  file:
    path: secrets.yaml
policy:
  dir: policies
keys:
  subject_hmac: consentgate/keys#subject_hmac
  field_hmac: consentgate/keys#field_hmac
  audit_signing: consentgate/keys#audit_signing
  token_seal: consentgate/keys#token_seal
oauth:
  public_url: https://consentgate.test
vendors: [vendors/kb.yaml, vendors/airbank.yaml, vendors/biometric.yaml, vendors/finid.yaml, vendors/banqware.yaml]
`)
	return dir, file, pki
}

func writeTestFile(t *testing.T, name, data string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestServeStartsAndStopsCleanly(t *testing.T) {
	_, file, pki := writeServeConfig(t)
	s := startServe(t, file)
	e := &devEnv{devStack: &devStack{pki: pki}}
	resp, body := call(t, e.clientFor(t, "onboarding-web"), "GET", "https://"+s.addr+"/v/nobody/x", "", nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "no-route") {
		t.Errorf("unknown vendor: %d %s", resp.StatusCode, body)
	}
	s.stop(t)
	if !strings.Contains(s.log.String(), "consentgate stopped") {
		t.Errorf("no stop line in the log:\n%s", s.log.String())
	}
}

// served is `consentgate serve` running in the test: its gateway address and log.
type served struct {
	addr   string
	log    *logsink.Buffer
	cancel context.CancelFunc
	done   chan error
}

// startServe runs `serve --config file` until the test ends or stop.
func startServe(t *testing.T, file string) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout := &logsink.Buffer{}
	s := &served{log: &logsink.Buffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- run(ctx, []string{"serve", "--config", file}, stdout, s.log) }()
	t.Cleanup(func() { cancel() })
	for deadline := time.Now().Add(20 * time.Second); s.addr == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := regexp.MustCompile(`ready gateway=https://(\S+)`).FindStringSubmatch(stdout.String()); m != nil {
			s.addr = m[1]
		}
		select {
		case err := <-s.done:
			t.Fatalf("serve stopped: %v\n%s", err, s.log.String())
		default:
		}
	}
	if s.addr == "" {
		t.Fatalf("no ready line; log:\n%s", s.log.String())
	}
	return s
}

// stop cancels serve and waits for a clean stop.
func (s *served) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop on cancellation")
	}
}

// A kb certificate without IČO from a non-I.CA issuer must stop start-up with
// an error that names the vendor and both problems.
func TestServeRefusesACertificateTheVendorWouldRefuse(t *testing.T) {
	dir, file, pki := writeServeConfig(t)
	store, err := secrets.OpenFile(filepath.Join(dir, "secrets.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	bqCert, _ := os.ReadFile(pki.Path(certs.DevBanqwareCert))
	bqKey, _ := os.ReadFile(certs.KeyFile(pki.Path(certs.DevBanqwareCert)))
	values := map[string]map[string]string{}
	refs := devKeyRefs
	for _, s := range devSecretRefs {
		refs = append(refs, s.ref)
	}
	for _, r := range refs {
		ref, _ := secrets.ParseRef(r)
		got, err := store.Get(context.Background(), ref)
		if err != nil {
			t.Fatal(err)
		}
		if values[ref.Path] == nil {
			values[ref.Path] = map[string]string{}
		}
		values[ref.Path][ref.Key] = got.Value
	}
	values["vendors/kb"]["client_cert"], values["vendors/kb"]["client_key"] = string(bqCert), string(bqKey)
	values["vendors/banqware"] = map[string]string{"client_cert": string(bqCert), "client_key": string(bqKey)}
	if err := secrets.WriteFile(filepath.Join(dir, "secrets.yaml"), values); err != nil {
		t.Fatal(err)
	}
	err = run(context.Background(), []string{"serve", "--config", file}, &logsink.Buffer{}, &logsink.Buffer{})
	if err == nil {
		t.Fatal("serve started with a kb certificate kb would refuse")
	}
	for _, want := range []string{"vendor kb client certificate", "not one of the required families (ica, postsignum)", "no IČO"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestServeNamesMissingFiles(t *testing.T) {
	dir, file, _ := writeServeConfig(t)
	if err := os.Remove(filepath.Join(dir, "pki", "ca.crt")); err != nil {
		t.Fatal(err)
	}
	err := run(context.Background(), []string{"serve", "--config", file}, &logsink.Buffer{}, &logsink.Buffer{})
	if err == nil || !strings.Contains(err.Error(), file+":12: tls.client_ca_file: cannot read") {
		t.Fatalf("err = %v", err)
	}
}

func TestConfigCheck(t *testing.T) {
	out := &logsink.Buffer{}
	if err := run(context.Background(), []string{"config", "check", "../../configs/consentgate.yaml"}, out, out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "ok (5 vendors,") {
		t.Errorf("output %q", out.String())
	}
	_, file, _ := writeServeConfig(t)
	data, _ := os.ReadFile(file)
	writeTestFile(t, file, strings.Replace(string(data), "  key_file:", "  keyfile:", 1))
	err := run(context.Background(), []string{"config", "check", file}, out, out)
	if err == nil || !strings.Contains(err.Error(), file+":11: tls.keyfile: unknown field") {
		t.Fatalf("err = %v", err)
	}
}

func TestCertsInspect(t *testing.T) {
	_, _, pki := writeServeConfig(t)
	out := &logsink.Buffer{}
	if err := run(context.Background(), []string{"certs", "inspect", pki.Path(certs.DevKBCert)}, out, out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"IČO:           " + certs.DevICO + " (from commonName)", "issuer family: ica", "kind:          server",
		"note:          a TLS server certificate (no clientAuth): only a vendor whose profile lists types: [server]", "organisation:  Onboarding Example s.r.o.", "key:           ECDSA P-256", "days left:     364"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "warning") {
		t.Errorf("unexpected warning:\n%s", out.String())
	}
	out = &logsink.Buffer{}
	if err := run(context.Background(), []string{"certs", "inspect", pki.Path(certs.DevBanqwareCert)}, out, out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "IČO:           none") || !strings.Contains(out.String(), "warning:       issuer is neither I.CA nor PostSignum") {
		t.Errorf("banqware certificate:\n%s", out.String())
	}
}

func TestPolicyCommands(t *testing.T) {
	dir := t.TempDir()
	if _, err := devPolicies(filepath.Join(dir, "none"), false, dir); err != nil {
		t.Fatal(err)
	}
	pdir := filepath.Join(dir, "policies")
	out := &logsink.Buffer{}
	if err := run(context.Background(), []string{"policy", "test", pdir}, out, out); err != nil {
		t.Fatalf("shipped policy tests: %v\n%s", err, out.String())
	}
	if !regexp.MustCompile(`: (\d{2,}) passed, 0 failed`).MatchString(out.String()) {
		t.Errorf("summary: %s", out.String())
	}
	if err := run(context.Background(), []string{"policy", "check", pdir}, out, out); err != nil {
		t.Fatalf("policy check: %v", err)
	}

	// eval prints the decision the gateway would make.
	input := filepath.Join(dir, "input.json")
	writeTestFile(t, input, `{"app":{"id":"onboarding-web","role":"app"},"vendor":"airbank","operation":"airbank.cards",
		"body":"json","purpose":"account-aggregation","consent_id":"c1",
		"consent":{"id":"c1","app":"onboarding-web","vendors":["airbank"],"purposes":["account-aggregation"],"categories":["card"],
		"status":"active","granted_at":"2026-01-01T00:00:00Z","expires_at":"2027-01-01T00:00:00Z"},
		"fields":{"request":{},"response":{"data[].cardNumber":"card"}},"request":{"fields":[]},"now":"2026-11-21T10:00:00Z"}`)
	out = &logsink.Buffer{}
	if err := run(context.Background(), []string{"policy", "eval", "--policy", pdir, "--input", input}, out, out); err != nil {
		t.Fatal(err)
	}
	var d struct {
		Allow    bool     `json:"allow"`
		Reasons  []string `json:"reasons"`
		Response struct {
			Fields map[string]string `json:"fields"`
		} `json:"response"`
	}
	if err := json.Unmarshal([]byte(out.String()), &d); err != nil || !d.Allow || d.Response.Fields["data[].cardNumber"] != "keep" {
		t.Errorf("eval: %v %s", err, out.String())
	}

	// Data that names an action consentgate cannot apply fails check and eval
	// alike, at its line: the gateway would refuse that revision.
	data, err := os.ReadFile(filepath.Join(pdir, "data.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(pdir, "data.yaml"), strings.Replace(string(data), "card: keep", "card: publish", 1))
	err = run(context.Background(), []string{"policy", "check", pdir}, out, out)
	if err == nil || !regexp.MustCompile(`data\.yaml:\d+: purpose account-aggregation maps card to "publish"`).MatchString(err.Error()) {
		t.Errorf("check of data with an unknown action: %v", err)
	}
	if err := run(context.Background(), []string{"policy", "eval", "--policy", pdir, "--input", input}, out, out); err == nil || !strings.Contains(err.Error(), `"publish"`) {
		t.Errorf("eval of data with an unknown action: %v", err)
	}
	writeTestFile(t, filepath.Join(pdir, "data.yaml"), string(data))

	// A failing test and an unformatted file are errors.
	writeTestFile(t, filepath.Join(pdir, "zz_test.rego"), "package consentgate_zz\n\ntest_fails if {\n\tdata.consentgate.decision.allow == true\n}\n")
	if err := run(context.Background(), []string{"policy", "test", pdir}, out, out); err == nil || !strings.Contains(out.String(), "FAIL ") {
		t.Errorf("a failing policy test passed: %v", err)
	}
	writeTestFile(t, filepath.Join(pdir, "zz_test.rego"), "package consentgate_zz\ntest_x if { true }\n")
	if err := run(context.Background(), []string{"policy", "check", pdir}, out, out); err == nil || !strings.Contains(err.Error(), "zz_test.rego") {
		t.Errorf("unformatted file: err = %v", err)
	}
}

// servePKITemplate is the PKI writeServeConfig lays out, made once per test
// process and copied: creating the CA's provisioner key is deliberately slow.
var servePKITemplate struct {
	once sync.Once
	dir  string
}

// servePKI lays out in dir/pki an internal CA, the onboarding-web app
// certificate it issued, and a serving certificate from the intermediate.
func servePKI(t *testing.T, dir string) *certs.DevPKI {
	t.Helper()
	servePKITemplate.once.Do(func() {
		tmpl, err := os.MkdirTemp("", "consentgate-serve-pki-")
		if err != nil {
			t.Fatal(err)
		}
		makeServePKI(t, tmpl)
		servePKITemplate.dir = filepath.Join(tmpl, "pki")
	})
	if servePKITemplate.dir == "" {
		t.Fatal("the template PKI could not be made (see the first test that tried)")
	}
	if err := os.CopyFS(filepath.Join(dir, "pki"), os.DirFS(servePKITemplate.dir)); err != nil {
		t.Fatal(err)
	}
	return &certs.DevPKI{Dir: filepath.Join(dir, "pki")}
}

func makeServePKI(t *testing.T, dir string) {
	t.Helper()
	pki, err := certs.LoadOrCreateDevPKI(filepath.Join(dir, "pki"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The internal CA on the PKI's root and intermediate issues the app
	// certificate, through the CLI an operator would use.
	auth, err := ca.Open(ca.Options{Dir: pki.Dir, TrustDomain: "consentgate.test", Address: "127.0.0.1:0", DNSNames: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.Close(); err != nil {
		t.Fatal(err)
	}
	out := &logsink.Buffer{}
	for role, name := range map[string]string{"app": "onboarding-web", "admin": "secops"} {
		if err := run(context.Background(), []string{"certs", "issue", "--ca-dir", pki.Dir, "--role", role, "--name", name, "--out", pki.Path("apps")}, out, out); err != nil {
			t.Fatalf("certs issue: %v\n%s", err, out)
		}
	}
	// A serving certificate from the operator's own tooling (tls.cert_file):
	// signed by the intermediate, sent with it.
	interPEM, _ := os.ReadFile(pki.Path(certs.DevIntermediateCert))
	interKey, _ := os.ReadFile(certs.KeyFile(pki.Path(certs.DevIntermediateCert)))
	inter, err := certs.ParseCA(interPEM, interKey)
	if err != nil {
		t.Fatal(err)
	}
	gw, gwKey, err := inter.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "gateway"}, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		t.Fatal(err)
	}
	if err := certs.WriteKeyPair(pki.Path("gateway.crt"), &tls.Certificate{Certificate: [][]byte{gw.Raw, inter.Cert.Raw}, PrivateKey: gwKey}); err != nil {
		t.Fatal(err)
	}
}
