package proxy

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/internal/logsink"
	"github.com/consentgate/consentgate/policy"
	"github.com/consentgate/consentgate/secrets"
)

// testGateway is how every gateway test builds its gateway: a folder with an
// internal CA, a serving certificate, the keys, an allow-all policy and the
// profiles the test gives; real configuration loading, file secrets, OPA and
// audit log. Tests say only what differs: more secrets, more keys in the main
// file, their vendor profiles, the consent registry and options.
type testGateway struct {
	dir     string
	ca      *certs.CA
	secrets string   // secrets.yaml entries besides consentgate/keys
	keys    string   // consentgate/keys fields besides the two HMAC keys
	main    string   // main.yaml keys besides the common ones
	listen  string   // listen: keys besides gateway
	files   []string // vendor profile files, in order
	opts    []func(*Options)
}

// builtGateway is what build made.
type builtGateway struct {
	cfg    *configs.Config
	store  *secrets.FileStore
	engine *policy.Engine
	audit  *audit.Log
	gw     *Gateway
	logs   *logsink.Buffer
	log    *slog.Logger
	trust  *x509.CertPool
}

func newTestGateway(t testing.TB) *testGateway {
	t.Helper()
	dir := t.TempDir()
	ca, err := certs.NewCA(pkix.Name{CommonName: "test internal CA"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "ca.crt"), certs.EncodeCertificates(ca.Cert), 0o644)
	gw, gwKey, err := ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "gw"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		t.Fatal(err)
	}
	writePair(t, dir, "gw", gw, gwKey)
	writeFile(t, filepath.Join(dir, "policies", "allow.rego"), []byte(testPolicy), 0o644)
	return &testGateway{dir: dir, ca: ca}
}

// vendor writes a profile and lists it in the main file.
func (b *testGateway) vendor(t testing.TB, file, profile string) {
	t.Helper()
	writeFile(t, filepath.Join(b.dir, file), []byte(profile), 0o644)
	b.files = append(b.files, file)
}

// build writes the secrets and the main file, loads them as serve does, and
// makes the gateway with consents (nil: fakeConsents).
func (b *testGateway) build(t testing.TB, consents Consents) *builtGateway {
	t.Helper()
	writeFile(t, filepath.Join(b.dir, "secrets.yaml"), []byte(b.secrets+`consentgate/keys:
  field_hmac: test-field-hmac-key-0123456789abcdef
  subject_hmac: test-subject-hmac-key-0123456789abcdef
`+b.keys), 0o600)
	writeFile(t, filepath.Join(b.dir, "main.yaml"), []byte(`node: test
trust_domain: test.local
data_dir: `+b.dir+`
listen:
  gateway: 127.0.0.1:0
`+b.listen+`tls:
  cert_file: gw.crt
  key_file: gw.key
  client_ca_file: ca.crt
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
`+b.main+`vendors: [`+strings.Join(b.files, ", ")+`]
`), 0o644)
	cfg, err := configs.Load(filepath.Join(b.dir, "main.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out := &builtGateway{cfg: cfg, logs: &logsink.Buffer{}, trust: x509.NewCertPool()}
	out.trust.AddCert(b.ca.Cert)
	if out.store, err = secrets.OpenFile(cfg.ResolvePath("secrets.yaml")); err != nil {
		t.Fatal(err)
	}
	out.log = slog.New(slog.NewJSONHandler(out.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if out.engine, err = policy.New(context.Background(), policy.Options{Source: policy.Source{Dir: filepath.Join(b.dir, "policies")}, Timeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	_, signing, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if out.audit, err = audit.Open(filepath.Join(b.dir, "audit.db"), audit.Options{Node: "test", SigningKey: signing}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.audit.Close() })
	if consents == nil {
		consents = fakeConsents{}
	}
	o := Options{Config: cfg, Secrets: out.store, Policy: out.engine, Consents: consents, Audit: out.audit, Logger: out.log}
	for _, opt := range b.opts {
		opt(&o)
	}
	if out.gw, err = New(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	return out
}

// serve starts the configured listeners until the test ends.
func (g *builtGateway) serve(t testing.TB, forward, admin, callbacks http.Handler) *Server {
	t.Helper()
	in, err := NewInboundTLS(g.cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Listen(g.cfg, in, g.gw, forward, admin, callbacks, g.log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return srv
}
