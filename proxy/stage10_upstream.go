package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/consentgate/consentgate/minimise"
	"github.com/consentgate/consentgate/refusal"
)

// callVendor is stage 10: the reverse proxy's hooks (rewrite, then stage 11's
// modifyResponse) apply what the stages prepared; upstreamError answers when
// the vendor cannot be reached or its response is refused.
func (g *Gateway) callVendor(c *call) {
	v, sent := c.rt.vendor, c.sent
	target := v.upstreamURL(sent.path, sent.query, c.inj.query)
	ctx, cancel := context.WithTimeout(c.ctx, v.cfg.Timeouts.Request.Duration)
	defer cancel()
	ob := &outbound{ex: c.ex, vendor: v, op: c.rt.op, url: target, req: sent, named: c.named, caller: c.caller, inj: c.inj,
		scrub: outboundScrubber(c), decision: &c.decision, passthrough: c.passthrough, hashKey: c.hashKey,
		identifiers: c.identifiers, sent: time.Now()}
	c.ex.outcome = outcomeForwarded
	v.proxy.ServeHTTP(c.w, c.r.WithContext(context.WithValue(ctx, outboundKey{}, ob)))
}

type outboundKey struct{}

// outboundScrubber redacts, wherever the vendor echoes them, the secrets
// injected into the call and the values revealed in place of the app's tokens.
func outboundScrubber(c *call) *scrubber {
	return newScrubber(append(slices.Clip(c.inj.secrets), c.revealed...))
}

// upstreamURL joins the base URL with the vendor path and the app's query minus
// anything credential-like, then adds the injected query credentials.
func (v *vendor) upstreamURL(escapedPath string, appQuery, inject url.Values) *url.URL {
	q := url.Values{}
	for k, vals := range appQuery {
		if !containsFold(v.strip.query, k) {
			q[k] = vals
		}
	}
	for k, vals := range inject {
		q[k] = vals
	}
	u := *v.base
	basePath := strings.TrimSuffix(v.base.EscapedPath(), "/")
	u.RawPath = basePath + escapedPath
	u.Path, _ = url.PathUnescape(u.RawPath)
	u.RawQuery = q.Encode()
	return &u
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// rewrite builds the outbound request. Out's headers are built anew: the app's
// declared headers the decision kept, the body's media type, and what
// consentgate injects; nothing else of the app's reaches the vendor.
func (v *vendor) rewrite(pr *httputil.ProxyRequest) {
	ob := pr.In.Context().Value(outboundKey{}).(*outbound)
	out := pr.Out
	out.URL = ob.url
	out.Host = ""
	h := http.Header{}
	for k, vals := range ob.req.header {
		h[k] = vals
	}
	for _, name := range v.strip.headers {
		h.Del(name)
	}
	if ob.req.contentType != "" {
		h.Set("Content-Type", ob.req.contentType)
	}
	// Without Accept-Encoding the transport asks for gzip itself and
	// decompresses, so every response can be inspected.
	for k, vals := range ob.inj.header {
		h[k] = vals
	}
	out.Header = h
	body := ob.req.body
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	if len(body) == 0 && (pr.In.Method == http.MethodGet || pr.In.Method == http.MethodDelete) {
		out.Body = http.NoBody
	}
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
}

// upstreamError answers the app when the vendor could not be reached or its
// response was refused (stage 11 returned an error). The logged error is
// stripped of the URL (which can carry a query credential) and scrubbed of
// injected values.
func (g *Gateway) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	ob, _ := r.Context().Value(outboundKey{}).(*outbound)
	if ob == nil { // not a call of ours: nothing to record it against
		refusal.New(http.StatusBadGateway, refusal.VendorUnreachable, "Vendor unreachable", "").Write(w, w.Header().Get("X-Request-Id"))
		return
	}
	msg := ob.scrub.string(safeUpstreamError(err))
	if errors.Is(err, errResourceStore) {
		g.log.Error("vendor resource could not be bound: its id was withheld", logRequestID, ob.ex.requestID, logError, msg)
	}
	g.answer(r.Context(), w, ob.ex, upstreamRefusal(err).AsFailure(msg))
}

// upstreamRefusal is what the app is told of a failed vendor call.
func upstreamRefusal(err error) *refusal.Refusal {
	switch {
	case errors.Is(err, ErrAuditUnavailable):
		return auditUnavailable("")
	case errors.Is(err, errResourceStore):
		return refusal.New(http.StatusServiceUnavailable, refusal.ConsentStore, "Consent registry unavailable",
			"the vendor created a resource consentgate could not bind to the consent, so its answer was not passed on")
	case errors.Is(err, ErrUnexpectedEncoding) || errors.Is(err, minimise.ErrUnparsable) || errors.Is(err, errResourceConflict):
		return refusal.New(http.StatusBadGateway, refusal.VendorRefused, "Vendor response refused",
			"the vendor's response could not be inspected, so it was not passed on")
	case errors.Is(err, errTokenVault) || errors.Is(err, minimise.ErrNoTokens):
		return refusal.New(http.StatusServiceUnavailable, refusal.TokenVault, "Token vault unavailable",
			"a value the decision tokenizes could not be tokenized, so the vendor's answer was not passed on")
	case errors.Is(err, errEgressCredentials):
		return refusal.New(http.StatusServiceUnavailable, refusal.Credentials, "Secret unavailable",
			"the egress proxy's credentials could not be read, so the vendor was not called")
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return refusal.New(http.StatusGatewayTimeout, refusal.VendorTimeout, "Vendor timed out", "")
	case errors.Is(err, context.Canceled):
		// The app went away; there is nobody to answer.
		return refusal.New(statusClientGone, refusal.VendorUnreachable, "", "")
	}
	return refusal.New(http.StatusBadGateway, refusal.VendorUnreachable, "Vendor unreachable", "")
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func safeUpstreamError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + ": " + ue.Err.Error()
	}
	return err.Error()
}
