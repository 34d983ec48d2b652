package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/consentgate/consentgate/admin"
	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/identity"
	"github.com/consentgate/consentgate/refusal"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/consentgate/consentgate/configs"
)

// InboundTLS is the TLS every listener speaks: our serving certificate, TLS 1.2
// or newer, and a client certificate that chains to the internal CA and carries a
// consentgate identity. A missing, foreign, expired or identity-less certificate
// fails the handshake: such a caller never reaches an HTTP handler. Only the
// callbacks listener, where vendors call back and end users' browsers return
// from vendor logins, takes connections without one (CallbackTLS).
type InboundTLS struct {
	cfg  *configs.Config
	cert atomic.Pointer[tls.Certificate]
	// serving, when set, supplies the certificate instead of the files
	// (ACME: certmagic obtains and renews it).
	serving func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	tls     *tls.Config
	// crl is the internal CA's CRL (tls.client_crl); nil checks none.
	crl *certs.RevocationList
}

// NewInboundTLS loads the serving certificate from tls.cert_file and
// tls.key_file, and the client CA pool.
func NewInboundTLS(cfg *configs.Config) (*InboundTLS, error) {
	return NewInboundTLSFrom(cfg, nil)
}

// NewInboundTLSFrom is NewInboundTLS with the serving certificate from
// serving (per handshake, so renewals apply at once); nil reads the files.
// Client certificate verification is the same either way.
func NewInboundTLSFrom(cfg *configs.Config, serving func(*tls.ClientHelloInfo) (*tls.Certificate, error)) (*InboundTLS, error) {
	in := &InboundTLS{cfg: cfg, serving: serving}
	if err := in.Reload(); err != nil {
		return nil, err
	}
	pool, err := certs.LoadPool(cfg.ResolvePath(cfg.TLS.ClientCAFile))
	if err != nil {
		return nil, fmt.Errorf("%s: tls.client_ca_file: %w", cfg.File, err)
	}
	min := uint16(tls.VersionTLS12)
	if cfg.TLS.MinVersion == "1.3" {
		min = tls.VersionTLS13
	}
	in.tls = &tls.Config{
		MinVersion:   min,
		CipherSuites: certs.AEADSuites,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if in.serving != nil {
				return in.serving(hello)
			}
			return in.cert.Load(), nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("client certificate required")
			}
			if _, err := identity.Of(cs.PeerCertificates[0], cfg.TrustDomain); err != nil {
				return err
			}
			return in.checkRevocation(cs)
		},
		NextProtos: []string{"h2", "http/1.1"},
	}
	if c := cfg.TLS.ClientCRL; c != nil {
		if in.crl, err = clientCRL(cfg, c); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// clientCRL is the revocation list tls.client_crl names, not fetched yet.
func clientCRL(cfg *configs.Config, c *configs.ClientCRL) (*certs.RevocationList, error) {
	data, err := os.ReadFile(cfg.ResolvePath(c.IssuerFile))
	if err != nil {
		return nil, fmt.Errorf("%s: tls.client_crl.issuer_file: %w", cfg.File, err)
	}
	chain, err := certs.ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%s: tls.client_crl.issuer_file: %w", cfg.File, err)
	}
	issuer := chain[0]
	if c.File != "" {
		file := cfg.ResolvePath(c.File)
		return certs.NewRevocationList("tls.client_crl "+file, issuer, func(context.Context) ([]byte, error) { return os.ReadFile(file) }), nil
	}
	roots, err := certs.LoadPool(cfg.ResolvePath(c.CAFile))
	if err != nil {
		return nil, fmt.Errorf("%s: tls.client_crl.ca_file: %w", cfg.File, err)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil,
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	return certs.NewRevocationList("tls.client_crl "+c.URL, issuer, func(ctx context.Context) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL, nil)
		if err != nil {
			return nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s", resp.Status)
		}
		return io.ReadAll(io.LimitReader(resp.Body, maxCRLBytes))
	}), nil
}

// maxCRLBytes bounds a CRL read: a CA's list of revoked app certificates is
// kilobytes; the bound keeps a wrong URL from filling memory.
const maxCRLBytes = 16 << 20

// checkRevocation refuses, at the handshake, a certificate the internal CA's
// CRL lists or does not cover, and, unless tls.client_crl.fail_open, any
// certificate while no current CRL is held. Requests on connections opened
// before are checked again (identity.Require, with revoked).
func (in *InboundTLS) checkRevocation(cs tls.ConnectionState) error {
	if in.crl == nil || len(cs.VerifiedChains) == 0 {
		return nil
	}
	return in.revoked(cs.VerifiedChains[0])
}

