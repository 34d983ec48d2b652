package proxy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/consentgate/consentgate/admin"
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
