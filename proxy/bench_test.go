package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/identity"
)

// answering is a vendor that answers from memory: the benchmark below
// measures the gateway, not a network or a TLS server in the same process.
type answering struct{ body string }

func (a answering) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{"Content-Type": {"application/json"}},
		Body:    io.NopCloser(strings.NewReader(a.body)),
		Request: r, ContentLength: int64(len(a.body))}, nil
}

// BenchmarkPipeline is one allowed call through every stage (identity, route,
// decision, request, resources, quota, minimisation, intent record,
// credentials, the reverse proxy, response minimisation, outcome record), the
// vendor answering a small JSON body from memory. Its allocations per call are
// issue 16's "allocations per proxied call"; the time includes the audit
// log's durable commits: two per call in "serial", shared by many calls in
// "parallel".
func BenchmarkPipeline(b *testing.B) {
	env := newTestEnv(b)
	env.gw.vendorsNow()["echo"].proxy.Transport = answering{body: `{"id":"t-1","status":"ok","result":{"score":0.98,"checked":true}}`}
	app := identity.Identity{Role: identity.RoleApp, Name: "web"}
	call := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/v/echo/things/1?x=1", nil)
		rec := httptest.NewRecorder()
		env.gw.ServeHTTP(rec, r.WithContext(identity.With(r.Context(), app)))
		return rec
	}
	if rec := call(); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"score":0.98`) {
		b.Fatalf("%d %s", rec.Code, rec.Body)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if rec := call(); rec.Code != http.StatusOK {
				b.Fatalf("%d %s", rec.Code, rec.Body)
			}
		}
	})
	// 64 calls at once, as under load: the audit log's commits are shared by
	// the calls whose records they carry, so a call's own cost shows.
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if rec := call(); rec.Code != http.StatusOK {
					b.Errorf("%d %s", rec.Code, rec.Body)
					return
				}
			}
		})
	})
}
