package main

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/consentgate/consentgate/admin"
	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/audit/archive"
	"github.com/consentgate/consentgate/audit/stream"
	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/policy"
	"github.com/consentgate/consentgate/proxy"
	"github.com/consentgate/consentgate/secrets"
	"github.com/consentgate/consentgate/telemetry"
	"github.com/consentgate/consentgate/tokens"
)

func newServeCmd(logger func() *slog.Logger) *cobra.Command {
	var file, node string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway from a configuration file",
		Long: `Run the gateway, forward and admin listeners from a configuration file.
The configuration, every vendor profile, the policy, the consent registry, the
vendor client certificates and the inbound TLS are loaded and checked before
anything listens. The policy directory and the vendor profiles (and the file
listing them) are watched and reloaded on change: a profile that fails is
refused with its file and line while the ones in service keep serving, and
calls in flight finish under the profile they started with. SIGHUP reloads
the policy, the serving certificate files, the secrets (the file store, or
every Vault secret), the vendor profiles and the vendor client certificates;
SIGINT/SIGTERM drain and stop.

The node (in every log line and audit record) is --node, else $CONSENTGATE_NODE,
else the file's node: so that replicas sharing one file each get their own.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(file, node)
			if err != nil {
				return err
			}
			if err := cfg.CheckFiles(); err != nil {
				return err
			}
			p, err := openSecrets(cmd.Context(), cfg, logger())
			if err != nil {
				return err
			}
			gw, err := startGateway(cmd.Context(), cfg, p, logger())
			if err != nil {
				closeSecrets(p, logger())
				return err
			}
			defer gw.close()
			gw.profiles = newProfiles(file, node, gw, gw.reg)
			gw.printReady(cmd.OutOrStdout())
			return gw.serve(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&file, "config", "configs/consentgate.yaml", "configuration file")
	cmd.Flags().StringVar(&node, "node", "", "this replica's node name (default $"+configs.NodeEnv+", else the file's node:)")
	return cmd
}

func openSecrets(ctx context.Context, cfg *configs.Config, log *slog.Logger) (secrets.Provider, error) {
	switch cfg.Secrets.Provider {
	case "file":
		return secrets.OpenFile(cfg.ResolvePath(cfg.Secrets.File.Path))
	case "vault":
		vc := cfg.Secrets.Vault
		var auth secrets.VaultAuth
		switch vc.Auth {
		case "token":
			auth = secrets.TokenAuth{File: cfg.ResolvePath(vc.TokenFile)}
		case "approle":
			auth = secrets.AppRoleAuth{Mount: vc.AuthMount, RoleIDFile: cfg.ResolvePath(vc.RoleIDFile), SecretIDFile: cfg.ResolvePath(vc.SecretIDFile)}
		case "kubernetes":
			auth = secrets.KubernetesAuth{Mount: vc.AuthMount, Role: vc.Role, JWTFile: cfg.ResolvePath(vc.KubernetesTokenFile)}
		default:
			return nil, fmt.Errorf("unknown vault auth method %q", vc.Auth)
		}
		v, err := secrets.OpenVault(ctx, secrets.VaultOptions{Address: vc.Address, CAFile: cfg.ResolvePath(vc.CAFile), Mount: vc.Mount,
			Auth: auth, Refresh: vc.RefreshInterval.Duration, MaxStale: vc.MaxStale.Duration, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("secrets provider vault: %w", err)
		}
		return v, nil
	default:
		return nil, fmt.Errorf("unknown secrets provider %q", cfg.Secrets.Provider)
	}
}

// closeSecrets stops a provider that runs in the background (Vault: refresh,
// token renewal; its token is revoked).
func closeSecrets(p secrets.Provider, log *slog.Logger) {
	if c, ok := p.(interface{ Close() error }); ok {
		if err := c.Close(); err != nil {
			log.Warn("closing the secret provider", "error", err.Error())
		}
	}
}

// registerSecretMetrics exposes the age of a caching provider's oldest value,
// and returns its readiness check: not ready once a value is older than the
// provider may serve (calls needing it get 503 until Vault is back).
func registerSecretMetrics(reg prometheus.Registerer, p secrets.Provider) []admin.ReadyCheck {
	c, ok := p.(secrets.Cached)
	if !ok {
		return nil
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "consentgate_secret_cache_age_seconds",
		Help: "Seconds since the secret provider (Vault) last confirmed the oldest cached secret."},
		func() float64 { return c.CacheAge().Seconds() }))
	return []admin.ReadyCheck{{Name: "secrets", Check: c.Fresh}}
}

// running is a gateway bound to its ports.
type running struct {
	cfg      *configs.Config
	secrets  secrets.Provider
	audit    *audit.Log
	engine   *policy.Engine
	consents *consent.Registry
	gw       *proxy.Gateway
	in       *proxy.InboundTLS
	serving  *certs.Serving // nil when the serving certificate is a file
	srv      *proxy.Server
	log      *slog.Logger
	tracer   *sdktrace.TracerProvider // nil: tracing off
	started  sync.Once
	reg      *prometheus.Registry
	// profiles reloads the vendor profiles from the configuration file; nil
	// for dev, whose profiles are built in.
	profiles *profiles
	// streams deliver the audit log to SIEMs while the gateway serves.
	streams []*stream.Stream
	// retention moves sealed audit segments to the archive; nil: none.
	retention *archive.Retention
}

func startGateway(ctx context.Context, cfg *configs.Config, p secrets.Provider, log *slog.Logger) (_ *running, err error) {
	// What is opened is released, last first, on every error path below.
	var release []func()
	defer func() {
		if err != nil {
			for i := len(release) - 1; i >= 0; i-- {
				release[i]()
			}
		}
	}()
	// The serving certificate first: without it nothing can listen, and with
	// ACME it may take the CA a moment.
	var serving *certs.Serving
	if cfg.TLS.ACME != nil {
		if serving, err = obtainServing(ctx, cfg, log); err != nil {
			return nil, err
		}
		release = append(release, func() { serving.Close() })
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	alog, err := openAudit(ctx, cfg, p, log)
	if err != nil {
		return nil, err
	}
	release = append(release, func() { alog.Close() })
	registerAuditMetrics(reg, alog)
	streams, err := openStreams(ctx, cfg, p, alog, log)
	if err != nil {
		return nil, err
	}
	if len(streams) > 0 {
		reg.MustRegister(stream.Collector(streams))
	}
	retention, err := openRetention(ctx, cfg, p, alog, streams, log)
	if err != nil {
		return nil, err
	}
	registerRetentionMetrics(reg, retention)
	ready := registerSecretMetrics(reg, p)
	engine, err := openPolicy(ctx, cfg, log, alog, reg)
	if err != nil {
		return nil, err
	}
	consents, err := openConsents(ctx, cfg, p, engine.Purposes(), alog, log)
	if err != nil {
		return nil, err
	}
	release = append(release, func() { consents.Close() })
	// A purpose a policy reload adds is one new consents may name at once.
	engine.OnServe(func() {
		if err := consents.SetPurposes(engine.Purposes()); err != nil {
			log.Error("the policy in service defines no purpose; consents keep the previous list", "error", err.Error())
		}
	})
	tp, err := telemetry.NewTracerProvider(ctx, cfg)
	if err != nil {
		return nil, err
	}
	vault, err := openTokenVault(ctx, cfg, p, consents, log)
	if err != nil {
		return nil, err
	}
	opts := proxy.Options{Config: cfg, Secrets: p, Policy: engine, Consents: consents, Grants: consents,
		Audit: alog, Tokens: vault, Logger: log, Registerer: reg}
	if tp != nil {
		release = append(release, func() { tp.Shutdown(context.WithoutCancel(ctx)) })
		opts.Tracer = tp
		log.Info("tracing on", "endpoint", cfg.Tracing.Endpoint, "sample_ratio", cfg.Tracing.SampleRatio)
	}
	gw, err := proxy.New(ctx, opts)
	if err != nil {
		return nil, err
	}
	var oauthStart http.HandlerFunc
	if b := gw.Broker(); b != nil {
		oauthStart = b.Start
	}
	in, err := inboundTLS(cfg, serving)
	if err != nil {
		return nil, err
	}
	ready = append(append(ready, gw.ReadyChecks()...), in.ReadyChecks()...)
	in.RegisterMetrics(reg)
	inUse := func(ctx context.Context) []certs.InUse {
		out := in.Certificates()
		if f := cfg.TLS.ForwardCACertFile; f != "" {
			if data, err := os.ReadFile(cfg.ResolvePath(f)); err == nil {
				if chain, err := certs.ParseCertificates(data); err == nil {
					u := certs.Describe("forward-ca", chain[0], time.Now())
					u.Key = "file:" + cfg.ResolvePath(cfg.TLS.ForwardCAKeyFile)
					out = append(out, u)
				}
			}
		}
		return append(out, gw.Certificates(ctx)...)
	}
	adminAPI := admin.New(admin.Options{Consents: consents, Policy: engine, Audit: alog, Logger: log,
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), OAuthStart: oauthStart, ImportResource: gw.ImportResource,
		SubjectHMAC: gw.SubjectHMAC, Certificates: inUse, Tokens: vault, Ready: ready,
		Console: newConsole(alog, consents, engine, gw, p, reg, inUse, retention, log)})
	srv, err := listen(cfg, in, gw, adminAPI, log)
	if err != nil {
		return nil, err
	}
	return &running{cfg: cfg, secrets: p, audit: alog, engine: engine, consents: consents, gw: gw, in: in, serving: serving, srv: srv, log: log, tracer: tp,
		reg: reg, streams: streams, retention: retention}, nil
}

// inboundTLS is what every listener speaks: the serving certificate (ACME's
// or the files') and the check of app certificates.
func inboundTLS(cfg *configs.Config, serving *certs.Serving) (*proxy.InboundTLS, error) {
	if serving != nil {
		return proxy.NewInboundTLSFrom(cfg, serving.GetCertificate)
	}
	return proxy.NewInboundTLS(cfg)
}

// listen binds the listeners: the gateway, the forward proxy (when its CA is
// configured), the admin API and the callbacks.
func listen(cfg *configs.Config, in *proxy.InboundTLS, gw *proxy.Gateway, adminAPI http.Handler, log *slog.Logger) (*proxy.Server, error) {
	forward, err := forwardProxy(cfg, gw)
	if err != nil {
		return nil, err
	}
	var callbacks http.Handler
	if cfg.Listen.Callbacks != "" {
		if callbacks, err = proxy.NewCallbacks(gw); err != nil {
			return nil, err
		}
	}
	return proxy.Listen(cfg, in, gw, forward, adminAPI, callbacks, log)
}

// forwardProxy is the forward proxy with its interception CA, or nil when
// none is configured (the listener then answers 501).
func forwardProxy(cfg *configs.Config, gw *proxy.Gateway) (http.Handler, error) {
	if cfg.TLS.ForwardCACertFile == "" {
		return nil, nil
	}
	certPEM, err := os.ReadFile(cfg.ResolvePath(cfg.TLS.ForwardCACertFile))
	if err != nil {
		return nil, fmt.Errorf("tls.forward_ca_cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(cfg.ResolvePath(cfg.TLS.ForwardCAKeyFile))
	if err != nil {
		return nil, fmt.Errorf("tls.forward_ca_key_file: %w", err)
	}
	ca, err := certs.ParseCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("forward proxy CA: %w", err)
	}
	if err := certs.CheckInterceptionCA(ca.Cert); err != nil {
		return nil, fmt.Errorf("tls.forward_ca_cert_file %s: %w", cfg.TLS.ForwardCACertFile, err)
	}
	return proxy.NewForward(gw, ca), nil
}

// obtainServing gets the serving certificates over ACME (tls.acme), from
// storage when a previous run left them there.
func obtainServing(ctx context.Context, cfg *configs.Config, log *slog.Logger) (*certs.Serving, error) {
	a := cfg.TLS.ACME
	roots, err := certs.LoadPool(cfg.ResolvePath(a.CARootFile))
	if err != nil {
		return nil, fmt.Errorf("%s: tls.acme.ca_root_file: %w", cfg.File, err)
	}
	obtainCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return certs.ObtainServing(obtainCtx, certs.ACMEOptions{Directory: a.Directory, Roots: roots, Names: a.Names, Email: a.Email,
		Storage: cfg.ResolvePath(a.Storage), Challenge: a.Challenge, ChallengeListen: a.ChallengeListen, Logger: log})
}

func openAudit(ctx context.Context, cfg *configs.Config, p secrets.Provider, log *slog.Logger) (*audit.Log, error) {
	key, err := auditSigningKey(ctx, cfg, p)
	if err != nil {
		return nil, err
	}
	a := cfg.Audit
	l, err := audit.Open(cfg.ResolvePath(a.Path), audit.Options{Node: cfg.Node, Mode: a.Mode, BatchSize: a.BatchSize,
		MaxDelay: a.MaxDelay.Duration, CheckpointEvery: a.CheckpointEvery, CheckpointInterval: a.CheckpointInterval.Duration,
		ReserveBytes: a.ReserveBytes, SigningKey: key, Logger: log,
		SegmentBytes: max(a.Segment.MaxBytes, 0), SegmentAge: max(a.Segment.MaxAge.Duration, 0),
		LinkRetention: a.LinkRetention.Duration})
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	if a.Mode == "async" {
		log.Warn("audit mode async: records are not durable before calls proceed; not compliance-grade")
	}
	return l, nil
}

// registerAuditMetrics exposes the audit log's counters: records and commits
// (their ratio is the group-commit batch size), checkpoints, checkpoints the key
// could not sign, failed writes, and whether the log is writable.
func registerAuditMetrics(reg prometheus.Registerer, l *audit.Log) {
	counter := func(name, help string, f func(audit.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f(l.Stats())) })
	}
	reg.MustRegister(
		counter("consentgate_audit_records_total", "Audit records committed.", func(s audit.Stats) uint64 { return s.Records }),
		counter("consentgate_audit_commits_total", "Audit group commits (one fsync each).", func(s audit.Stats) uint64 { return s.Batches }),
		counter("consentgate_audit_checkpoints_total", "Signed audit checkpoints written.", func(s audit.Stats) uint64 { return s.Checkpoints }),
		counter("consentgate_audit_failed_total", "Audit records that could not be written.", func(s audit.Stats) uint64 { return s.Failed }),
		counter("consentgate_audit_unsigned_checkpoints_total", "Audit checkpoints not written because the signing key (an HSM) failed.",
			func(s audit.Stats) uint64 { return s.Unsigned }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "consentgate_audit_writable", Help: "1 while the audit log can be written."},
			func() float64 {
				if l.Healthy() != nil {
					return 0
				}
				return 1
			}),
	)
}

// systemRecord records a fact about the gateway itself (start, stop).
func systemRecord(ctx context.Context, l *audit.Log, detail map[string]string) error {
	_, err := l.Append(ctx, audit.Record{Kind: audit.KindSystem, Detail: detail})
	return err
}

func openPolicy(ctx context.Context, cfg *configs.Config, log *slog.Logger, alog *audit.Log, reg prometheus.Registerer) (*policy.Engine, error) {
	src := policy.Source{KeyAlgorithm: cfg.Policy.BundleKeyAlgorithm}
	switch {
	case cfg.Policy.Dir != "":
		src.Dir = cfg.ResolvePath(cfg.Policy.Dir)
	case strings.Contains(cfg.Policy.Bundle, "://"):
		src.Bundle = cfg.Policy.Bundle
	default:
		src.Bundle = cfg.ResolvePath(cfg.Policy.Bundle)
	}
	if cfg.Policy.BundleKeyFile != "" {
		key, err := os.ReadFile(cfg.ResolvePath(cfg.Policy.BundleKeyFile))
		if err != nil {
			return nil, fmt.Errorf("policy.bundle_key_file: %w", err)
		}
		src.VerificationKey = string(key)
	}
	// Every revision put into service, and every reload refused, is recorded.
	onRevision := func(rev string, rerr error) {
		d := map[string]string{"event": "revision", "revision": rev}
		if rerr != nil {
			d = map[string]string{"event": "reload failed", "revision_kept": rev, "error": rerr.Error()}
		}
		if _, err := alog.Append(context.Background(), audit.Record{Kind: audit.KindPolicy, PolicyRevision: rev, Detail: d}); err != nil {
			log.Error("AUDIT LOG UNWRITABLE: policy change not recorded", "revision", rev, "error", err.Error())
		}
	}
	engine, err := policy.New(ctx, policy.Options{Source: src, Timeout: cfg.Policy.Timeout.Duration,
		MaxConcurrent: cfg.Policy.MaxConcurrent, QueueWait: cfg.Policy.QueueWait.Duration, Logger: log, OnRevision: onRevision, Registerer: reg,
		Contract: policyContract(cfg)})
	if err != nil {
		return nil, fmt.Errorf("loading policy: %w", err)
	}
	return engine, nil
}

func openConsents(ctx context.Context, cfg *configs.Config, p secrets.Provider, purposes []string, alog *audit.Log, log *slog.Logger) (*consent.Registry, error) {
	key, err := readKey(ctx, p, "keys.subject_hmac", cfg.Keys.SubjectHMAC)
	if err != nil {
		return nil, err
	}
	var vendors []string
	for _, v := range cfg.Vendors {
		vendors = append(vendors, v.ID)
	}
	categories := slices.DeleteFunc(slices.Clone(configs.Categories), func(c string) bool { return c == "metadata" })
	o := consent.Options{
		SubjectKey: []byte(key), Vendors: vendors, Purposes: purposes, Categories: categories, Logger: log,
		Erasure: proxy.ErasurePlan(cfg),
		// A consent change the audit log cannot record does not happen.
		Hook: func(ctx context.Context, ch consent.Change) error {
			c := ch.Consent
			d := map[string]string{"change": ch.Kind, "actor": ch.Actor, "role": ch.Role, "status": c.Status,
				"vendors": strings.Join(c.Vendors, ","), "purposes": strings.Join(c.Purposes, ","),
				"categories": strings.Join(c.Categories, ","), "expires_at": c.ExpiresAt.UTC().Format(time.RFC3339)}
			if ch.Kind == consent.ChangeAuthorized {
				d["scopes"] = strings.Join(ch.Scopes, " ")
			}
			if ch.DataKeyDestroyed {
				d["data_key_destroyed"] = "true" // the consent's value tokens are void
			}
			if len(ch.TokensDeleted) > 0 {
				d["tokens_deleted"] = strings.Join(ch.TokensDeleted, ",")
			}
			if ch.Erasures > 0 {
				d["erasures_queued"] = strconv.Itoa(ch.Erasures)
			}
			_, err := alog.Append(ctx, audit.Record{Kind: audit.KindConsent, ConsentID: c.ID, App: c.App, SubjectHMAC: c.Subject,
				Vendor: ch.Vendor, Detail: d})
			return err
		},
	}
	if cfg.Consents.Backend != configs.ConsentsPostgres {
		reg, err := consent.Open(cfg.ResolvePath(cfg.StateDB), o)
		if err != nil {
			return nil, fmt.Errorf("consent registry: %w", err)
		}
		return reg, nil
	}
	db, err := postgresConsents(ctx, cfg, p)
	if err != nil {
		return nil, err
	}
	reg, err := consent.OpenPostgres(ctx, db, o)
	if err != nil {
		return nil, fmt.Errorf("consent registry: %w", err)
	}
	log.Info("consent registry shared in PostgreSQL", "database", db.String(), "sslmode", db.SSLMode)
	return reg, nil
}

// postgresConsents is how to reach the shared consent database. The password is
// read from the secret provider for every new connection, so a rotation in Vault
// reaches the pool without a restart.
func postgresConsents(ctx context.Context, cfg *configs.Config, p secrets.Provider) (consent.Postgres, error) {
	pc := cfg.Consents.Postgres
	ref, err := secrets.ParseRef(pc.PasswordSecret)
	if err != nil {
		return consent.Postgres{}, fmt.Errorf("consents.postgres.password_secret: %w", err)
	}
	password := func(ctx context.Context) (string, error) {
		s, err := p.Get(ctx, ref)
		if err != nil {
			return "", fmt.Errorf("consents.postgres.password_secret: %w", err)
		}
		return s.Value, nil
	}
	// Fail at start, naming the field, rather than at the first connection.
	if _, err := password(ctx); err != nil {
		return consent.Postgres{}, err
	}
	return consent.Postgres{Host: pc.Host, Port: uint16(pc.Port), Database: pc.Database, User: pc.User, Password: password,
		SSLMode: pc.SSLMode, CAFile: cfg.ResolvePath(pc.CAFile), MaxConns: int32(pc.MaxConns)}, nil
}

func (r *running) gatewayURL() string { return "https://" + r.srv.Addr(proxy.ListenGateway) }

// callbacksURL is where vendors call back and browsers return from vendor logins.
func (r *running) callbacksURL() string { return "https://" + r.srv.Addr(proxy.ListenCallbacks) }

func (r *running) adminURL() string { return "https://" + r.srv.Addr(proxy.ListenAdmin) }

func (r *running) printReady(w io.Writer) { fmt.Fprintln(w, r.readyLine()) }

// readyLine names every listener the gateway serves on.
func (r *running) readyLine() string {
	line := "ready"
	for _, l := range []proxy.Listener{proxy.ListenGateway, proxy.ListenForward, proxy.ListenAdmin, proxy.ListenCallbacks} {
		if addr := r.srv.Addr(l); addr != "" {
			line += fmt.Sprintf(" %s=https://%s", l, addr)
		}
	}
	return line
}

// serve runs until ctx ends; SIGHUP reloads what can be reloaded without a restart.
func (r *running) serve(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := r.engine.Watch(ctx, r.cfg.Policy.Poll.Duration); err != nil {
		return fmt.Errorf("watching policy: %w", err)
	}
	r.gw.WatchCertificates(ctx, proxy.DefaultCertificatePoll)
	r.in.WatchCRL(ctx, r.log)
	if r.profiles != nil {
		if err := r.profiles.watch(ctx); err != nil {
			return fmt.Errorf("watching vendor profiles: %w", err)
		}
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				r.reload(ctx)
			}
		}
	}()
	if err := r.start(ctx); err != nil {
		return err
	}
	// Withdrawals reach the vendors: the erasure outbox is worked until the
	// gateway stops, and the stop waits for the attempt in progress.
	erasing := make(chan struct{})
	go func() {
		defer close(erasing)
		(&proxy.Eraser{Gateway: r.gw, Queue: r.consents, Interval: r.cfg.Consents.ErasureInterval.Duration,
			Lease: r.cfg.Consents.ErasureLease.Duration, Logger: r.log}).Run(ctx)
	}()
	defer func() { <-erasing }()
	// The audit log reaches the SIEMs; the stop waits for the batch in flight.
	defer runStreams(ctx, r.streams, r.log)()
	if r.cfg.Audit.LinkRetention.Duration > 0 {
		forgetting := make(chan struct{})
		go func() {
			defer close(forgetting)
			forgetLinkKeys(ctx, r.audit, time.Hour, r.log)
		}()
		defer func() { <-forgetting }()
	}
	if r.retention != nil {
		retaining := make(chan struct{})
		go func() {
			defer close(retaining)
			r.retention.Run(ctx, r.cfg.Audit.Retention.Interval.Duration)
		}()
		defer func() { <-retaining }()
	}
	r.log.Info("consentgate started", "node", r.cfg.Node, "gateway", r.srv.Addr(proxy.ListenGateway), "forward", r.srv.Addr(proxy.ListenForward), "admin", r.srv.Addr(proxy.ListenAdmin),
		"callbacks", r.srv.Addr(proxy.ListenCallbacks),
		"vendors", len(r.cfg.Vendors), "policy_revision", r.engine.Revision())
	err := r.srv.Serve(ctx)
	if rerr := systemRecord(context.WithoutCancel(ctx), r.audit, map[string]string{"event": "stop"}); rerr != nil {
		r.log.Error("AUDIT LOG UNWRITABLE: stop not recorded", "error", rerr.Error())
	}
	r.log.Info("consentgate stopped", "node", r.cfg.Node)
	return err
}

// start records the start in the audit log, then begins answering; serve calls
// it unless `dev` already has.
func (r *running) start(ctx context.Context) error {
	var err error
	r.started.Do(func() {
		if err = systemRecord(ctx, r.audit, map[string]string{"event": "start", "policy_revision": r.engine.Revision()}); err != nil {
			err = fmt.Errorf("recording start: %w", err)
			return
		}
		r.in.RefreshCRL(ctx, r.log)
		r.srv.Start()
	})
	return err
}

func (r *running) reload(ctx context.Context) {
	if err := r.in.Reload(); err != nil {
		r.log.Error("reloading serving certificate failed; keeping the current one", "error", err)
	}
	switch s := r.secrets.(type) {
	case *secrets.FileStore:
		if err := s.Reload(); err != nil {
			r.log.Error("reloading secrets file failed; keeping the current values", "error", err)
		}
	case *secrets.Vault:
		if err := s.Reload(); err != nil {
			r.log.Error("re-reading secrets from vault failed; keeping the cached values", "error", err.Error())
		}
	}
	// After the secrets: a profile or a vendor certificate kept in the file
	// store is read with the values just reloaded.
	if r.profiles != nil {
		r.profiles.reload(ctx) // logs and counts its own failure
	}
	for _, err := range r.gw.ReloadCertificates(ctx) {
		r.log.Error("reloading a vendor certificate failed; keeping the current one", "error", err.Error())
	}
	r.engine.Reload(ctx) // logs and counts its own failure
	r.log.Info("reload done", "policy_revision", r.engine.Revision())
}

func (r *running) close() {
	r.srv.Close() // already shut down after serve; not yet serving after a failed start
	if r.serving != nil {
		r.serving.Close()
	}
	if err := r.consents.Close(); err != nil {
		r.log.Error("closing consent registry", "error", err)
	}
	// Close writes the final checkpoint.
	if err := r.audit.Close(); err != nil {
		r.log.Error("closing audit log", "error", err)
	}
	closeSecrets(r.secrets, r.log)
	if r.tracer != nil {
		// Flush the last spans, but do not hold up a shutdown for a collector.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.tracer.Shutdown(ctx); err != nil {
			r.log.Warn("flushing spans", "error", err)
		}
	}
}

// openTokenVault keeps tokens in the consent registry, their data keys wrapped
// by keys.token_vault; without that key there is no vault, and a decision that
// tokenizes fails closed.
func openTokenVault(ctx context.Context, cfg *configs.Config, p secrets.Provider, consents *consent.Registry, log *slog.Logger) (*tokens.Vault, error) {
	var key tokens.Wrapper
	switch tk := cfg.Keys.TokenVaultTransit; {
	case tk != nil:
		v, ok := p.(*secrets.Vault)
		if !ok {
			return nil, errors.New("keys.token_vault_transit: needs secrets.provider vault")
		}
		tr := v.Transit(cmp.Or(tk.Mount, "transit"), tk.Key)
		if err := probeTransit(tr); err != nil {
			return nil, fmt.Errorf("keys.token_vault_transit: %w", err)
		}
		key = tr
	case cfg.Keys.TokenVault != "":
		k, err := readSealKey(ctx, p, "keys.token_vault", cfg.Keys.TokenVault)
		if err != nil {
			return nil, err
		}
		key = k
	default:
		return nil, nil
	}
	index, err := tokenIndexKey(ctx, cfg, p)
	if err != nil {
		return nil, err
	}
	var previous, next tokens.Wrapper
	if ref := cfg.Keys.TokenVaultPrevious; ref != "" {
		if previous, err = readSealKey(ctx, p, "keys.token_vault_previous", ref); err != nil {
			return nil, err
		}
	}
	if ref := cfg.Keys.TokenVaultNext; ref != "" {
		if next, err = readSealKey(ctx, p, "keys.token_vault_next", ref); err != nil {
			return nil, err
		}
	}
	if previous != nil && next != nil && sameKey(next, previous) {
		// Keys under it would open as next and never be rewrapped, and the
		// log would say the previous key can go.
		return nil, errors.New("keys.token_vault_next and keys.token_vault_previous are the same key: a rotation has one of them only")
	}
	v := tokens.New(consents, key, previous, index)
	if next != nil {
		v.OpensNext(next)
	}
	if previous == nil {
		return v, nil
	}
	go func() {
		n, err := v.Rewrap(context.WithoutCancel(ctx))
		if err != nil {
			log.Error("token data keys not all rewrapped: keep keys.token_vault_previous", "rewrapped", n, "error", err.Error())
			return
		}
		log.Info("token data keys rewrapped under keys.token_vault: keys.token_vault_previous can be removed", "rewrapped", n)
	}()
	return v, nil
}

// sameKey says whether b opens what a seals.
func sameKey(a, b tokens.Wrapper) bool {
	probe, err := a.Seal(make([]byte, 32), []byte("consentgate key comparison"))
	if err != nil {
		return false
	}
	_, err = b.Open(probe, []byte("consentgate key comparison"))
	return err == nil
}

// probeTransit finds a transit key that is missing, out of the policy's reach,
// or that does not bind associated data (a key of another type, a Vault that
// ignores it) now, not at the first tokenized call: each data key must open
// only for its own consent.
func probeTransit(tr *secrets.Transit) error {
	probe, err := tr.Seal(make([]byte, 32), []byte("consentgate start-up check"))
	if err != nil {
		return err
	}
	if _, err := tr.Open(probe, []byte("consentgate start-up check")); err != nil {
		return err
	}
	if _, err := tr.Open(probe, []byte("another consent")); err == nil {
		return errors.New("the transit key opens under other associated data: use a key of type aes256-gcm96 on Vault 1.13 or later")
	}
	return nil
}

// tokenIndexKey keys the hashes tokens are stored and named by. It is derived
// from keys.subject_hmac, which every replica shares and which must not change
// (the registry checks it at start), so token ids stay the same.
func tokenIndexKey(ctx context.Context, cfg *configs.Config, p secrets.Provider) ([]byte, error) {
	s, err := readKey(ctx, p, "keys.subject_hmac", cfg.Keys.SubjectHMAC)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, []byte(s))
	m.Write([]byte("consentgate token index v1"))
	return m.Sum(nil), nil
}

// readSealKey reads an AES-256 key (hex or base64) from the secret provider.
func readSealKey(ctx context.Context, p secrets.Provider, field, ref string) (*secrets.SealKey, error) {
	s, err := readKey(ctx, p, field, ref)
	if err != nil {
		return nil, err
	}
	key, err := secrets.ParseSealKey(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return key, nil
}

// readKey reads one of consentgate's own keys (the reference in field) from
// the secret provider; errors name the field, never the value.
func readKey(ctx context.Context, p secrets.Provider, field, ref string) (string, error) {
	r, err := secrets.ParseRef(ref)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	s, err := p.Get(ctx, r)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	return s.Value, nil
}

// randomKey is 32 random bytes, for a key that lives as long as the process.
func randomKey() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}
