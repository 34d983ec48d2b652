package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/audit/archive"
	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/console"
	"github.com/consentgate/consentgate/policy"
	"github.com/consentgate/consentgate/proxy"
	"github.com/consentgate/consentgate/secrets"
)

// newConsole is the web console on the admin listener, reading the gateway's
// own parts: the ones the admin API, /metrics and the CLI read.
func newConsole(alog *audit.Log, consents *consent.Registry, engine *policy.Engine, gw *proxy.Gateway, p secrets.Provider,
	reg prometheus.Gatherer, inUse func(context.Context) []certs.InUse, retention *archive.Retention, log *slog.Logger) http.Handler {
	o := console.Options{Audit: alog, Consents: consents, Policy: engine, SubjectHMAC: gw.SubjectHMAC,
		Fields: func(vendor, op string) (map[string]string, map[string]string, []string) {
			return configs.OperationFields(gw.Profiles(), vendor, op)
		},
		Erasure: func() map[string]string { return erasureWays(gw.Profiles()) },
		DryRun:  dryRunInWorker,
		Vendors: func(ctx context.Context) []console.Vendor { return vendorStates(ctx, gw, p, reg, inUse) },
		Logger:  log.With("component", "console"), Secret: randomKey()}
	if c, ok := p.(secrets.Cached); ok {
		o.SecretsAge = c.CacheAge
	}
	if retention != nil {
		o.Archived = func(ctx context.Context, first uint64, tmp string) ([]string, error) {
			return archive.Archived(ctx, retention.Store, first, tmp)
		}
	}
	return console.New(o)
}

// vendorStates are the vendors page's rows: certificates, quota, and the calls
// answered since start by status class (consentgate_requests_total).
func vendorStates(ctx context.Context, gw *proxy.Gateway, p secrets.Provider, reg prometheus.Gatherer, inUse func(context.Context) []certs.InUse) []console.Vendor {
	var out []console.Vendor
	byID := map[string]*console.Vendor{}
	for _, q := range gw.Quotas() {
		out = append(out, console.Vendor{ID: q.Vendor, PerSecond: q.PerSecond, Burst: q.Burst, Remaining: q.Remaining,
			Limit: q.Limit, BlockedUntil: q.BlockedUntil})
	}
	for i := range out {
		byID[out[i].ID] = &out[i]
	}
	for _, prof := range gw.Profiles() {
		if v := byID[prof.ID]; v != nil {
			v.SecretsFetched, v.SecretsProblem = secretsState(ctx, p, prof)
		}
	}
	for _, c := range inUse(ctx) {
		if v := byID[c.Vendor]; v != nil {
			v.Certificates = append(v.Certificates, c)
		}
	}
	families, err := reg.Gather()
	if err != nil {
		return out
	}
	for _, f := range families {
		if f.GetName() != "consentgate_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			var vendor, status string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "vendor":
					vendor = l.GetValue()
				case "status":
					status = l.GetValue()
				}
			}
			v := byID[vendor]
			if v == nil || status == "" {
				continue
			}
			n := m.GetCounter().GetValue()
			v.Calls += n
			switch status[0] {
			case '2':
				v.OK += n
			case '4':
				v.ClientErrors += n
			case '5':
				v.ServerErrors += n
			}
		}
	}
	return out
}

// secretsState is when the secret store last confirmed the oldest of a
// vendor's credential secrets (zero when it has none), and what is wrong with
// any of them: "unavailable" (refused, deleted, or the store unreachable),
// "stale" (older than the store may serve) or "not read yet" (no call needed
// it). A cache is only peeked at: a status page never reads through.
func secretsState(ctx context.Context, p secrets.Provider, v *configs.Vendor) (time.Time, string) {
	var oldest time.Time
	var stale, notRead, unavailable bool
	for _, c := range v.Credentials {
		for _, r := range []string{c.Secret, c.ClientID, c.ClientSecret} {
			ref, err := secrets.ParseRef(r)
			if err != nil {
				continue
			}
			var s secrets.Secret
			if pk, ok := p.(secrets.Peeker); ok {
				s, err = pk.Peek(ref)
			} else {
				s, err = p.Get(ctx, ref)
			}
			var se *secrets.StaleError
			switch {
			case errors.As(err, &se):
				stale = true
			case errors.Is(err, secrets.ErrNotRead):
				notRead = true
			case err != nil:
				unavailable = true
			case oldest.IsZero() || s.FetchedAt.Before(oldest):
				oldest = s.FetchedAt
			}
		}
	}
	switch {
	case unavailable:
		return oldest, "unavailable"
	case stale:
		return oldest, "stale"
	case notRead:
		return oldest, "not read yet"
	}
	return oldest, ""
}