// revoked is the check of one verified chain; nil when no CRL is configured.
func (in *InboundTLS) revoked(chain []*x509.Certificate) error {
	if in.crl == nil {
		return nil
	}
	var issuer *x509.Certificate
	if len(chain) > 1 {
		issuer = chain[1]
	}
	err := in.crl.Check(chain[0], issuer)
	if errors.Is(err, certs.ErrRevocationUnknown) && in.cfg.TLS.ClientCRL.FailOpen {
		return nil
	}
	return err
}

// Recheck is what every request on a listener with app certificates checks
// again: the CRL read since the connection's handshake. Nil without a CRL.
func (in *InboundTLS) Recheck() func(chain []*x509.Certificate) error {
	if in.crl == nil {
		return nil
	}
	return in.revoked
}

// RefreshCRL fetches the internal CA's CRL once (before the listeners
// start: without it every app would be refused); without one it does nothing.
func (in *InboundTLS) RefreshCRL(ctx context.Context, log *slog.Logger) {
	if in.crl == nil {
		return
	}
	if err := in.crl.Refresh(ctx); err != nil {
		log.Error("client CRL unavailable: app certificates are refused until it is fetched", "error", err.Error())
	}
}

// WatchCRL fetches the CRL again every tls.client_crl.refresh until ctx ends.
func (in *InboundTLS) WatchCRL(ctx context.Context, log *slog.Logger) {
	if in.crl != nil {
		go in.crl.Watch(ctx, in.cfg.TLS.ClientCRL.Refresh.Duration, log)
	}
}

// Certificates are those of the inbound TLS in use: the serving
// certificate, the internal CA apps chain to, and the CRL's issuer (with the
// CRL's state).
func (in *InboundTLS) Certificates() []certs.InUse {
	now := time.Now()
	var out []certs.InUse
	if pair := in.servingNow(); pair != nil && pair.Leaf != nil {
		u := certs.Describe("serving", pair.Leaf, now)
		if in.cfg.TLS.ACME != nil {
			u.Key = "acme: " + in.cfg.ResolvePath(in.cfg.TLS.ACME.Storage)
		} else {
			u.Key = "file:" + in.cfg.ResolvePath(in.cfg.TLS.KeyFile)
		}
		out = append(out, u)
	}
	if data, err := os.ReadFile(in.cfg.ResolvePath(in.cfg.TLS.ClientCAFile)); err == nil {
		if cas, err := certs.ParseCertificates(data); err == nil {
			for _, c := range cas {
				out = append(out, certs.Describe("client-ca", c, now))
			}
		}
	}
	if in.crl != nil {
		u := certs.Describe("client-crl-issuer", in.crl.Issuer(), now)
		u.Revocation = "the CRL it signs: current"
		if err := in.crl.Status(); err != nil {
			u.Revocation = "the CRL it signs: " + err.Error()
			u.Warnings = append(u.Warnings, err.Error())
		}
		out = append(out, u)
	}
	return out
}

// servingNow is the serving certificate presented now.
func (in *InboundTLS) servingNow() *tls.Certificate {
	if in.serving == nil {
		return in.cert.Load()
	}
	hello := &tls.ClientHelloInfo{}
	if a := in.cfg.TLS.ACME; a != nil && len(a.Names) > 0 {
		hello.ServerName = a.Names[0]
	}
	pair, err := in.serving(hello)
	if err != nil {
		return nil
	}
	if pair.Leaf == nil && len(pair.Certificate) > 0 {
		pair.Leaf, _ = x509.ParseCertificate(pair.Certificate[0])
	}
	return pair
}

// RegisterMetrics exports consentgate_client_crl_expiry_seconds when a
// client CRL is configured: how long the CRL in service holds (negative once
// past; -1e9 while none was ever fetched), for the alert that comes before
// every app is refused.
func (in *InboundTLS) RegisterMetrics(reg prometheus.Registerer) {
	if in.crl == nil {
		return
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "consentgate_client_crl_expiry_seconds",
		Help: "Seconds until the internal CA's CRL in service passes its NextUpdate (negative once past; -1e9 before any was fetched).",
	}, func() float64 {
		next, ok := in.crl.NextUpdate()
		if !ok {
			return -1e9
		}
		return time.Until(next).Seconds()
	}))
}

// ReadyChecks are /readyz conditions of the inbound TLS: a current client CRL.
func (in *InboundTLS) ReadyChecks() []admin.ReadyCheck {
	if in.crl == nil {
		return nil
	}
	return []admin.ReadyCheck{{Name: "client CRL", Check: in.crl.Status}}
}

// Reload re-reads the serving certificate files; on failure the current one
// stays. With ACME there is nothing to do: renewal is continuous.
func (in *InboundTLS) Reload() error {
	if in.serving != nil {
		return nil
	}
	certFile, keyFile := in.cfg.ResolvePath(in.cfg.TLS.CertFile), in.cfg.ResolvePath(in.cfg.TLS.KeyFile)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("%s: tls.cert_file/key_file: %w", in.cfg.File, err)
	}
	if time.Now().After(pair.Leaf.NotAfter) {
		return fmt.Errorf("%s: tls.cert_file %s expired on %s", in.cfg.File, certFile, pair.Leaf.NotAfter.Format(time.DateOnly))
	}
	in.cert.Store(&pair)
	return nil
}

