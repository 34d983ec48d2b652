package proxy

import "github.com/consentgate/consentgate/refusal"

// minimiseRequest is stage 7: only declared fields the decision permits are
// sent (on a report-only pass-through, every declared field), with the values
// of the tokens the decision reveals (reveal.go).
func (g *Gateway) minimiseRequest(c *call) *refusal.Refusal {
	drop := c.decision.Request.Drop
	if c.passthrough {
		drop = nil
	}
	sent, err := c.req.minimize(drop)
	if err != nil {
		return asRefusal(err)
	}
	if ref := sent.withPath(c.rt, drop); ref != nil {
		return ref
	}
	c.sent = sent
	c.ex.requestDisclosed, c.ex.requestWithheld = sent.disclosed, sent.withheld
	c.ex.categories = disclosedCategories(sent.disclosed, c.rt.op.sent)
	// What is sent goes with values in place of the tokens the purpose reveals.
	return g.reveal(c)
}
