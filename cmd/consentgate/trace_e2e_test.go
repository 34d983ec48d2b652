package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// `consentgate dev --otlp URL` sends a span per exchange and stage to the
// collector, flushed when the gateway stops, with the decision id the app saw.
func TestDevTracing(t *testing.T) {
	var mu sync.Mutex
	spans := map[string]map[string]string{} // name -> attributes
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var req collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(raw, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					attrs := map[string]string{}
					for _, a := range s.Attributes {
						attrs[a.Key] = a.Value.GetStringValue()
					}
					spans[s.Name] = attrs
				}
			}
		}
		b, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(b)
	}))
	defer collector.Close()

	e, stop := startTestDevOpts(t, devOptions{dir: t.TempDir(), otlp: collector.URL})
	resp, body := call(t, e.app, "GET", e.gatewayURL()+"/v/airbank/openapi/glClientIdentity/v1/personalData", "", under("dev-age", "age-verification"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("call: %d %s", resp.StatusCode, body)
	}
	stop()

	mu.Lock()
	defer mu.Unlock()
	for _, name := range []string{"consentgate.exchange", "policy", "audit.intent", "credentials", "upstream", "minimise", "audit.outcome"} {
		if _, ok := spans[name]; !ok {
			t.Errorf("the collector got no %q span", name)
		}
	}
	if got, want := spans["consentgate.exchange"]["consentgate.decision_id"], resp.Header.Get("X-Consentgate-Decision-Id"); got != want || got == "" {
		t.Errorf("exchange span decision id %q, want %q", got, want)
	}
	for name, attrs := range spans {
		for k, v := range attrs {
			if strings.Contains(v, "dev-age") {
				t.Errorf("span %s attribute %s carries the consent id", name, k)
			}
		}
	}
}
