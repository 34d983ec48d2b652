package proxy

import (
	"context"
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
// secret) and CA bundle every interval until ctx ends. A new one is used from
// the next handshake on; a bad one is refused, logged, and the current one
// stays.
func (g *Gateway) WatchCertificates(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = DefaultCertificatePoll
	}
	for _, v := range g.vendors {
		if v.identity != nil {
			go v.identity.Watch(ctx, every, g.log)
		}
		if v.bundle != nil {
			go v.bundle.Watch(ctx, every, g.log)
		}
	}
}

// ReloadCertificates reloads them all once (SIGHUP); the errors name the
// vendor and why its new certificate or bundle was refused.
func (g *Gateway) ReloadCertificates(ctx context.Context) []error {
	var errs []error
	for _, id := range g.vendorIDs() {
		v := g.vendors[id]
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

// ReadyChecks are the /readyz conditions of vendor client certificates: each
// fails once its certificate is within CertificateReadyWindow of expiry.
func (g *Gateway) ReadyChecks() []admin.ReadyCheck {
	var checks []admin.ReadyCheck
	for _, id := range g.vendorIDs() {
		v := g.vendors[id]
		if v.identity == nil {
			continue
		}
		checks = append(checks, admin.ReadyCheck{
			Name: "vendor " + id + " client certificate",
			Check: func() error {
				notAfter := v.identity.Leaf().NotAfter
				left := notAfter.Sub(g.now())
				switch {
				case left <= 0:
					return fmt.Errorf("expired on %s", notAfter.UTC().Format(time.DateOnly))
				case left < CertificateReadyWindow:
					return fmt.Errorf("expires in %d days, on %s: renew it", int(left.Hours()/24), notAfter.UTC().Format(time.DateOnly))
				}
				return nil
			},
		})
	}
	return checks
}

func (g *Gateway) vendorIDs() []string { return slices.Sorted(maps.Keys(g.vendors)) }
