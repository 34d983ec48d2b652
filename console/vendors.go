package console

import (
	"net/http"
	"time"

	"github.com/consentgate/consentgate/certs"
)

// Vendor is what the vendors page shows of one vendor: the gateway's own
// state, read where /metrics and /v1/certificates read it.
type Vendor struct {
	ID           string
	Certificates []certs.InUse
	// Quota: the profile's budget, and what the vendor last said of its own.
	PerSecond        float64
	Burst            int
	Remaining, Limit int // -1 and 0 while the vendor has not said
	BlockedUntil     time.Time
	// SecretsFetched is when the secret store last confirmed the oldest of
	// the vendor's credential secrets (zero: none); SecretsProblem is what is
	// wrong with any of them ("unavailable", "stale", "not read yet").
	SecretsFetched time.Time
	SecretsProblem string
	// Calls since start by what the app was answered: 2xx, 4xx, 5xx.
	Calls, OK, ClientErrors, ServerErrors float64
}

// Other is the calls answered otherwise (1xx, 3xx, or the app gone).
func (v Vendor) Other() float64 { return v.Calls - v.OK - v.ClientErrors - v.ServerErrors }

// SecretsAge is how old the vendor's oldest cached secret is, rounded to the
// second; "" when there is none.
func (v Vendor) SecretsAge(now time.Time) string {
	if v.SecretsFetched.IsZero() {
		return ""
	}
	return now.Sub(v.SecretsFetched).Round(time.Second).String()
}

// ErrorRate is the share of calls answered 5xx.
func (v Vendor) ErrorRate() float64 {
	if v.Calls == 0 {
		return 0
	}
	return v.ServerErrors / v.Calls
}

// vendorsData is the vendors page.
type vendorsData struct {
	Vendors []Vendor
	// SecretsAge is how long ago the secret store last confirmed the oldest
	// cached secret; negative when the store caches nothing.
	SecretsAge time.Duration
	Now        time.Time
}

func (c *console) vendors(w http.ResponseWriter, r *http.Request) {
	if c.o.Vendors == nil {
		c.fail(w, r, http.StatusNotFound, "This gateway shows no vendors page.")
		return
	}
	d := vendorsData{Vendors: c.o.Vendors(r.Context()), SecretsAge: -1, Now: c.o.Now()}
	if c.o.SecretsAge != nil {
		d.SecretsAge = c.o.SecretsAge().Round(time.Second)
	}
	c.render(w, r, "vendors.html", "Vendors", d)
}
