package proxy

import (
	"context"
	"crypto"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/secrets"
	"github.com/prometheus/client_golang/prometheus"
)

// newTransport builds the one http.Transport a vendor's calls share: kept-alive
// connections, HTTP/2 where the vendor offers it, the vendor's CA pool and our
// client certificate. It never consults HTTP(S)_PROXY: egress goes where the
// profile says and nowhere else (dial: see egressDial). Both the CA pool and the client certificate
// are read per handshake, so a reload applies to the next connection.
func newTransport(v *configs.Vendor, base *url.URL, id *certs.ClientIdentity, bundle *certs.CABundle, dial dialFunc, revoked func(tls.ConnectionState) error) (*http.Transport, error) {
	tlsCfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: certs.AEADSuites,
		ServerName:   v.Upstream.ServerName,
	}
	if tlsCfg.ServerName == "" {
		tlsCfg.ServerName = base.Hostname()
	}
	if bundle != nil {
		// RootCAs cannot change once the transport exists, so the built-in
		// check is replaced by the same check against the bundle's current
		// pool (the pattern of crypto/tls's VerifyConnection example). It is
		// not skipped: a server that does not verify fails the handshake.
		tlsCfg.InsecureSkipVerify = true
		tlsCfg.VerifyConnection = bundle.Verifier(tlsCfg.ServerName)
	}
	if id != nil {
		tlsCfg.GetClientCertificate = id.GetClientCertificate
	}
	if revoked != nil {
		verify := tlsCfg.VerifyConnection // the bundle's, or nil: crypto/tls verified the chain
		tlsCfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if verify != nil {
				if err := verify(cs); err != nil {
					return err
				}
			}
			return revoked(cs)
		}
	}
	t := v.Timeouts
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dial,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   t.TLSHandshake.Duration,
		ResponseHeaderTimeout: t.ResponseHeader.Duration,
		IdleConnTimeout:       t.IdleConn.Duration,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		ForceAttemptHTTP2:     true,
	}, nil
}

type dialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// egressDial is how a vendor's connections are made: straight to the vendor's
// checked address, or through the profile's CONNECT proxy; from the profile's
// source address either way.
func (g *Gateway) egressDial(ctx context.Context, v *configs.Vendor, base *url.URL) (dialFunc, error) {
	port := base.Port()
	if port == "" {
		port = "443"
	}
	dialer := &net.Dialer{Timeout: v.Timeouts.Dial.Duration, KeepAlive: 30 * time.Second}
	var source netip.Addr
	if a := v.Egress.SourceAddress; a != "" {
		var err error
		if source, err = netip.ParseAddr(a); err != nil {
			return nil, fmt.Errorf("vendor %s egress.source_address: %w", v.ID, err)
		}
		source = source.Unmap()
		dialer.LocalAddr = &net.TCPAddr{IP: source.AsSlice()}
	}
	if p := v.Egress.Proxy; p != nil {
		return g.tunnel(ctx, v, p, dialer, port)
	}
	var pinned []netip.Addr
	for _, a := range v.Upstream.Pin {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return nil, fmt.Errorf("vendor %s upstream.pin: %w", v.ID, err)
		}
		pinned = append(pinned, ip.Unmap())
	}
	d := newEgressDialer(dialer, pinned, port)
	d.source = source
	return d.DialContext, nil
}

func (g *Gateway) tunnel(ctx context.Context, v *configs.Vendor, p *configs.EgressProxy, dialer *net.Dialer, port string) (dialFunc, error) {
	u, err := url.Parse(p.URL)
	if err != nil {
		return nil, fmt.Errorf("vendor %s egress.proxy.url: %w", v.ID, err)
	}
	d := &tunnelDialer{proxy: u, dialer: dialer, port: port, timeout: v.Timeouts.Dial.Duration + v.Timeouts.TLSHandshake.Duration}
	if u.Scheme == "https" {
		d.tls = &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: certs.AEADSuites, ServerName: u.Hostname()}
		if p.CAFile != "" {
			if d.tls.RootCAs, err = certs.LoadPool(g.cfg.ResolvePath(p.CAFile)); err != nil {
				return nil, fmt.Errorf("vendor %s egress.proxy.ca_file: %w", v.ID, err)
			}
		}
	}
	if p.Username != nil {
		d.auth = func(ctx context.Context) (string, string, error) {
			user, err := g.loadSource(ctx, p.Username)
			if err != nil {
				return "", "", fmt.Errorf("egress.proxy.username: %w", err)
			}
			password, err := g.loadSource(ctx, p.Password)
			if err != nil {
				return "", "", fmt.Errorf("egress.proxy.password: %w", err)
			}
			return string(user), string(password), nil
		}
		// A reference that does not resolve stops start-up, not every call.
		if _, _, err := d.auth(ctx); err != nil {
			return nil, fmt.Errorf("vendor %s: %w", v.ID, err)
		}
	}
	return d.DialContext, nil
}

