package proxy

import (
	"github.com/consentgate/consentgate/identity"
	"github.com/consentgate/consentgate/refusal"
)

// identify is stage 1: who is calling. identity.Middleware read it from the
// verified certificate, or the forward proxy's tunnel carried it in the
// context (an app cannot set a context). Only apps call vendors.
func (g *Gateway) identify(c *call) *refusal.Refusal {
	id, ref := identity.Require(c.ctx, identity.RoleApp)
	c.id, c.ex.app, c.ex.role = id, id.Name, id.Role
	return ref
}
