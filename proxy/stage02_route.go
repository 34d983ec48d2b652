package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/refusal"
)

// route is stage 2: the vendor operation the call is for; anything not in a
// profile is refused. A body announced larger than the operation takes is
// refused before anything else is done with it.
func (g *Gateway) route(c *call) *refusal.Refusal {
	rt, ref := g.findRoute(c.r)
	if ref != nil {
		return ref
	}
	op := rt.op
	c.rt = rt
	c.ex.vendor, c.ex.op, c.ex.pathTemplate = rt.vendor.cfg.ID, op.cfg.ID, op.cfg.Path
	c.ex.tenant = op.cfg.Class == configs.ClassTenant
	if c.r.ContentLength > op.cfg.MaxRequestBytes {
		return refusal.New(http.StatusRequestEntityTooLarge, refusal.TooLarge, "Request body too large",
			fmt.Sprintf("operation %s accepts at most %d bytes", op.cfg.ID, op.cfg.MaxRequestBytes))
	}
	c.ex.bytesIn = c.r.ContentLength
	return nil
}

// findRoute finds the vendor operation of a gateway path.
func (g *Gateway) findRoute(r *http.Request) (*route, *refusal.Refusal) {
	noRoute := func(detail string) *refusal.Refusal {
		return refusal.New(http.StatusNotFound, refusal.NoRoute, "Not Found", detail)
	}
	vendorID, rest, ok := splitGatewayPath(r.URL.EscapedPath())
	if !ok {
		return nil, noRoute("gateway paths are /v/<vendor>/<vendor path>")
	}
	v := g.vendorsNow()[vendorID]
	if v == nil {
		return nil, noRoute(fmt.Sprintf("no vendor %q is configured", vendorID))
	}
	op, err := v.match(r.Method, rest)
	switch {
	case errors.Is(err, ErrBadPath):
		return nil, refusal.New(http.StatusBadRequest, refusal.BadRequest, "Bad Request", err.Error())
	case err != nil:
		if methods := v.methodsFor(rest); len(methods) > 0 {
			return nil, noRoute(fmt.Sprintf("vendor %s allows only %s on this path", vendorID, strings.Join(methods, ", ")))
		}
		return nil, noRoute(fmt.Sprintf("vendor %s has no operation for %s on this path", vendorID, r.Method))
	}
	return &route{vendor: v, op: op, path: rest}, nil
}
