package proxy

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/consentgate/consentgate/oauth"
	"github.com/consentgate/consentgate/policy"
	"github.com/consentgate/consentgate/refusal"
)

// attachCredentials is stage 9: the vendor's credentials, its callback URL
// token, and the body rewritten with them. The vendor is not called without
// them (credentials.go).
func (g *Gateway) attachCredentials(c *call) *refusal.Refusal {
	v, op, ex, sent := c.rt.vendor, c.rt.op, c.ex, c.sent
	ctx, span := g.stage(c.ctx, spanCredentials)
	inj, err := v.credentialsFor(ctx, op, g.secrets, g.bearer(c.id.Name, c.in.Consent))
	span.End()
	if errors.Is(err, oauth.ErrNotAuthorized) {
		return refusal.New(http.StatusFailedDependency, refusal.AuthorizationNeeded, "End user authorization required",
			fmt.Sprintf("the end user has not authorised vendor %s for consent %q, or the vendor has withdrawn it; start it with GET /v1/oauth/%s/start on the admin listener; the vendor was not called",
				v.cfg.ID, c.in.ConsentID, v.cfg.ID)).WithNote(err.Error())
	}
	if err != nil {
		g.log.Error("vendor credentials unavailable: refusing the call", logRequestID, ex.requestID, logVendor, v.cfg.ID, logError, err.Error())
		return credentialsUnavailable(v, "credentials", err)
	}
	if sent.body, err = v.withCallbackToken(c.ctx, g.secrets, op, sent.body, inj); err != nil {
		return credentialsUnavailable(v, "callback URL token", err)
	}
	if sent.body, err = rewriteBody(sent.body, sent.contentType, v.strip.body, inj.body); err != nil {
		return refusal.New(http.StatusBadRequest, refusal.MalformedBody, "Bad request body", err.Error())
	}
	if len(sent.body) > 0 && sent.contentType == "" {
		sent.contentType = mediaName(op.cfg.RequestBody)
	}
	c.inj = inj
	return nil
}

func credentialsUnavailable(v *vendor, what string, err error) *refusal.Refusal {
	return refusal.New(http.StatusServiceUnavailable, refusal.Credentials, "Vendor credentials unavailable",
		fmt.Sprintf("consentgate could not obtain the %s of vendor %s; the vendor was not called", what, v.cfg.ID)).
		AsFailure(err.Error())
}

// bearer is the end user's token source for the consent a call is under, when
// the gateway brokers logins.
func (g *Gateway) bearer(app string, c *policy.Consent) oauth.Bearer {
	if g.broker == nil {
		return nil
	}
	return g.broker.BearerFor(app, c)
}