// Config is the tls.Config for a listener.
func (in *InboundTLS) Config() *tls.Config { return in.tls }

// Listener names one of the Server's listeners.
type Listener string

// The listeners, in the order they are bound.
const (
	ListenGateway   Listener = "gateway"
	ListenForward   Listener = "forward"
	ListenAdmin     Listener = "admin"
	ListenCallbacks Listener = "callbacks"
)

// Server owns the listeners: gateway, forward, admin and callbacks.
type Server struct {
	servers []*http.Server
	lns     []net.Listener
	addrs   map[Listener]string
	log     *slog.Logger

	start sync.Once
	errc  chan error
}

// Listen binds the configured addresses so that the caller can print them before
// serving. A nil forward handler (no forward CA configured) answers 501 but
// still holds its port and its TLS.
func Listen(cfg *configs.Config, in *InboundTLS, gateway, forward, admin, callbacks http.Handler, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{log: log, addrs: map[Listener]string{}}
	handlers := []struct {
		name Listener
		addr string
		h    http.Handler
	}{
		{ListenGateway, cfg.Listen.Gateway, gateway},
		{ListenForward, cfg.Listen.Forward, forward},
		{ListenAdmin, cfg.Listen.Admin, admin},
		{ListenCallbacks, cfg.Listen.Callbacks, callbacks},
	}
	for _, l := range handlers {
		if l.addr == "" {
			continue
		}
		if l.h == nil && l.name == ListenCallbacks {
			l.h = http.NotFoundHandler()
		}
		if l.h == nil {
			l.h = notYet("the forward proxy (configure tls.forward_ca_cert_file and tls.forward_ca_key_file)")
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("listening on %s: %w", l.addr, err)
		}
		s.lns = append(s.lns, ln)
		s.addrs[l.name] = ln.Addr().String()
		tlsCfg := in.Config().Clone() // http.Server mutates it
		var nextProto map[string]func(*http.Server, *tls.Conn, http.Handler)
		switch l.name {
		case ListenForward:
			// CONNECT tunnels are HTTP/1.1: the forward listener never offers h2.
			tlsCfg.NextProtos = []string{"http/1.1"}
			nextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
		case ListenCallbacks:
			// Vendors hold no internal certificate: server TLS only here.
			tlsCfg = CallbackTLS(in)
		}
		s.servers = append(s.servers, &http.Server{
			Handler:           withConnTLS(identity.Middleware(cfg.TrustDomain, in.Recheck(), l.h)),
			ConnContext:       connContext(cfg.TrustDomain, in.Recheck()),
			TLSConfig:         tlsCfg,
			TLSNextProto:      nextProto,
			ReadHeaderTimeout: cfg.Listen.ReadHeaderTimeout.Duration,
			ReadTimeout:       cfg.Listen.ReadTimeout.Duration,
			IdleTimeout:       cfg.Listen.IdleTimeout.Duration,
			MaxHeaderBytes:    cfg.Listen.MaxHeaderBytes,
			// Handshake failures (no or foreign certificate) are worth seeing.
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelInfo),
		})
	}
	return s, nil
}

// Addr is the bound address of listener l, or "" if it is not configured.
func (s *Server) Addr(l Listener) string { return s.addrs[l] }

// Start begins answering on every listener; Serve calls it too. `dev` calls it
// early, to run the OAuth2 logins of its seeded consents through the real routes
// before it reports ready.
func (s *Server) Start() {
	s.start.Do(func() {
		s.errc = make(chan error, len(s.servers))
		for i, srv := range s.servers {
			// The guard does the TLS handshake with its own copy of the config:
			// net/http adjusts srv.TLSConfig while it starts.
			ln := newGuardListener(s.lns[i], srv.TLSConfig.Clone(), srv, s.log)
			go func() { s.errc <- srv.Serve(ln) }()
		}
	})
}

// Serve serves until ctx ends, then drains in-flight requests for up to 10 s.
func (s *Server) Serve(ctx context.Context) error {
	s.Start()
	select {
	case err := <-s.errc:
		s.close()
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	for _, srv := range s.servers {
		if err := srv.Shutdown(shutdown); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Server) close() {
	for _, ln := range s.lns {
		ln.Close()
	}
}

// Close stops accepting connections at once, for a start-up that fails after
// Start; Serve's own shutdown drains instead.
func (s *Server) Close() { s.close() }

func notYet(what string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refusal.New(http.StatusNotImplemented, refusal.NotImplemented, "Not implemented", what+" is not available in this version").Write(w, "")
	})
}
