package proxy

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Spans carry identifiers the audit log and the canonical log line also carry
// (request and decision ids, app, vendor, operation, purpose, status), never a
// consent id, a subject, a field value or a secret: a tracing backend is not a
// place for personal data.

const tracerName = "github.com/consentgate/consentgate/proxy"

// Span names: one per exchange, one per pipeline stage.
const (
	spanExchange    = "consentgate.exchange"
	spanPolicy      = "policy"
	spanCredentials = "credentials"
	spanUpstream    = "upstream"
	spanMinimise    = "minimise"
	spanAuditPrefix = "audit."
)

// noSpan is what stages get when tracing is off: it records nothing, and
// using it costs no allocation.
var noSpan = trace.SpanFromContext(context.Background())

// exchangeSpan starts the span of one exchange, as a child of the app's
// traceparent if it sent one, so an app can find its calls in its own traces.
func (g *Gateway) exchangeSpan(r *http.Request, listener string) (*http.Request, trace.Span) {
	if g.tracer == nil {
		return r, noSpan
	}
	ctx := propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := g.tracer.Start(ctx, spanExchange, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("consentgate.listener", listener), attribute.String("http.request.method", r.Method)))
	return r.WithContext(ctx), span
}

// stage starts the span of one pipeline stage.
func (g *Gateway) stage(ctx context.Context, name string) (context.Context, trace.Span) {
	if g.tracer == nil {
		return ctx, noSpan
	}
	return g.tracer.Start(ctx, name)
}

// endExchangeSpan writes what the canonical log line says onto the exchange's span.
func endExchangeSpan(span trace.Span, ex *exchange) {
	if !span.IsRecording() {
		return
	}
	attrs := []attribute.KeyValue{
		attribute.String("consentgate.request_id", ex.requestID),
		attribute.String("consentgate.app", ex.app),
		attribute.String("consentgate.vendor", ex.vendor),
		attribute.String("consentgate.operation", ex.op),
		attribute.String("consentgate.purpose", ex.purpose),
		attribute.String("consentgate.outcome", ex.outcome),
		attribute.Bool("consentgate.would_deny", ex.wouldDeny),
		attribute.Int("http.response.status_code", ex.w.status),
	}
	if d := ex.decision; d != nil {
		attrs = append(attrs, attribute.String("consentgate.decision_id", d.ID), attribute.Bool("consentgate.allow", d.Allow),
			attribute.String("consentgate.policy_revision", d.Revision))
	}
	span.SetAttributes(attrs...)
	if ex.outcome == outcomeFailed {
		span.SetStatus(codes.Error, ex.outcome)
	}
}

// tracedTransport puts the upstream exchange, up to the vendor's response
// headers, in its own span.
type tracedTransport struct {
	next   http.RoundTripper
	tracer trace.Tracer
}

func (t tracedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, span := t.tracer.Start(r.Context(), spanUpstream, trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	resp, err := t.next.RoundTrip(r.WithContext(ctx))
	if err != nil {
		span.SetStatus(codes.Error, "vendor unreachable")
		return nil, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	// The stages after this one (minimise, audit outcome) belong to the
	// exchange, not to the upstream span.
	resp.Request = r
	return resp, nil
}
