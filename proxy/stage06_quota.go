package proxy

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/consentgate/consentgate/refusal"
)

// admitQuota is stage 6, the budgets: the vendor's (when the vendor has said
// it is spent, or the profile's bucket is empty, the app gets 429 from
// consentgate and the vendor no call it would refuse, quota.go), then the
// end user's with the app for an operation with per_consent (a verify mode).
func (g *Gateway) admitQuota(c *call) *refusal.Refusal {
	v := c.rt.vendor
	ok, refused := v.quota.admit(c.id.Name, g.now())
	if ok {
		return g.spendConsentBudget(c)
	}
	h := http.Header{}
	refused.header(h)
	return &refusal.Refusal{Status: http.StatusTooManyRequests, Kind: refusal.Quota, Title: "Vendor quota exhausted",
		Detail: fmt.Sprintf("vendor %s will take no more calls for now; retry after the Retry-After seconds", v.cfg.ID),
		Header: h, Note: "vendor quota exhausted"}
}

// spendConsentBudget counts the call against its consent's budget for the
// operation, and refuses it once the budget is spent until the window ends.
func (g *Gateway) spendConsentBudget(c *call) *refusal.Refusal {
	b, op := c.rt.op.cfg.PerConsent, c.rt.op.cfg.ID
	if b == nil || c.caller == nil {
		return nil
	}
	ok, until, err := g.consents.Spend(c.ctx, c.caller.id, op, b.Calls, b.Per.Duration)
	switch {
	case err != nil:
		g.log.Error("consent registry unavailable: refusing the call", logRequestID, c.ex.requestID, logError, err.Error())
		return refusal.New(http.StatusServiceUnavailable, refusal.ConsentStore, "Consent registry unavailable",
			"the vendor was not called").AsFailure(err.Error())
	case ok:
		return nil
	}
	h := http.Header{}
	h.Set("Retry-After", strconv.Itoa(int(max(time.Second, until.Sub(g.now())).Seconds())))
	return &refusal.Refusal{Status: http.StatusTooManyRequests, Kind: refusal.ConsentLimit, Title: "Consent call limit reached",
		Detail: fmt.Sprintf("this consent may call %s %d times per %s; retry after the Retry-After seconds", op, b.Calls, b.Per),
		Header: h, Note: "consent call limit reached"}
}
