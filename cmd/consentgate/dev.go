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
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/consentgate/consentgate/internal/freeport"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/ca"
	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/internal/sandbox"
	"github.com/consentgate/consentgate/internal/vaultdev"
	"github.com/consentgate/consentgate/secrets"
)

type devOptions struct {
	dir                     string
	gateway, forward, admin string
	callbacks               string
	policies                string
	// policiesGiven: --policies was set, so a folder that is not there is an
	// error rather than a reason to copy the embedded policies.
	policiesGiven bool
	// ca is where the internal CA serves ACME and the step-ca API.
	ca string
	// airbankLimit overrides the Air Bank sandbox's per-minute limit (tests).
	airbankLimit int
	// policyTimeout overrides the per-decision bound (tests under -race, where
	// evaluation is many times slower than in a real build).
	policyTimeout time.Duration
	// otlp is an OTLP/HTTP collector to send spans to (tracing.endpoint).
	otlp string
	// tokenTTL overrides the lifetime of the Air Bank and KB sandboxes' access
	// tokens (tests that watch a refresh).
	tokenTTL time.Duration
	// vault runs a local dev Vault, seeds it with the dev secrets and reads
	// every secret from it (AppRole), instead of from secrets.yaml.
	vault bool
	// vaultRefresh and vaultMaxStale override the dev Vault provider's refresh
	// interval and max_stale (tests of rotation and outage).
	vaultRefresh, vaultMaxStale time.Duration
	// consents replaces dev.yaml's consent backend (tests of replicas sharing
	// a PostgreSQL registry); its password secret must be in DIR/secrets.yaml.
	consents *configs.Consents
	// vendorTimeouts, where non-zero, replace every vendor profile's timeouts
	// (tests of vendors that hang, which the profiles' 15–30 s would slow down).
	vendorTimeouts configs.Timeouts
	// profiles changes the vendor profiles once they point at the sandboxes,
	// and banqwareSources is the banqware sandbox's address allowlist (tests
	// of egress addresses and proxies, keys in an HSM; 127.0.0.2 is not on
	// every OS's loopback, so dev itself uses no fixed address).
	profiles        func(map[string]*configs.Vendor)
	banqwareSources []netip.Prefix
	// crlRefresh overrides how often the gateway reads the CA's CRL (tests
	// of revocation, which would otherwise wait 30 s).
	crlRefresh time.Duration
}

