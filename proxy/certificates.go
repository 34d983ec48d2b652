package proxy

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/consentgate/consentgate/admin"
	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/configs"
)

// CertificateReadyWindow is how close to expiry a vendor client certificate
// makes /readyz fail: a week for the security team to notice and renew
// before the vendor refuses the gateway.
const CertificateReadyWindow = 7 * 24 * time.Hour

// DefaultCertificatePoll is how often vendor client certificates and CA
// bundles are read again when WatchCertificates is given no interval.
const DefaultCertificatePoll = 10 * time.Second

// WatchCertificates reloads every vendor's client certificate (file or
// secret) and CA bundle every interval until ctx ends, also of vendors a
// reload of the profiles adds. A new one is used from the next handshake on;
// a bad one is refused, logged, and the current one stays.
func (g *Gateway) WatchCertificates(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = DefaultCertificatePoll
	}
	g.reloading.Lock()
	defer g.reloading.Unlock()
	g.certWatch = &certificateWatch{ctx: ctx, every: every}
	for _, v := range g.vendorsNow() {
		g.watch(v)
	}
}

// ReloadCertificates reloads them all once (SIGHUP); the errors name the
// vendor and why its new certificate or bundle was refused.
func (g *Gateway) ReloadCertificates(ctx context.Context) []error {
	var errs []error
	vendors := g.vendorsNow()
	for _, id := range slices.Sorted(maps.Keys(vendors)) {
		v := vendors[id]
		if v.identity != nil {
			if err := v.identity.Reload(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if v.bundle != nil {
			if err := v.bundle.Reload(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

// ReadyChecks are the /readyz conditions of vendor client certificates: the
// check fails while a certificate of a vendor in service is within
// CertificateReadyWindow of expiry, naming each such vendor.
func (g *Gateway) ReadyChecks() []admin.ReadyCheck {
	return []admin.ReadyCheck{{Name: "vendor client certificates", Check: g.certificatesReady}}
}

func (g *Gateway) certificatesReady() error {
	var errs []error
	vendors := g.vendorsNow()
	for _, id := range slices.Sorted(maps.Keys(vendors)) {
		v := vendors[id]
		if v.identity == nil {
			continue
		}
		notAfter := v.identity.Leaf().NotAfter
		switch left := notAfter.Sub(g.now()); {
		case left <= 0:
			errs = append(errs, fmt.Errorf("vendor %s client certificate: expired on %s", id, notAfter.UTC().Format(time.DateOnly)))
		case left < CertificateReadyWindow:
			errs = append(errs, fmt.Errorf("vendor %s client certificate: expires in %d days, on %s: renew it", id, int(left.Hours()/24), notAfter.UTC().Format(time.DateOnly)))
		}
	}
	return errors.Join(errs...)
}

// Certificates are the vendors' certificates in use: each vendor's client
// certificate (where its key is, and whether its issuer revoked it) and the
// CAs its server certificate must chain to.
func (g *Gateway) Certificates(ctx context.Context) []certs.InUse {
	var out []certs.InUse
	now := g.now()
	vendors := g.vendorsNow()
	for _, id := range slices.Sorted(maps.Keys(vendors)) {
		v := vendors[id]
		if v.identity != nil {
			out = append(out, g.clientCertificateInUse(ctx, v, now))
		}
		if v.bundle != nil {
			for _, c := range v.bundle.Certificates() {
				u := certs.Describe("vendor-ca", c, now)
				u.Vendor = id
				out = append(out, u)
			}
		}
	}
	return out
}

func (g *Gateway) clientCertificateInUse(ctx context.Context, v *vendor, now time.Time) certs.InUse {
	pair, _ := v.identity.GetClientCertificate(nil)
	leaf := pair.Leaf
	u := certs.Describe("vendor-client", leaf, now)
	u.Vendor, u.Kind, u.Key = v.cfg.ID, certs.KindOf(leaf), keyLocation(v.cfg.ClientCertificate)
	if v.identity.ServerCertificate() {
		u.Warnings = append(u.Warnings, "a TLS server certificate presented as the client's, as the profile allows")
	}
	var chain []*x509.Certificate
	for _, der := range pair.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			chain = append(chain, c)
		}
	}
	switch issuer := certs.IssuerOf(leaf, chain...); {
	case !certs.Revocable(leaf):
		u.Revocation += ": it names no OCSP responder or CRL"
	case issuer == nil:
		u.Revocation += ": its issuer is not in the chain configured"
	default:
		ctx, cancel := context.WithTimeout(ctx, v.cfg.Timeouts.TLSHandshake.Duration)
		defer cancel()
		u.Revocation = certs.RevocationOf(g.revocation.Check(ctx, leaf, issuer, nil))
	}
	return u
}

// keyLocation says where a client certificate's key is, naming no secret.
func keyLocation(cc *configs.ClientCertificate) string {
	src := func(s *configs.Source) string {
		if s.File != "" {
			return "file:" + s.File
		}
		return "secret:" + s.Secret
	}
	switch {
	case cc.PKCS11 != nil:
		return tokenKey(cc.PKCS11, "").String()
	case cc.PKCS12 != nil:
		return "pkcs12 " + src(cc.PKCS12)
	case cc.Key != nil:
		return src(cc.Key)
	}
	return ""
}