// vendorTransport is a vendor's http.RoundTripper. When its client
// certificate or CA bundle is reloaded it swaps in a fresh *http.Transport, so
// the next call opens a new connection and handshakes with the new one, while
// calls in flight finish on the connection they have (an HTTP/2 connection
// with a call in flight would otherwise carry new calls under the old
// certificate). The old transport's connections are closed once idle and, at
// the latest, once every call it carried must have ended.
type vendorTransport struct {
	cur   atomic.Pointer[http.Transport]
	build func() (*http.Transport, error)
	drain time.Duration
	log   *slog.Logger
	id    string
}

func newVendorTransport(id string, drain time.Duration, log *slog.Logger, build func() (*http.Transport, error)) (*vendorTransport, error) {
	tr, err := build()
	if err != nil {
		return nil, err
	}
	t := &vendorTransport{build: build, drain: drain, log: log, id: id}
	t.cur.Store(tr)
	return t, nil
}

func (t *vendorTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return t.cur.Load().RoundTrip(r)
}

// closeIdle closes the idle connections of the transport in use.
func (t *vendorTransport) closeIdle() { t.cur.Load().CloseIdleConnections() }

// renew is called after a reload swapped in a new certificate or CA pool.
func (t *vendorTransport) renew() {
	tr, err := t.build()
	if err != nil {
		// The old transport still reads the new certificate and pool at its
		// next handshake; closing its idle connections makes that soon.
		t.log.Error("rebuilding the vendor transport after a reload failed; closing idle connections instead", "vendor", t.id, "error", err.Error())
		t.cur.Load().CloseIdleConnections()
		return
	}
	old := t.cur.Swap(tr)
	old.CloseIdleConnections()
	time.AfterFunc(t.drain, old.CloseIdleConnections)
}

// loadSource reads a configured value from the secret provider or a file.
func (g *Gateway) loadSource(ctx context.Context, s *configs.Source) ([]byte, error) {
	return ReadSource(ctx, g.cfg, g.secrets, s)
}

// ReadSource reads a configured value (a secret reference or a file, relative
// to the configuration) from p or the file system.
func ReadSource(ctx context.Context, cfg *configs.Config, p secrets.Provider, s *configs.Source) ([]byte, error) {
	if s.File != "" {
		return os.ReadFile(cfg.ResolvePath(s.File))
	}
	ref, err := parseRef(s.Secret)
	if err != nil {
		return nil, err
	}
	sec, err := p.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	return []byte(sec.Value), nil
}

// caBundle loads the vendor's CA bundle, if the profile names one.
func (g *Gateway) caBundle(ctx context.Context, v *configs.Vendor) (*certs.CABundle, error) {
	if v.Upstream.CAFile == "" {
		return nil, nil
	}
	file := g.cfg.ResolvePath(v.Upstream.CAFile)
	return certs.NewCABundle(ctx, "vendor "+v.ID+" upstream.ca_file "+file, func(context.Context) ([]byte, error) {
		return os.ReadFile(file)
	})
}

// tokenKeyPair pairs the certificate with its key in a PKCS#11 token. The PIN
// is read on every load and must be the one the token was opened with (see
// certs.PKCS11Key.Signer).
func (g *Gateway) tokenKeyPair(ctx context.Context, certPEM []byte, k *configs.PKCS11Key) (*tls.Certificate, error) {
	signer, err := TokenSigner(ctx, g.cfg, g.secrets, "client_certificate.pkcs11", k)
	if err != nil {
		return nil, err
	}
	return certs.KeyPairWith(certPEM, signer)
}

// TokenSigner finds a configured key (field names it in errors) in its PKCS#11
// token, with its PIN from the secret provider or a file: a vendor client
// certificate's key, or the audit signing key.
func TokenSigner(ctx context.Context, cfg *configs.Config, p secrets.Provider, field string, k *configs.PKCS11Key) (crypto.Signer, error) {
	pin, err := ReadSource(ctx, cfg, p, k.PIN)
	if err != nil {
		return nil, fmt.Errorf("%s.pin: %w", field, err)
	}
	signer, err := tokenKey(k, string(pin)).Signer()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return signer, nil
}

