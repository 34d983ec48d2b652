package proxy

import "github.com/consentgate/consentgate/refusal"

// checkResources is stage 5: every vendor id the call names (a banqware user,
// a Biometric.Vision session) was created for this end user and app
// (resources.go).
func (g *Gateway) checkResources(c *call) *refusal.Refusal {
	if cons := c.in.Consent; cons != nil {
		c.caller = &consentOf{id: cons.ID, subject: cons.Subject, app: c.id.Name}
	}
	named, ref := g.checkOwnership(c.ctx, c.rt.vendor, c.rt.op, c.req, c.rt.path, c.caller)
	c.named = named
	return ref
}
