package proxy

import (
	"net/http"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func spanAttr(s sdktrace.ReadOnlySpan, key string) string {
	for _, a := range s.Attributes() {
		if string(a.Key) == key {
			return a.Value.String()
		}
	}
	return ""
}

// One exchange is one trace: a span for the exchange, under the app's own
// traceparent, and one per stage under it, with the decision id on them and
// no secret, consent id or trace header passed on to the vendor.
func TestTracingSpansPerStage(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	env := newTestEnv(t, func(o *Options) { o.Tracer = tp })

	const appTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	resp, _ := do(t, env.client, "GET", env.gatewayURL+"/v/echo/things/1", "", map[string]string{
		"X-Consent-Id": "c-123", "traceparent": "00-" + appTrace + "-00f067aa0ba902b7-01", "Baggage": "user=alice",
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	decisionID := resp.Header.Get("X-Consentgate-Decision-Id")
	got, _ := env.seen.last(t)
	for _, h := range []string{"Traceparent", "Tracestate", "Baggage"} {
		if v := got.Header.Get(h); v != "" {
			t.Errorf("vendor got %s: %q", h, v)
		}
	}

	spans := map[string]sdktrace.ReadOnlySpan{}
	var exchange sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		spans[s.Name()] = s
		if s.Name() == spanExchange {
			exchange = s
		}
	}
	for _, name := range []string{spanExchange, spanPolicy, "audit.intent", spanCredentials, spanUpstream, spanMinimise, "audit.outcome"} {
		s, ok := spans[name]
		if !ok {
			t.Errorf("no %q span; got %v", name, spanNames(rec.Ended()))
			continue
		}
		if s.SpanContext().TraceID().String() != appTrace {
			t.Errorf("%s: trace %s, want the app's %s", name, s.SpanContext().TraceID(), appTrace)
		}
		if name != spanExchange && s.Parent().SpanID() != exchange.SpanContext().SpanID() {
			t.Errorf("%s is not a child of the exchange span", name)
		}
		for _, a := range s.Attributes() {
			v := a.Value.String()
			for _, secret := range testSecrets {
				if strings.Contains(v, secret) {
					t.Errorf("%s: attribute %s carries a secret", name, a.Key)
				}
			}
			if strings.Contains(v, "c-123") || strings.Contains(v, "alice") {
				t.Errorf("%s: attribute %s carries the consent id or baggage: %q", name, a.Key, v)
			}
		}
	}
	if exchange == nil {
		t.FailNow()
	}
	for key, want := range map[string]string{"consentgate.decision_id": decisionID, "consentgate.vendor": "echo",
		"consentgate.app": "web", "http.response.status_code": "200", "consentgate.allow": "true"} {
		if got := spanAttr(exchange, key); got != want {
			t.Errorf("exchange %s = %q, want %q", key, got, want)
		}
	}
	if got := spanAttr(spans[spanPolicy], "consentgate.decision_id"); got != decisionID {
		t.Errorf("policy span decision id %q, want %q", got, decisionID)
	}

	// A denied call: its trace shows the decision and no upstream span.
	rec2 := len(rec.Ended())
	resp, _ = do(t, env.client, "GET", env.gatewayURL+"/v/echo/things/1", "", map[string]string{"X-Consent-Id": "deny-me"})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("denied call: status %d", resp.StatusCode)
	}
	later := rec.Ended()[rec2:]
	names := spanNames(later)
	if strings.Contains(names, spanUpstream) || !strings.Contains(names, spanPolicy) || !strings.Contains(names, "audit.outcome") {
		t.Errorf("denied call spans: %s", names)
	}
	for _, s := range later {
		if s.Name() == spanExchange && spanAttr(s, "consentgate.allow") != "false" {
			t.Errorf("denied exchange span allow = %q", spanAttr(s, "consentgate.allow"))
		}
	}
}

func spanNames(spans []sdktrace.ReadOnlySpan) string {
	var names []string
	for _, s := range spans {
		names = append(names, s.Name())
	}
	return strings.Join(names, " ")
}
