package proxy

import (
	"fmt"
	"net/http"

	"github.com/consentgate/consentgate/refusal"
)

// admitQuota is stage 6, the vendor's budget: when the vendor has said it is
// spent, or the profile's bucket is empty, the app gets 429 from consentgate
// and the vendor no call it would refuse (quota.go).
func (g *Gateway) admitQuota(c *call) *refusal.Refusal {
	v := c.rt.vendor
	ok, refused := v.quota.admit(c.id.Name, g.now())
	if ok {
		return nil
	}
	h := http.Header{}
	refused.header(h)
	return &refusal.Refusal{Status: http.StatusTooManyRequests, Kind: refusal.Quota, Title: "Vendor quota exhausted",
		Detail: fmt.Sprintf("vendor %s will take no more calls for now; retry after the Retry-After seconds", v.cfg.ID),
		Header: h, Note: "vendor quota exhausted"}
}
