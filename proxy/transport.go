package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"time"

	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/configs"
)

// newTransport builds the one http.Transport a vendor's calls share: kept-alive
// connections, HTTP/2 where the vendor offers it, the vendor's CA pool and our
// client certificate. It never consults HTTP(S)_PROXY: egress goes where the
// profile says and nowhere else.
func newTransport(cfg *configs.Config, v *configs.Vendor, base *url.URL, id *certs.ClientIdentity) (*http.Transport, error) {
	tlsCfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: AEADSuites,
		ServerName:   v.Upstream.ServerName,
	}
	if tlsCfg.ServerName == "" {
		tlsCfg.ServerName = base.Hostname()
	}
	if v.Upstream.CAFile != "" {
		pool, err := certs.LoadPool(cfg.ResolvePath(v.Upstream.CAFile))
		if err != nil {
			return nil, fmt.Errorf("vendor %s upstream.ca_file: %w", v.ID, err)
		}
		tlsCfg.RootCAs = pool
	}
	if id != nil {
		tlsCfg.GetClientCertificate = id.GetClientCertificate
	}
	t := v.Timeouts
	var pinned []netip.Addr
	for _, a := range v.Upstream.Pin {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return nil, fmt.Errorf("vendor %s upstream.pin: %w", v.ID, err)
		}
		pinned = append(pinned, ip.Unmap())
	}
	port := base.Port()
	if port == "" {
		port = "443"
	}
	dialer := newEgressDialer(t.Dial.Duration, pinned, port)
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
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

// loadSource reads a configured value from the secret provider or a file.
func (g *Gateway) loadSource(ctx context.Context, s *configs.Source) ([]byte, error) {
	if s.File != "" {
		return os.ReadFile(g.cfg.ResolvePath(s.File))
	}
	ref, err := parseRef(s.Secret)
	if err != nil {
		return nil, err
	}
	sec, err := g.secrets.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	return []byte(sec.Value), nil
}

// clientIdentity loads the vendor's client certificate, if the profile has one,
// and checks it against the profile's requirements: a certificate the vendor would
// refuse stops start-up here instead of failing every call later.
func (g *Gateway) clientIdentity(ctx context.Context, v *configs.Vendor) (*certs.ClientIdentity, error) {
	cc := v.ClientCertificate
	if cc == nil {
		return nil, nil
	}
	req := certs.Requirement{Issuers: cc.RequireIssuer, RequireICO: cc.RequireICO}
	return certs.NewClientIdentity(ctx, v.ID, req, func(ctx context.Context) (*tls.Certificate, error) {
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
		keyPEM, err := g.loadSource(ctx, cc.Key)
		if err != nil {
			return nil, fmt.Errorf("client_certificate.key: %w", err)
		}
		return certs.ParseKeyPair(certPEM, keyPEM)
	})
}
