package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/caddyserver/certmagic"
)

// ACME challenge types a gateway can solve.
const (
	ChallengeHTTP01    = "http-01"
	ChallengeTLSALPN01 = "tls-alpn-01"
)

// ACMEOptions say where and how the gateway obtains its serving certificates.
type ACMEOptions struct {
	// Directory is the ACME directory URL (the internal CA's
	// https://HOST:PORT/acme/acme/directory).
	Directory string
	// Roots verify the ACME server's own certificate.
	Roots *x509.CertPool
	// Names are the DNS names and IP addresses to hold a certificate for; the
	// first is used for a client that sends no server name and connects to
	// an address that is not in the list.
	Names []string
	// Email is the ACME account contact (optional).
	Email string
	// Storage is the folder certificates, keys and the ACME account live in.
	Storage string
	// Challenge is ChallengeHTTP01 or ChallengeTLSALPN01; ChallengeListen is
	// the host:port its solver listens on while a challenge is pending (the
	// CA must reach it there, directly or through a port forward).
	Challenge       string
	ChallengeListen string
	// Logger receives certmagic's events; nil discards.
	Logger *slog.Logger
}

// Serving holds serving certificates obtained over ACME by certmagic, which
// renews them in the background (a third of their lifetime before expiry) and
// keeps them in Storage, so a restart does not need the CA.
type Serving struct {
	cache *certmagic.Cache
	cfg   *certmagic.Config
}

// ObtainServing loads the certificates for o.Names from storage or obtains
// them, and returns once every name has one: a gateway never listens without
// its certificate. A name that cannot be obtained is an error.
func ObtainServing(ctx context.Context, o ACMEOptions) (*Serving, error) {
	if len(o.Names) == 0 {
		return nil, errors.New("ACME: no names to obtain certificates for")
	}
	host, port, err := net.SplitHostPort(o.ChallengeListen)
	if err != nil {
		return nil, fmt.Errorf("ACME challenge listen address %q: %w", o.ChallengeListen, err)
	}
	portNum, err := strconv.Atoi(port)
	if err != nil || portNum <= 0 {
		return nil, fmt.Errorf("ACME challenge listen address %q: a fixed port is needed", o.ChallengeListen)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	zl := newZapLogger(log.With("component", "acme"))
	var cfg *certmagic.Config
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return cfg, nil },
		Logger:           zl,
	})
	cfg = certmagic.New(cache, certmagic.Config{
		Storage:           &certmagic.FileStorage{Path: o.Storage},
		DefaultServerName: o.Names[0],
		// The internal CA runs no OCSP responder and no renewal-information
		// endpoint: asking for them only fills the log.
		OCSP:       certmagic.OCSPConfig{DisableStapling: true},
		DisableARI: true,
		Logger:     zl,
		// certmagic narrates every step at info level (logged here at
		// debug); what an operator needs is each certificate obtained.
		ShouldEmitFunc: func(event string) bool { return event == "cert_obtained" },
		OnEvent: func(_ context.Context, event string, data map[string]any) error {
			if event == "cert_obtained" {
				log.Info("serving certificate obtained", "name", data["identifier"], "renewal", data["renewal"])
			}
			return nil
		},
	})
	issuer := certmagic.ACMEIssuer{
		CA:                      o.Directory,
		Email:                   o.Email,
		Agreed:                  true,
		TrustedRoots:            o.Roots,
		ListenHost:              host,
		DisableHTTPChallenge:    o.Challenge != ChallengeHTTP01,
		DisableTLSALPNChallenge: o.Challenge != ChallengeTLSALPN01,
		Logger:                  zl,
	}
	switch o.Challenge {
	case ChallengeHTTP01:
		issuer.AltHTTPPort = portNum
	case ChallengeTLSALPN01:
		issuer.AltTLSALPNPort = portNum
	default:
		cache.Stop()
		return nil, fmt.Errorf("ACME challenge %q is not supported: use %s or %s", o.Challenge, ChallengeHTTP01, ChallengeTLSALPN01)
	}
	cfg.Issuers = []certmagic.Issuer{quietIssuer{certmagic.NewACMEIssuer(cfg, issuer)}}
	if err := cfg.ManageSync(ctx, o.Names); err != nil {
		cache.Stop()
		return nil, fmt.Errorf("obtaining serving certificates for %v from %s: %w", o.Names, o.Directory, err)
	}
	return &Serving{cache: cache, cfg: cfg}, nil
}

// quietIssuer is certmagic's ACME issuer without its interactive step: with
// no email configured, ManageSync would ask for one on the terminal, and a
// gateway must never wait on stdin. The internal CA needs no contact.
type quietIssuer struct{ *certmagic.ACMEIssuer }

func (q quietIssuer) PreCheck(ctx context.Context, names []string, _ bool) error {
	return q.ACMEIssuer.PreCheck(ctx, names, false)
}

// GetCertificate is for tls.Config: the certificate for the client's server
// name, or for the address it connected to when it sent none.
func (s *Serving) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cfg.GetCertificate(hello)
}

// Close stops renewal.
func (s *Serving) Close() { s.cache.Stop() }
