package proxy

import (
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/oauth"
)

// vendorSet is the vendor profiles in service, compiled. A reload swaps in a
// whole new set; a call keeps the vendor it was routed to, and so finishes
// under the profile it started with.
type vendorSet struct {
	byID  map[string]*vendor
	hosts map[string][]*vendor // lower-case public host → its vendors (forward proxy)
}

func newVendorSet(byID map[string]*vendor) *vendorSet {
	s := &vendorSet{byID: byID, hosts: map[string][]*vendor{}}
	for _, v := range byID {
		h := strings.ToLower(v.publicHost())
		s.hosts[h] = append(s.hosts[h], v)
	}
	return s
}

// vendorsNow is the set in service.
func (g *Gateway) vendorsNow() map[string]*vendor { return g.set.Load().byID }

// VendorChanges is what a reload of the vendor profiles changed, by vendor id.
type VendorChanges struct {
	Added, Changed, Removed []string
}

// Empty reports whether the reload changed nothing.
func (c VendorChanges) Empty() bool { return len(c.Added)+len(c.Changed)+len(c.Removed) == 0 }

// ReloadVendors puts vendors in service in place of the profiles serving now,
// all at once or not at all. A profile equal to the one in service keeps its
// compiled vendor (connections, quota, tokens); a new or changed one is
// compiled as at start-up, its certificates checked and its secrets read, and
// any failure leaves every profile in service as it was. Calls in flight
// finish under the profile they started with; a replaced vendor's idle
// connections are closed once its longest call must have ended.
func (g *Gateway) ReloadVendors(ctx context.Context, vendors []*configs.Vendor) (VendorChanges, error) {
	g.reloading.Lock()
	defer g.reloading.Unlock()
	old := g.set.Load()
	byID := map[string]*vendor{}
	var ch VendorChanges
	var fresh []*vendor
	discard := func(err error) (VendorChanges, error) {
		for _, v := range fresh {
			v.retire(0)
		}
		return VendorChanges{}, err
	}
	for _, vc := range vendors {
		prev := old.byID[vc.ID]
		files := g.compiledFiles(vc)
		if prev != nil && prev.cfg.Same(vc) && prev.files == files {
			byID[vc.ID] = prev
			continue
		}
		v, err := g.compileVendor(ctx, vc)
		if err != nil {
			return discard(err)
		}
		v.files = files
		fresh, byID[vc.ID] = append(fresh, v), v
		if prev == nil {
			ch.Added = append(ch.Added, vc.ID)
		} else {
			ch.Changed = append(ch.Changed, vc.ID)
		}
	}
	for id := range old.byID {
		if byID[id] == nil {
			ch.Removed = append(ch.Removed, id)
		}
	}
	logins := loginsOf(byID)
	if g.broker == nil && len(logins) > 0 {
		return discard(fmt.Errorf("a vendor with an end-user login (oauth2_authorization_code) cannot be added while none was configured at start-up: restart to add it"))
	}
	// The names audit records may show (knownNames) are those of the set a
	// vendor was compiled into: a vendor kept from before redacts a name only
	// a newer profile uses, which errs on the side of the person.
	known := knownNames(byID)
	for _, v := range fresh {
		for _, op := range v.ops {
			op.known = known
		}
	}
	g.set.Store(newVendorSet(byID))
	if g.broker != nil {
		g.broker.SetLogins(logins)
	}
	for _, v := range fresh {
		g.watch(v)
	}
	for _, id := range append(slices.Clone(ch.Changed), ch.Removed...) {
		old.byID[id].retire(old.byID[id].cfg.Timeouts.Request.Duration)
	}
	slices.Sort(ch.Added)
	slices.Sort(ch.Changed)
	slices.Sort(ch.Removed)
	return ch, nil
}