func newDevCmd(logger func() *slog.Logger) *cobra.Command {
	var o devOptions
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the gateway with local vendor sandboxes, a dev PKI and file secrets",
		Long: `Run the whole system on this machine with no external service. The first run
generates DIR/pki (internal CA root and intermediate, dev vendor PKI) and
DIR/secrets.yaml (mode 0600); later runs reuse them. The internal CA (an
embedded step-ca) serves on --ca: the gateway obtains its serving certificates
from its ACME directory, and the dev app certificates under DIR/pki/apps are
issued by it (again when they near expiry). The five vendor
sandboxes start on loopback and every vendor profile is pointed at its sandbox.
The policy directory is watched: an edit is in service within a second, and a
broken edit keeps the running policy. Two consents are seeded for the dev app,
dev-kyc and dev-age, and authorised at Air Bank and KB through the sandboxes'
OAuth2 logins. It prints a ready line and one curl command per vendor.

With --vault the secrets are not read from DIR/secrets.yaml but from a local
dev Vault: the Vault server is built into .cache/bin/vault if missing (once,
about 11 minutes), started on a free loopback port, given a read-only policy
and an AppRole, and seeded with the dev secrets; consentgate logs in with the
AppRole and reads everything from Vault's KV v2, as in production. The dev
Vault keeps its data in memory and stops with dev.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.policiesGiven = cmd.Flags().Changed("policies")
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
	cmd.Flags().BoolVar(&o.vault, "vault", false, "read the secrets from a local dev Vault (built into .cache/bin/vault if missing) instead of DIR/secrets.yaml")
	cmd.Flags().StringVar(&o.ca, "ca", "127.0.0.1:9444", "internal CA listener address (ACME directory and step-ca API)")
	cmd.Flags().StringVar(&o.policies, "policies", "configs/policies", "policy directory, watched for edits (named on the ready line); a given folder must exist; by default, outside a checkout, the embedded policies are copied to DIR/policies")
	cmd.Flags().DurationVar(&o.policyTimeout, "policy-timeout", 0, "bound on one policy decision (default 50ms); raise it for a race-instrumented or very slow build")
	cmd.Flags().StringVar(&o.otlp, "otlp", "", "send OpenTelemetry spans to this OTLP/HTTP collector, e.g. http://127.0.0.1:4318 (off by default)")
	return cmd
}

// devStack is everything `consentgate dev` runs.
type devStack struct {
	*running
	pki       *certs.DevPKI
	authority *ca.Authority
	ca        *ca.Server
	sandboxes *sandbox.Set
	creds     sandbox.Credentials
	inbox     *inbox
	// vault is the dev Vault with --vault, else nil.
	vault *vaultdev.Server
}

// devAppRenewal is how close to expiry a dev app certificate is issued again.
const devAppRenewal = 7 * 24 * time.Hour

// startDev starts the stack in order, and on any error releases what it had
// started, last first.
func startDev(ctx context.Context, o devOptions, log *slog.Logger) (_ *devStack, err error) {
	cfg, err := devConfig(o, log)
	if err != nil {
		return nil, err
	}
	var hosts []string
	for _, v := range cfg.Vendors {
		u, _ := url.Parse(v.BaseURL) // validated by LoadFS
		hosts = append(hosts, u.Hostname())
	}
	pki, err := certs.LoadOrCreateDevPKI(filepath.Join(cfg.DataDir, "pki"), hosts)
	if err != nil {
		return nil, err
	}
	var release []func()
	defer func() {
		if err != nil {
			for i := len(release) - 1; i >= 0; i-- {
				release[i]()
			}
		}
	}()
	auth, caSrv, err := startDevCA(ctx, o, cfg, pki, log)
	if err != nil {
		return nil, err
	}
	release = append(release, func() { caSrv.Close(); auth.Close() })
	secretsFile := cfg.ResolvePath(cfg.Secrets.File.Path)
	creds, err := loadOrCreateDevSecrets(ctx, secretsFile, pki)
	if err != nil {
		return nil, err
	}
	var vault *vaultdev.Server
	if o.vault {
		if vault, err = startDevVault(ctx, cfg.DataDir, secretsFile, cfg, o); err != nil {
			return nil, err
		}
		release = append(release, vault.Close)
	}
	p, err := openSecrets(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	release = append(release, func() { closeSecrets(p, log) })
	sb, err := startSandboxes(pki, creds, o.airbankLimit, o.tokenTTL, o.banqwareSources, log)
	if err != nil {
		return nil, err
	}
	release = append(release, func() { sb.Close() })
	inbox, err := startInbox(pki, log)
	if err != nil {
		return nil, err
	}
	release = append(release, inbox.close)
	if err := pointAtSandboxes(cfg, sb, inbox, pki, o.vendorTimeouts); err != nil {
		return nil, err
	}
	// The audit log streams to a stand-in SIEM, as a bank's would to its own.
	cfg.Audit.Streams = append(cfg.Audit.Streams, configs.AuditStream{Name: "dev-siem", Type: "http", Format: "jsonl",
		URL: inbox.url + "/siem", CAFile: pki.Path(certs.DevSandboxRootCert)})
	if o.profiles != nil {
		byID := map[string]*configs.Vendor{}
		for _, v := range cfg.Vendors {
			byID[v.ID] = v
		}
		o.profiles(byID)
	}
	gw, err := startGateway(ctx, cfg, p, log)
	if err != nil {
		return nil, err
	}
	d := &devStack{running: gw, pki: pki, authority: auth, ca: caSrv, sandboxes: sb, creds: creds, inbox: inbox, vault: vault}
	release = []func(){d.close} // the stack now holds everything, the secrets too
	if err := d.prepare(ctx, cfg); err != nil {
		return nil, err
	}
	return d, nil
}

// devConfig is dev.yaml with the flags applied, checked before anything slow
// (the PKI, the CA, a Vault build): a taken port would otherwise end a long
// start.
func devConfig(o devOptions, log *slog.Logger) (*configs.Config, error) {
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return nil, err
	}
	if err := checkDevAddresses(o); err != nil {
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
	if cfg.Policy.Dir, err = devPolicies(o.policies, o.policiesGiven, dir); err != nil {
		return nil, err
	}
	if abs, _ := filepath.Abs(o.policies); abs != cfg.Policy.Dir {
		log.Warn("no policy folder here: watching a copy of the shipped policies instead; edit that copy", "missing", o.policies, "watched", cfg.Policy.Dir)
	}
	if o.policyTimeout > 0 {
		cfg.Policy.Timeout.Duration = o.policyTimeout
	}
	if o.consents != nil {
		cfg.Consents = *o.consents
	}
	if o.otlp != "" {
		cfg.Tracing = configs.Tracing{Endpoint: o.otlp, SampleRatio: 1, ServiceName: "consentgate"}
	}
	return cfg, nil
}

// pointAtSandboxes points every profile at its sandbox, pinning loopback,
// which is otherwise refused. The TLS server name stays the vendor's real
// host, which the sandbox certificate carries, so the upstream check is the
// one production makes.
func pointAtSandboxes(cfg *configs.Config, sb *sandbox.Set, inbox *inbox, pki *certs.DevPKI, timeouts configs.Timeouts) error {
	for _, v := range cfg.Vendors {
		s := sb.Server(v.ID)
		if s == nil {
			return fmt.Errorf("no sandbox for vendor %s", v.ID)
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
		// The end user's browser logs in at the sandbox too.
		if ac := v.AuthorizationCode(); ac != nil {
			login, _ := url.Parse(ac.AuthorizeURL)
			ac.AuthorizeURL = s.URL + login.Path
			if login.RawQuery != "" {
				ac.AuthorizeURL += "?" + login.RawQuery
			}
		}
		overrideTimeouts(&v.Timeouts, timeouts)
	}
	return nil
}

// prepare tells the gateway and the sandboxes where the callbacks listener is,
// writes the auditor's key, seeds the dev consents and starts answering.
func (d *devStack) prepare(ctx context.Context, cfg *configs.Config) error {
	gw := d.running
	// End users' browsers come back to the callbacks listener, on the port it
	// bound; the sandboxes know the callbacks as the vendors' portals would.
	if err := gw.gw.SetCallbacksPublicURL(gw.callbacksURL()); err != nil {
		return err
	}
	if b := gw.gw.Broker(); b != nil {
		if err := b.SetPublicURL(gw.callbacksURL()); err != nil {
			return err
		}
		for _, v := range cfg.Vendors {
			if v.AuthorizationCode() != nil {
				if err := d.sandboxes.RegisterRedirectURI(v.ID, b.RedirectURL(v.ID)); err != nil {
					return err
				}
			}
		}
	}
	// The auditor's copy of the checkpoint key, for `consentgate audit verify`.
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "audit.pub"), audit.PublicKeyPEM(gw.audit.PublicKey()), 0o644); err != nil {
		return err
	}
	if err := d.seedConsents(ctx); err != nil {
		return err
	}
	// The sandboxes are new on every run, so tokens from an earlier one mean
	// nothing to them: the seeded consents are authorised again, through the
	// same routes an app and a browser use.
	if err := gw.start(ctx); err != nil {
		return err
	}
	if err := d.authorizeSeeds(ctx); err != nil {
		d.log.Error("dev: the seeded consents could not be authorised at the banks; their calls will answer 424", "error", err.Error())
	}
	return nil
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
	d.vault.Close()
	if err := d.ca.Close(); err != nil {
		d.log.Error("stopping the internal CA", "error", err)
	}
	if err := d.authority.Close(); err != nil {
		d.log.Error("closing the internal CA", "error", err)
	}
}

// startDevVault builds (once) and starts the dev Vault, provisions consentgate's
// policy and AppRole, seeds it with the dev secrets, and points cfg at it.
func startDevVault(ctx context.Context, dir, secretsFile string, cfg *configs.Config, o devOptions) (*vaultdev.Server, error) {
	bin, err := vaultdev.Build(ctx, os.Stderr)
	if err != nil {
		return nil, err
	}
	vdir := filepath.Join(dir, "vault")
	if err := os.MkdirAll(vdir, 0o700); err != nil {
		return nil, err
	}
	values, err := secrets.ReadFile(secretsFile)
	if err != nil {
		return nil, err
	}
	srv, err := vaultdev.Start(ctx, vaultdev.Options{Bin: bin, LogFile: filepath.Join(vdir, "vault.log")})
	if err != nil {
		return nil, err
	}
	roleID, secretID, err := srv.Provision(ctx, vdir, values, vaultdev.RoleOptions{TokenTTL: time.Hour, TokenMaxTTL: 24 * time.Hour})
	if err != nil {
		srv.Close()
		return nil, err
	}
	// For the developer's own `vault kv put` (rotation by hand); never printed.
	if err := os.WriteFile(filepath.Join(vdir, "root-token"), []byte(srv.RootToken+"\n"), 0o600); err != nil {
		srv.Close()
		return nil, err
	}
	vc := configs.Vault{Address: srv.Addr, Mount: configs.DefaultKVMount, Auth: "approle", RoleIDFile: roleID, SecretIDFile: secretID}
	vc.RefreshInterval.Duration, vc.MaxStale.Duration = 5*time.Second, configs.DefaultVaultMaxStale
	if o.vaultRefresh > 0 {
		vc.RefreshInterval.Duration = o.vaultRefresh
	}
	if o.vaultMaxStale > 0 {
		vc.MaxStale.Duration = o.vaultMaxStale
	}
	cfg.Secrets = configs.Secrets{Provider: "vault", Vault: vc}
	return srv, nil
}

// startDevCA runs the internal CA on the dev PKI's root and intermediate:
// it issues the dev app certificates and serves ACME, validating challenges on
// loopback, and the gateway configuration is pointed at it.
func startDevCA(ctx context.Context, o devOptions, cfg *configs.Config, pki *certs.DevPKI, log *slog.Logger) (*ca.Authority, *ca.Server, error) {
	auth, err := ca.Open(ca.Options{Dir: pki.Dir, Name: "consentgate dev (untrusted)", TrustDomain: cfg.TrustDomain,
		Address: o.ca, DNSNames: []string{"localhost", "127.0.0.1"}, Logger: log.With("component", "ca")})
	if err != nil {
		return nil, nil, err
	}
	for _, a := range certs.DevApps {
		if _, err := auth.EnsureApp(ctx, pki.Path(certs.AppCert(a.Name)), a.Role, a.Name, ca.MaxAppValidity, devAppRenewal); err != nil {
			auth.Close()
			return nil, nil, err
		}
	}
	// The challenge solver listens on a loopback port chosen now; the CA
	// validates there whatever name the gateway asks for.
	port, err := freeport.Loopback()
	if err != nil {
		auth.Close()
		return nil, nil, err
	}
	srv, err := auth.StartServer(o.ca, ca.Validation{Host: "127.0.0.1", HTTPPort: port})
	if err != nil {
		auth.Close()
		return nil, nil, err
	}
	cfg.TLS.ACME.Directory = srv.Directory()
	// App certificates the CA revokes (`consentgate ca revoke`) are refused
	// once the gateway has read its CRL again.
	cfg.TLS.ClientCRL = &configs.ClientCRL{URL: srv.URL() + ca.CRLPath, CAFile: cfg.TLS.ClientCAFile, IssuerFile: pki.Path(certs.DevIntermediateCert),
		Refresh: configs.Duration{Duration: o.crlRefresh}}
	if cfg.TLS.ClientCRL.Refresh.Duration == 0 {
		cfg.TLS.ClientCRL.Refresh.Duration = configs.DefaultCRLRefresh
	}
	cfg.TLS.ACME.ChallengeListen = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	log.Info("internal CA serving", "url", srv.URL(), "acme_directory", srv.Directory(), "root", auth.RootFile(),
		"fingerprint", auth.Fingerprint(), "app_provisioner", ca.AppProvisioner)
	return auth, srv, nil
}

// checkDevAddresses binds and releases every listener address dev will use,
// naming each that is taken and the flag that moves it.
func checkDevAddresses(o devOptions) error {
	var taken []string
	for _, l := range []struct{ flag, addr string }{
		{"gateway", o.gateway}, {"forward", o.forward}, {"admin", o.admin}, {"callbacks", o.callbacks}, {"ca", o.ca},
	} {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			taken = append(taken, fmt.Sprintf("--%s %s: %v", l.flag, l.addr, err))
			continue
		}
		ln.Close()
	}
	if len(taken) > 0 {
		return fmt.Errorf("cannot listen on every address; stop what holds them or choose others with the flags named:\n  %s", strings.Join(taken, "\n  "))
	}
	return nil
}

// devPolicies picks the policy directory: the repository's, so that edits show at
// once, or else a copy of the embedded policies (written once, then the user's).
// A folder the user named must be there.
func devPolicies(flag string, given bool, dir string) (string, error) {
	if info, err := os.Stat(flag); err == nil && info.IsDir() {
		return filepath.Abs(flag)
	} else if given {
		return "", fmt.Errorf("--policies %s: not a policy folder (%v); leave the flag out to use a copy of the shipped policies in the dev folder", flag, err)
	}
	out := filepath.Join(dir, "policies")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if err := configs.WritePolicies(out); err != nil {
		return "", err
	}
	return out, nil
}

// devSubject is the dev end user: an opaque id as an app would hold it; devApp
// the app that holds the seeded consents devConsents.
const (
	devSubject = "dev-user-0001"
	devApp     = "onboarding-web"
)

var devConsents = []string{"dev-kyc", "dev-age"}

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
			Purposes: []string{"kyc-onboarding", "identity-confirmation", "aml-screening", "account-aggregation", "biometric-verification"}},
		{ID: "dev-age", Vendors: []string{"airbank", "kb"}, Categories: []string{"identity", "national_id"},
			Purposes: []string{"age-verification"}},
	}
	for _, c := range seeds {
		c.App, c.Subject, c.Status = devApp, d.consents.SubjectHMAC(devSubject), consent.Active
		c.GrantedAt, c.ExpiresAt = granted, expires
		c.Evidence = consent.Evidence{Text: "seeded by consentgate dev", Reference: "dev"}
		if err := d.consents.Put(ctx, c); err != nil {
			return fmt.Errorf("seeding dev consent %s: %w", c.ID, err)
		}
	}
	return nil
}

func startSandboxes(pki *certs.DevPKI, creds sandbox.Credentials, airbankLimit int, tokenTTL time.Duration, banqwareSources []netip.Prefix, log *slog.Logger) (*sandbox.Set, error) {
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
		BanqwareSources:  banqwareSources,
		Credentials:      creds,
		AirbankRateLimit: airbankLimit,
		AirbankTokenTTL:  tokenTTL,
		KBTokenTTL:       tokenTTL,
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
	{"vendors/kb#client_id", func(c sandbox.Credentials) string { return c.KBClientID }},
	{"vendors/kb#client_secret", func(c sandbox.Credentials) string { return c.KBClientSecret }},
	{"vendors/airbank#api_key", func(c sandbox.Credentials) string { return c.AirbankAPIKey }},
	{"vendors/airbank#client_id", func(c sandbox.Credentials) string { return c.AirbankClientID }},
	{"vendors/airbank#client_secret", func(c sandbox.Credentials) string { return c.AirbankClientSecret }},
	{"vendors/biometric#flow_api_key", func(c sandbox.Credentials) string { return c.BiometricFlowAPIKey }},
	{"vendors/finid#client_id", func(c sandbox.Credentials) string { return c.FinIDClientID }},
	{"vendors/finid#client_secret", func(c sandbox.Credentials) string { return c.FinIDClientSecret }},
}

// devKeyRefs are consentgate's own keys in the dev store; they match dev.yaml.
var devKeyRefs = []string{"consentgate/keys#subject_hmac", "consentgate/keys#field_hmac", "consentgate/keys#audit_signing",
	"consentgate/keys#token_seal", "consentgate/keys#token_vault"}

// newDevKey makes the value of one of consentgate's own keys: an Ed25519 PKCS#8
// PEM key for audit signing, 32 random bytes in hex for the HMAC keys, the
// token seal key and the token vault's key.
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
// vendor credentials, the dev vendor client certificates and consentgate's own
// keys. Later runs read the credentials back, so the sandboxes expect what the
// gateway holds; a value a newer version needs and an older file lacks is added.
func loadOrCreateDevSecrets(ctx context.Context, file string, pki *certs.DevPKI) (sandbox.Credentials, error) {
	values := map[string]map[string]string{}
	if raw, err := os.ReadFile(file); err == nil {
		if err := yaml.Unmarshal(raw, &values); err != nil {
			return sandbox.Credentials{}, fmt.Errorf("dev secrets %s: %w (remove it to regenerate it)", file, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return sandbox.Credentials{}, fmt.Errorf("dev secrets: %w", err)
	}
	added, err := addDevSecrets(values, pki)
	if err != nil {
		return sandbox.Credentials{}, err
	}
	if added {
		if err := secrets.WriteFile(file, values); err != nil {
			return sandbox.Credentials{}, err
		}
	}
	return readDevCredentials(ctx, file)
}

// addDevSecrets fills in every dev secret values lacks: the sandboxes'
// credentials, the dev vendor client certificates, consentgate's own keys.
// What is there already stays, so the sandboxes accept it again.
func addDevSecrets(values map[string]map[string]string, pki *certs.DevPKI) (added bool, err error) {
	fresh, err := sandbox.NewCredentials()
	if err != nil {
		return false, err
	}
	set := func(r string, value func() (string, error)) error {
		ref, _ := secrets.ParseRef(r)
		if _, ok := values[ref.Path][ref.Key]; ok {
			return nil
		}
		v, err := value()
		if err != nil {
			return err
		}
		if values[ref.Path] == nil {
			values[ref.Path] = map[string]string{}
		}
		values[ref.Path][ref.Key], added = v, true
		return nil
	}
	for _, s := range devSecretRefs {
		if err := set(s.ref, func() (string, error) { return s.value(fresh), nil }); err != nil {
			return false, err
		}
	}
	for vendor, cert := range map[string]string{"kb": certs.DevKBCert, "banqware": certs.DevBanqwareCert} {
		for key, path := range map[string]string{"client_cert": pki.Path(cert), "client_key": certs.KeyFile(pki.Path(cert))} {
			if err := set("vendors/"+vendor+"#"+key, func() (string, error) {
				data, err := os.ReadFile(path)
				return string(data), err
			}); err != nil {
				return false, err
			}
		}
	}
	// The callback token consentgate writes into the callback URLs it
	// registers with the hub is a key like the others: the sandbox needs
	// nothing of it, it calls back the URLs it was given.
	for _, r := range append(slices.Clone(devKeyRefs), "vendors/banqware#callback_token") {
		ref, _ := secrets.ParseRef(r)
		if err := set(r, func() (string, error) { return newDevKey(ref) }); err != nil {
			return false, err
		}
	}
	return added, nil
}

// readDevCredentials reads back, through the file store, what the sandboxes
// must accept.
func readDevCredentials(ctx context.Context, file string) (sandbox.Credentials, error) {
	store, err := secrets.OpenFile(file)
	if err != nil {
		return sandbox.Credentials{}, err
	}
	var creds sandbox.Credentials
	fields := map[string]*string{
		"vendors/kb#api_key": &creds.KBAPIKey, "vendors/kb#client_id": &creds.KBClientID, "vendors/kb#client_secret": &creds.KBClientSecret,
		"vendors/airbank#api_key": &creds.AirbankAPIKey, "vendors/airbank#client_id": &creds.AirbankClientID,
		"vendors/airbank#client_secret":  &creds.AirbankClientSecret,
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

// printReady prints the ready line (every listener, the internal CA and the
// policy folder watched), then a curl command per vendor, and one that opens
// the web console as the dev auditor (a browser holding that certificate opens
// it too: docs/console.md).
func (d *devStack) printReady(w io.Writer) {
	fmt.Fprintf(w, "%s ca=%s policies=%s\n", d.running.readyLine(), d.ca.URL(), d.cfg.Policy.Dir)
	if d.vault != nil {
		fmt.Fprintf(w, "vault=%s secrets in KV v2 secret/vendors/* and secret/consentgate/keys (root token in %s)\n",
			d.vault.Addr, filepath.Join(d.cfg.DataDir, "vault", "root-token"))
	}
	for _, c := range d.curlCommands() {
		fmt.Fprintln(w, c)
	}
	auditor := d.pki.Path(certs.AppCert("auditor"))
	fmt.Fprintf(w, "curl -sS --cacert %s --cert %s --key %s %s/console/\n",
		shellQuote(d.pki.Path(certs.DevRootCert)), shellQuote(auditor), shellQuote(certs.KeyFile(auditor)), d.running.adminURL())
}

// devCalls are the example calls printed by `consentgate dev`, one per vendor,
// each under the dev-kyc consent and a purpose it covers.
// once is a value in body the vendor accepts once; the printed command gives
// it a suffix per run, so that pasting it twice works.
var devCalls = []struct{ vendor, purpose, method, path, body, once string }{
	{"kb", "kyc-onboarding", "GET", "/v1/clients/me/identity", "", ""},
	{"airbank", "kyc-onboarding", "GET", "/openapi/glClientIdentity/v1/personalData", "", ""},
	{"biometric", "biometric-verification", "POST", "/api/v1/flows/session/create/", `{"metadata":{"edocument":{"iin":{"value":"900315401233","changeable":false}}}}`, ""},
	{"finid", "biometric-verification", "POST", "/api/v1/verifications", `{"iin":"900315401233","phone":"+77011234567","photo":"aGVsbG8gZmFjZQ=="}`, ""},
	// banqware answers 409 to a clientId it has seen.
	{"banqware", "account-aggregation", "POST", "/user-resources/api/user", `{"clientId":"onboarding-example"}`, "onboarding-example"},
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
		if body := c.body; body != "" {
			if c.once != "" {
				// Out of the single quotes for the shell to fill in: seconds and its pid.
				body = strings.Replace(body, c.once, c.once+`-'"$(date +%s)-$$"'`, 1)
			}
			cmd += " -H 'Content-Type: application/json' -d '" + body + "'"
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