// tokenKey is a profile's pkcs11 key as certs reads it; pin is "" where only
// its name is wanted.
func tokenKey(k *configs.PKCS11Key, pin string) certs.PKCS11Key {
	id, _ := hex.DecodeString(k.KeyID) // validated with the profile
	return certs.PKCS11Key{Module: k.Module, TokenLabel: k.TokenLabel, KeyLabel: k.KeyLabel, KeyID: id, PIN: pin}
}

// vendorRevocation checks a vendor's certificate at each handshake as its
// profile's upstream.revocation says (nil: off). A revoked certificate fails
// the handshake; one whose status cannot be had fails it under fail-closed,
// and under fail-open goes on with a warning.
func (g *Gateway) vendorRevocation(v *configs.Vendor, bundle *certs.CABundle) func(tls.ConnectionState) error {
	mode := v.Upstream.Revocation
	if mode == configs.RevocationOff {
		return nil
	}
	// Every result is exported from the start, so alerts see a zero.
	count := map[string]prometheus.Counter{}
	for _, r := range []string{"good", "revoked", "unknown"} {
		count[r] = g.metrics.revocations.WithLabelValues(v.ID, r)
	}
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 || !certs.Revocable(cs.PeerCertificates[0]) && len(cs.OCSPResponse) == 0 {
			return nil
		}
		leaf := cs.PeerCertificates[0]
		candidates := cs.PeerCertificates[1:]
		if len(cs.VerifiedChains) > 0 {
			candidates = cs.VerifiedChains[0][1:]
		} else if bundle != nil {
			candidates = append(slices.Clone(candidates), bundle.Certificates()...)
		}
		var err error
		if issuer := certs.IssuerOf(leaf, candidates...); issuer == nil {
			err = fmt.Errorf("%w: the issuer of %s is not known", certs.ErrRevocationUnknown, leaf.Subject)
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), v.Timeouts.TLSHandshake.Duration)
			defer cancel()
			err = g.revocation.Check(ctx, leaf, issuer, cs.OCSPResponse)
		}
		switch {
		case err == nil:
			count["good"].Inc()
		case errors.Is(err, certs.ErrRevoked):
			count["revoked"].Inc()
		default:
			count["unknown"].Inc()
		}
		if errors.Is(err, certs.ErrRevocationUnknown) && mode == configs.RevocationFailOpen {
			g.log.Warn("vendor certificate revocation status unknown; going on (upstream.revocation: fail-open)", "vendor", v.ID, "error", err.Error())
			return nil
		}
		if err != nil {
			g.log.Error("vendor certificate refused", "vendor", v.ID, "error", err.Error())
		}
		return err
	}
}

// CertificateRequirement is what a profile's client_certificate demands of
// the certificate presented: issuer families, an IČO, the kinds it takes.
func CertificateRequirement(cc *configs.ClientCertificate) certs.Requirement {
	req := certs.Requirement{Issuers: cc.RequireIssuer, RequireICO: cc.RequireICO}
	for _, t := range cc.Types {
		req.Kinds = append(req.Kinds, certs.Kind(t))
	}
	return req
}

// clientIdentity loads the vendor's client certificate, if the profile has one,
// and checks it against the profile's requirements: a certificate the vendor would
// refuse stops start-up here instead of failing every call later.
func (g *Gateway) clientIdentity(ctx context.Context, v *configs.Vendor) (*certs.ClientIdentity, error) {
	cc := v.ClientCertificate
	if cc == nil {
		return nil, nil
	}
	return certs.NewClientIdentity(ctx, v.ID, CertificateRequirement(cc), func(ctx context.Context) (*tls.Certificate, error) {
		if cc.PKCS12 != nil {
			data, err := g.loadSource(ctx, cc.PKCS12)
			if err != nil {
				return nil, fmt.Errorf("client_certificate.pkcs12: %w", err)
			}
			var password []byte
			if cc.Password != nil {
				if password, err = g.loadSource(ctx, cc.Password); err != nil {
					return nil, fmt.Errorf("client_certificate.password: %w", err)
				}
			}
			return certs.ParsePKCS12(data, string(password))
		}
		certPEM, err := g.loadSource(ctx, cc.Cert)
		if err != nil {
			return nil, fmt.Errorf("client_certificate.cert: %w", err)
		}
		if cc.PKCS11 != nil {
			return g.tokenKeyPair(ctx, certPEM, cc.PKCS11)
		}
		keyPEM, err := g.loadSource(ctx, cc.Key)
		if err != nil {
			return nil, fmt.Errorf("client_certificate.key: %w", err)
		}
		return certs.ParseKeyPair(certPEM, keyPEM)
	})
}
