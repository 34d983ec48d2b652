package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/consentgate/consentgate/configs"
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

// NewTracerProvider really exports over OTLP/HTTP to the configured
// collector, and does nothing when tracing is not configured.
func TestTracerProviderExportsOTLP(t *testing.T) {
	var mu sync.Mutex
	var names []string
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var req collectortrace.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(raw, &req) != nil {
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					names = append(names, s.Name)
				}
			}
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Write(b)
	}))
	defer collector.Close()

	off, err := NewTracerProvider(context.Background(), &configs.Config{})
	if err != nil || off != nil {
		t.Fatalf("tracing not configured: %v, %v", off, err)
	}
	cfg := &configs.Config{Node: "n1", Tracing: configs.Tracing{Endpoint: collector.URL, SampleRatio: 1, ServiceName: "consentgate"}}
	tp, err := NewTracerProvider(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("test").Start(context.Background(), "exported-span")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(names, " ") != "exported-span" {
		t.Errorf("collector received %v", names)
	}
}
