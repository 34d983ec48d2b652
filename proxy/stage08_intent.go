package proxy

import (
	"net/http"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/refusal"
)

// recordIntent is stage 8: the intent record is durable before any vendor
// secret is read or the vendor contacted. It carries the identifiers the
// request discloses, as HMACs.
func (g *Gateway) recordIntent(c *call) *refusal.Refusal {
	ex := c.ex
	sk, err := g.secrets.Get(c.ctx, g.subjectRef)
	if err != nil {
		// A secret-provider failure (Vault away longer than max_stale), not an
		// audit one: the refusal is recorded, without identifiers.
		g.log.Error("identifier HMAC key unavailable: refusing the call", logRequestID, ex.requestID, logError, err.Error())
		return refusal.New(http.StatusServiceUnavailable, refusal.Credentials, "Key unavailable",
			"consentgate could not read its identifier key from the secret provider; the vendor was not called").
			AsFailure("identifier key unavailable")
	}
	c.identifiers = g.identifierHasher(sk.Value)
	for _, val := range c.sent.identifiers {
		ex.identifiers = append(ex.identifiers, c.identifiers.HMAC(val))
	}
	if err := g.record(c.ctx, ex, audit.KindIntent); err != nil {
		return auditUnavailable("audit intent not written")
	}
	if c.passthrough || !needsHashKey(&c.decision) {
		return nil
	}
	s, err := g.secrets.Get(c.ctx, g.hashRef)
	if err != nil {
		g.log.Error("field hash key unavailable: refusing the call", logRequestID, ex.requestID, logError, err.Error())
		return refusal.New(http.StatusServiceUnavailable, refusal.Credentials, "Key unavailable", "the vendor was not called").
			AsFailure(err.Error())
	}
	c.hashKey = []byte(s.Value)
	return nil
}

// identifierHasher hashes identifiers under key, the identifier key as the
// secret provider gives it for this call: the hasher is made anew when the key
// changes, and reused while it does not.
func (g *Gateway) identifierHasher(key string) *audit.Hasher {
	if h := g.identifiers.Load(); h != nil && h.Keyed(key) {
		return h
	}
	h := audit.NewHasher([]byte(key))
	g.identifiers.Store(h)
	return h
}
