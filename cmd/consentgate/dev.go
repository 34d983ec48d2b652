package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/sandbox"
	"github.com/consentgate/consentgate/secrets"
)

type devOptions struct {
	dir                     string
	gateway, forward, admin string
	callbacks               string
	policies                string
	// airbankLimit overrides the Air Bank sandbox's per-minute limit (tests).
	airbankLimit int
	// policyTimeout overrides the per-decision bound (tests under -race, where
	// evaluation is many times slower than in a real build).
	policyTimeout time.Duration
	// otlp is an OTLP/HTTP collector to send spans to (tracing.endpoint).
	otlp string
	// vendorTimeouts, where non-zero, replace every vendor profile's timeouts
	// (tests of vendors that hang, which the profiles' 15–30 s would slow down).
	vendorTimeouts configs.Timeouts
}

func newDevCmd(logger func() *slog.Logger) *cobra.Command {
	var o devOptions
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the gateway with local vendor sandboxes, a dev PKI and file secrets",
		Long: `Run the whole system on this machine with no external service. The first run
generates DIR/pki (internal CA, gateway and app certificates, dev vendor PKI)
and DIR/secrets.yaml (mode 0600); later runs reuse them. The five vendor
sandboxes start on loopback and every vendor profile is pointed at its sandbox.
The policy directory is watched: an edit is in service within a second, and a
broken edit keeps the running policy. Two consents are seeded for the dev app:
dev-kyc and dev-age. It prints a ready line and one curl command per vendor.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := startDev(cmd.Context(), o, logger())
			if err != nil {
				return err
			}
			defer d.close()
			d.printReady(cmd.OutOrStdout())
			return d.serve(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&o.dir, "dir", ".consentgate", "folder for the dev PKI, secrets and state")
	cmd.Flags().StringVar(&o.gateway, "gateway", "127.0.0.1:8443", "gateway listener address")
	cmd.Flags().StringVar(&o.forward, "forward", "127.0.0.1:8444", "forward proxy listener address")
	cmd.Flags().StringVar(&o.admin, "admin", "127.0.0.1:9443", "admin listener address")
	cmd.Flags().StringVar(&o.callbacks, "callbacks", "127.0.0.1:8445", "vendor callbacks listener address")
	cmd.Flags().StringVar(&o.policies, "policies", "configs/policies", "policy directory, watched for edits; when it does not exist, the embedded policies are copied to DIR/policies")
	cmd.Flags().DurationVar(&o.policyTimeout, "policy-timeout", 0, "bound on one policy decision (default 50ms); raise it for a race-instrumented or very slow build")
	cmd.Flags().StringVar(&o.otlp, "otlp", "", "send OpenTelemetry spans to this OTLP/HTTP collector, e.g. http://127.0.0.1:4318 (off by default)")
	return cmd
}

// devStack is everything `consentgate dev` runs.
type devStack struct {
	*running
	pki       *certs.DevPKI
	sandboxes *sandbox.Set
	creds     sandbox.Credentials
	inbox     *inbox
}

func startDev(ctx context.Context, o devOptions, log *slog.Logger) (*devStack, error) {
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	cfg, err := configs.LoadFS(configs.FS, "dev.yaml")
	if err != nil {
		return nil, err
	}
	cfg.DataDir = dir
	cfg.Listen.Gateway, cfg.Listen.Forward, cfg.Listen.Admin, cfg.Listen.Callbacks = o.gateway, o.forward, o.admin, o.callbacks
	if cfg.Policy.Dir, err = devPolicies(o.policies, dir); err != nil {
		return nil, err
	}
	if o.policyTimeout > 0 {
		cfg.Policy.Timeout.Duration = o.policyTimeout
	}

	var hosts []string
	for _, v := range cfg.Vendors {
		u, _ := url.Parse(v.BaseURL) // validated by LoadFS
		hosts = append(hosts, u.Hostname())
	}
	pki, err := certs.LoadOrCreateDevPKI(filepath.Join(dir, "pki"), cfg.TrustDomain, hosts)
	if err != nil {
		return nil, err
	}
	secretsFile := cfg.ResolvePath(cfg.Secrets.File.Path)
	creds, err := loadOrCreateDevSecrets(ctx, secretsFile, pki)
	if err != nil {
		return nil, err
	}
	p, err := secrets.OpenFile(secretsFile)
	if err != nil {
		return nil, err
	}

	sb, err := startSandboxes(pki, creds, o.airbankLimit, log)
	if err != nil {
		return nil, err
	}
	inbox, err := startInbox(pki, log)
	if err != nil {
		sb.Close()
		return nil, err
	}
	// Point every profile at its sandbox, pinning loopback, which is otherwise
	// refused. The TLS server name stays the vendor's real host, which the
	// sandbox certificate carries, so the upstream check is the one production
	// makes.
	for _, v := range cfg.Vendors {
		s := sb.Server(v.ID)
		if s == nil {
			sb.Close()
			return nil, fmt.Errorf("no sandbox for vendor %s", v.ID)
		}
		u, _ := url.Parse(v.BaseURL)
		v.Upstream.ServerName = u.Hostname()
		v.Upstream.CAFile = pki.Path(certs.DevSandboxRootCert)
		v.Upstream.Pin = []string{"127.0.0.1"} // the sandboxes listen on loopback
		if cb := v.Callback; cb != nil {
			// The sandbox calls back from loopback; the dev inbox stands for the app.
			cb.AllowSources = []string{"127.0.0.1/32"}
			cb.ForwardURL = inbox.url + "/" + v.ID
			cb.ForwardCAFile = pki.Path(certs.DevSandboxRootCert)
		}
		v.BaseURL = s.URL + strings.TrimSuffix(u.Path, "/")
		overrideTimeouts(&v.Timeouts, o.vendorTimeouts)
	}
	if o.otlp != "" {
		cfg.Tracing = configs.Tracing{Endpoint: o.otlp, SampleRatio: 1, ServiceName: "consentgate"}
	}
	gw, err := startGateway(ctx, cfg, p, log)
	if err != nil {
		sb.Close()
		inbox.close()
		return nil, err
	}
	d := &devStack{running: gw, pki: pki, sandboxes: sb, creds: creds, inbox: inbox}
	// The auditor's copy of the checkpoint key, for `consentgate audit verify`.
	if err := os.WriteFile(filepath.Join(dir, "audit.pub"), audit.PublicKeyPEM(gw.audit.PublicKey()), 0o644); err != nil {
		d.close()
		return nil, err
	}
	if err := d.seedConsents(ctx); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// overrideTimeouts sets each timeout of t that o sets.
func overrideTimeouts(t *configs.Timeouts, o configs.Timeouts) {
	for _, p := range []struct{ dst, src *configs.Duration }{
		{&t.Dial, &o.Dial}, {&t.TLSHandshake, &o.TLSHandshake}, {&t.ResponseHeader, &o.ResponseHeader},
		{&t.Request, &o.Request}, {&t.IdleConn, &o.IdleConn},
	} {
		if p.src.Duration > 0 {
			*p.dst = *p.src
		}
	}
}

func (d *devStack) close() {
	d.running.close()
	d.sandboxes.Close()
	d.inbox.close()
}

// devPolicies picks the policy directory: the repository's, so that edits show at
// once, or else a copy of the embedded policies (written once, then the user's).
func devPolicies(flag, dir string) (string, error) {
	if info, err := os.Stat(flag); err == nil && info.IsDir() {
		return filepath.Abs(flag)
	}
	out := filepath.Join(dir, "policies")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if err := os.MkdirAll(out, 0o700); err != nil {
		return "", err
	}
	entries, err := fs.ReadDir(configs.FS, "policies")
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		data, err := fs.ReadFile(configs.FS, "policies/"+e.Name())
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(out, e.Name()), data, 0o600); err != nil {
			return "", err
		}
	}
	return out, nil
}

// devSubject is the dev end user: an opaque id as an app would hold it.
const devSubject = "dev-user-0001"

// seedConsents stores the two dev consents. Their times are fixed per dev folder
// (the internal root's start date), so a restart seeds the same records and a
// consent revoked through the admin API stays revoked.
func (d *devStack) seedConsents(ctx context.Context) error {
	data, err := os.ReadFile(d.pki.Path(certs.DevRootCert))
	if err != nil {
		return err
	}
	root, err := certs.ParseCertificates(data)
	if err != nil {
		return err
	}
	granted := root[0].NotBefore.UTC().Truncate(24 * time.Hour)
	expires := granted.AddDate(1, 11, 0)
	var vendors []string
	for _, v := range d.cfg.Vendors {
		vendors = append(vendors, v.ID)
	}
	categories := slices.DeleteFunc(slices.Clone(configs.Categories), func(c string) bool { return c == "metadata" })
	seeds := []consent.Consent{
		{ID: "dev-kyc", Vendors: vendors, Categories: categories,
			Purposes: []string{"kyc-onboarding", "aml-screening", "account-aggregation", "biometric-verification"}},
		{ID: "dev-age", Vendors: []string{"airbank", "kb"}, Categories: []string{"identity", "national_id"},
			Purposes: []string{"age-verification"}},
	}
	for _, c := range seeds {
		c.App, c.Subject, c.Status = "onboarding-web", d.consents.SubjectHMAC(devSubject), consent.Active
		c.GrantedAt, c.ExpiresAt = granted, expires
		c.Evidence = consent.Evidence{Text: "seeded by consentgate dev", Reference: "dev"}
		if err := d.consents.Put(ctx, c); err != nil {
			return fmt.Errorf("seeding dev consent %s: %w", c.ID, err)
		}
	}
	return nil
}

func startSandboxes(pki *certs.DevPKI, creds sandbox.Credentials, airbankLimit int, log *slog.Logger) (*sandbox.Set, error) {
	server, err := tls.LoadX509KeyPair(pki.Path(certs.DevSandboxCert), certs.KeyFile(pki.Path(certs.DevSandboxCert)))
	if err != nil {
		return nil, fmt.Errorf("sandbox certificate: %w", err)
	}
	ica, err := certs.LoadPool(pki.Path(certs.DevICARootCert))
	if err != nil {
		return nil, err
	}
	bq, err := certs.LoadPool(pki.Path(certs.DevBanqwareCACert))
	if err != nil {
		return nil, err
	}
	// banqware's update callbacks go to consentgate's callbacks listener, whose
	// certificate the internal CA signs.
	internal, err := certs.LoadPool(pki.Path(certs.DevRootCert))
	if err != nil {
		return nil, err
	}
	return sandbox.Start(sandbox.Config{
		Certificate:      server,
		ICARoots:         ica,
		BanqwareRoots:    bq,
		Credentials:      creds,
		AirbankRateLimit: airbankLimit,
		CallbackRoots:    internal,
		Logger:           log.With("component", "sandbox"),
	})
}

// Secret references of the dev store; they match configs/vendors/*.yaml.
var devSecretRefs = []struct {
	ref   string
	value func(sandbox.Credentials) string
}{
	{"vendors/kb#api_key", func(c sandbox.Credentials) string { return c.KBAPIKey }},
	{"vendors/kb#access_token", func(c sandbox.Credentials) string { return c.KBAccessToken }},
	{"vendors/airbank#api_key", func(c sandbox.Credentials) string { return c.AirbankAPIKey }},
	{"vendors/airbank#access_token", func(c sandbox.Credentials) string { return c.AirbankAccessToken }},
	{"vendors/biometric#flow_api_key", func(c sandbox.Credentials) string { return c.BiometricFlowAPIKey }},
	{"vendors/finid#client_id", func(c sandbox.Credentials) string { return c.FinIDClientID }},
	{"vendors/finid#client_secret", func(c sandbox.Credentials) string { return c.FinIDClientSecret }},
}

// devKeyRefs are consentgate's own keys in the dev store; they match dev.yaml.
var devKeyRefs = []string{"consentgate/keys#subject_hmac", "consentgate/keys#field_hmac", "consentgate/keys#audit_signing"}

// newDevKey makes the value of one of consentgate's own keys: an Ed25519 PKCS#8
// PEM key for audit signing, 32 random bytes in hex for the HMAC keys.
func newDevKey(ref secrets.Ref) (string, error) {
	if ref.Key == "audit_signing" {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return "", err
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return "", err
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	return hex.EncodeToString(key), nil
}

// loadOrCreateDevSecrets writes DIR/secrets.yaml on the first run: fresh random
// vendor credentials and the dev vendor client certificates. Later runs read the
// credentials back, so the sandboxes expect what the gateway holds.
func loadOrCreateDevSecrets(ctx context.Context, file string, pki *certs.DevPKI) (sandbox.Credentials, error) {
	if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		creds, err := sandbox.NewCredentials()
		if err != nil {
			return sandbox.Credentials{}, err
		}
		values := map[string]map[string]string{}
		for _, s := range devSecretRefs {
			ref, _ := secrets.ParseRef(s.ref)
			if values[ref.Path] == nil {
				values[ref.Path] = map[string]string{}
			}
			values[ref.Path][ref.Key] = s.value(creds)
		}
		for vendor, cert := range map[string]string{"kb": certs.DevKBSealCert, "banqware": certs.DevBanqwareCert} {
			certPEM, err := os.ReadFile(pki.Path(cert))
			if err != nil {
				return sandbox.Credentials{}, err
			}
			keyPEM, err := os.ReadFile(certs.KeyFile(pki.Path(cert)))
			if err != nil {
				return sandbox.Credentials{}, err
			}
			if values["vendors/"+vendor] == nil {
				values["vendors/"+vendor] = map[string]string{}
			}
			values["vendors/"+vendor]["client_cert"] = string(certPEM)
			values["vendors/"+vendor]["client_key"] = string(keyPEM)
		}
		for _, r := range devKeyRefs {
			ref, _ := secrets.ParseRef(r)
			if values[ref.Path] == nil {
				values[ref.Path] = map[string]string{}
			}
			key, err := newDevKey(ref)
			if err != nil {
				return sandbox.Credentials{}, err
			}
			values[ref.Path][ref.Key] = key
		}
		if err := secrets.WriteFile(file, values); err != nil {
			return sandbox.Credentials{}, err
		}
	}
	store, err := secrets.OpenFile(file)
	if err != nil {
		return sandbox.Credentials{}, err
	}
	var creds sandbox.Credentials
	fields := map[string]*string{
		"vendors/kb#api_key": &creds.KBAPIKey, "vendors/kb#access_token": &creds.KBAccessToken,
		"vendors/airbank#api_key": &creds.AirbankAPIKey, "vendors/airbank#access_token": &creds.AirbankAccessToken,
		"vendors/biometric#flow_api_key": &creds.BiometricFlowAPIKey,
		"vendors/finid#client_id":        &creds.FinIDClientID, "vendors/finid#client_secret": &creds.FinIDClientSecret,
	}
	for ref, dst := range fields {
		r, _ := secrets.ParseRef(ref)
		s, err := store.Get(ctx, r)
		if err != nil {
			return sandbox.Credentials{}, fmt.Errorf("dev secrets: %w (remove %s to regenerate it)", err, file)
		}
		*dst = s.Value
	}
	return creds, nil
}

// printReady prints the ready line, then a curl command per vendor.
func (d *devStack) printReady(w io.Writer) {
	d.running.printReady(w)
	for _, c := range d.curlCommands() {
		fmt.Fprintln(w, c)
	}
}

// devCalls are the example calls printed by `consentgate dev`, one per vendor,
// each under the dev-kyc consent and a purpose it covers.
var devCalls = []struct{ vendor, purpose, method, path, body string }{
	{"kb", "kyc-onboarding", "GET", "/v1/clients/me/identity", ""},
	{"airbank", "kyc-onboarding", "GET", "/openapi/glClientIdentity/v1/personalData", ""},
	{"biometric", "biometric-verification", "POST", "/api/v1/flows/session/create/", `{"metadata":{"edocument":{"iin":{"value":"900315401233","changeable":false}}}}`},
	{"finid", "biometric-verification", "POST", "/api/v1/verifications", `{"iin":"900315401233","phone":"+77011234567","photo":"aGVsbG8gZmFjZQ=="}`},
	{"banqware", "account-aggregation", "POST", "/user-resources/api/user", `{"clientId":"onboarding-example"}`},
}

func (d *devStack) curlCommands() []string {
	app := d.pki.Path(certs.AppCert("onboarding-web"))
	var out []string
	for _, c := range devCalls {
		cmd := fmt.Sprintf("curl -sS --cacert %s --cert %s --key %s",
			shellQuote(d.pki.Path(certs.DevRootCert)), shellQuote(app), shellQuote(certs.KeyFile(app)))
		cmd += " -H 'X-Consent-Id: dev-kyc' -H 'X-Purpose: " + c.purpose + "'"
		if c.method != "GET" {
			cmd += " -X " + c.method
		}
		if c.body != "" {
			cmd += " -H 'Content-Type: application/json' -d '" + c.body + "'"
		}
		out = append(out, cmd+" "+d.gatewayURL()+"/v/"+c.vendor+c.path)
	}
	return out
}

// shellQuote quotes s for a POSIX shell when it holds anything but safe characters.
func shellQuote(s string) string {
	if strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+:=@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
