package proxy

import (
	"errors"
	"net/http"

	"github.com/consentgate/consentgate/refusal"
)

// read is stage 4: the request as the operation declares it (body media type,
// query, headers), bounded in size, depth and breadth, and read whole because
// only the fields the decision permits are sent (request.go).
func (g *Gateway) read(c *call) *refusal.Refusal {
	req, err := g.readRequest(c.ctx, c.r, c.rt.vendor, c.rt.op)
	if err != nil {
		ref := asRefusal(err)
		if ref.Kind == refusal.GatewayBusy {
			ref.Header = retryIn("1")
		}
		return ref
	}
	c.req, c.ex.requestWithheld = req, req.present
	return nil
}

// asRefusal is err as the refusal it is; any other error is a bad request.
func asRefusal(err error) *refusal.Refusal {
	var ref *refusal.Refusal
	if errors.As(err, &ref) {
		return ref
	}
	return refusal.New(http.StatusBadRequest, refusal.BadRequest, "Bad request", err.Error())
}