// compiledFiles is a digest of the files a vendor's profile names that are
// read only when it is compiled (its callback's CAs, its egress proxy's CA):
// new content behind the same path makes a reload compile the vendor again.
// The client certificate and upstream.ca_file are watched on their own.
func (g *Gateway) compiledFiles(vc *configs.Vendor) [sha256.Size]byte {
	var paths []string
	if cb := vc.Callback; cb != nil {
		paths = append(paths, cb.ClientCAFile, cb.ForwardCAFile)
	}
	if p := vc.Egress.Proxy; p != nil {
		paths = append(paths, p.CAFile)
	}
	h := sha256.New()
	for _, p := range paths {
		if p == "" {
			continue
		}
		data, err := os.ReadFile(g.cfg.ResolvePath(p))
		if err != nil {
			// Unreadable now: compile again, which reports why.
			data = []byte("unreadable: " + err.Error())
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(data))
		h.Write(data)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

func loginsOf(byID map[string]*vendor) []*oauth.Login {
	var logins []*oauth.Login
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		if l := byID[id].login; l != nil {
			logins = append(logins, l)
		}
	}
	return logins
}

// certificateWatch is where WatchCertificates keeps watching: the vendors
// a reload compiles are watched from then on, under the same context.
type certificateWatch struct {
	ctx   context.Context
	every time.Duration
}

// watch starts reloading v's client certificate and CA bundle, once
// WatchCertificates has begun, until v is retired or the watch ends.
func (g *Gateway) watch(v *vendor) {
	w := g.certWatch
	if w == nil || (v.identity == nil && v.bundle == nil) {
		return
	}
	ctx, stop := context.WithCancel(w.ctx)
	v.stopWatch = stop
	if v.identity != nil {
		go v.identity.Watch(ctx, w.every, g.log)
	}
	if v.bundle != nil {
		go v.bundle.Watch(ctx, w.every, g.log)
	}
}

// retire takes v out of service: its certificates are no longer watched, and
// its idle connections (to the vendor, and to the app its callbacks go to) are
// closed now and again after drain, when every call it carried must have
// ended (the request timeout).
func (v *vendor) retire(drain time.Duration) {
	if v.stopWatch != nil {
		v.stopWatch()
	}
	closeIdle := func() {
		if v.transport != nil {
			v.transport.closeIdle()
		}
		if v.callback != nil {
			v.callback.forward.CloseIdleConnections()
		}
	}
	closeIdle()
	if drain > 0 {
		time.AfterFunc(drain, closeIdle)
	}
}

// certificateExpiry is consentgate_vendor_certificate_expiry_days of the
// vendors in service, read at each scrape, so a reload needs no registering.
type certificateExpiry struct {
	g    *Gateway
	desc *prometheus.Desc
}

func newCertificateExpiry(g *Gateway) *certificateExpiry {
	return &certificateExpiry{g: g, desc: prometheus.NewDesc("consentgate_vendor_certificate_expiry_days",
		"Days until the vendor client certificate in use expires (fractional; negative once expired).", []string{"vendor"}, nil)}
}

func (c *certificateExpiry) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *certificateExpiry) Collect(ch chan<- prometheus.Metric) {
	now := c.g.now()
	for id, v := range c.g.vendorsNow() {
		if v.identity != nil {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v.identity.Leaf().NotAfter.Sub(now).Hours()/24, id)
		}
	}
}

// logCertificate says at start-up and on each reload which certificate a
// compiled vendor presents, and warns when it expires soon.
func (g *Gateway) logCertificate(v *vendor) {
	if v.identity == nil {
		return
	}
	now := g.now()
	r := certs.Inspect(v.identity.Leaf(), now)
	g.log.Info("vendor client certificate in use", "vendor", v.cfg.ID, "kind", r.Kind, "issuer_family", r.IssuerFamily,
		"server_certificate_as_client", v.identity.ServerCertificate(), "not_after", r.NotAfter)
	if r.NotAfter.Sub(now) < certs.ExpiryWarning {
		g.log.Warn("vendor client certificate expires soon", "vendor", v.cfg.ID, "days_left", r.DaysLeft, "not_after", r.NotAfter)
	}
}

// Profiles are the vendor profiles in service, by id order: what a policy
// replay and the access report read of them.
func (g *Gateway) Profiles() []*configs.Vendor {
	vendors := g.vendorsNow()
	out := make([]*configs.Vendor, 0, len(vendors))
	for _, id := range slices.Sorted(maps.Keys(vendors)) {
		out = append(out, vendors[id].cfg)
	}
	return out
}
