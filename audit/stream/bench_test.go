package stream

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/internal/rsyslogdev"
	"github.com/consentgate/consentgate/internal/tier"
)

// benchRecords is a backlog of the size a gateway at its make bench peak
// (about 4,700 calls/s, two records each) writes in two seconds.
const benchRecords = 20000

// backlog is a log holding benchRecords records shaped like a call's outcome.
func backlog(b *testing.B) *audit.Log {
	b.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	l, err := audit.Open(filepath.Join(b.TempDir(), "audit.db"), audit.Options{Node: "node-1", SigningKey: key, Mode: "async"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	for i := range benchRecords {
		if _, err := l.Append(context.Background(), audit.Record{Kind: audit.KindOutcome, App: "onboarding-web", Vendor: "airbank",
			Operation: "airbank.personalData", Method: "GET", PathTemplate: "/openapi/glClientIdentity/v1/personalData",
			RequestID: fmt.Sprintf("0f8c2a4e-1b7d-4c55-9e0a-%012d", i), ConsentID: "dev-kyc", Purpose: "kyc-onboarding",
			SubjectHMAC: strings.Repeat("5d", 32), Disclosed: []string{"names", "surname", "birthDate", "permanentAddress.street"},
			Withheld: []string{"birthNumber", "politicallyExposedPerson"}}); err != nil {
			b.Fatal(err)
		}
	}
	for l.Head().Seq < benchRecords {
		time.Sleep(10 * time.Millisecond)
	}
	return l
}

// drain streams l's whole backlog through sink and reports records a second.
func drain(b *testing.B, l *audit.Log, sink Sink) {
	var total time.Duration
	for i := 0; i < b.N; i++ {
		s := &Stream{Name: "bench", Source: l, Sink: sink, Cursor: NewCursor(filepath.Join(b.TempDir(), fmt.Sprint(i)))}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- s.Run(ctx) }()
		for s.Stats().Acked < benchRecords {
			time.Sleep(time.Millisecond)
		}
		total += time.Since(start)
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchRecords*b.N)/total.Seconds(), "records/s")
}

// BenchmarkStreamHTTP: JSON lines to an HTTPS receiver on loopback.
func BenchmarkStreamHTTP(b *testing.B) {
	l := backlog(b)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	defer srv.Close()
	drain(b, l, &HTTP{URL: srv.URL, Format: FormatJSONL, Client: srv.Client()})
}

// BenchmarkStreamSyslog: RFC 5425 to a real rsyslogd writing every message to a file.
func BenchmarkStreamSyslog(b *testing.B) {
	tier.Needs(b, "rsyslog")
	l := backlog(b)
	rs, err := rsyslogdev.Start(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer rs.Stop()
	drain(b, l, &Syslog{Address: rs.Addr, TLS: rs.TLS(), Hostname: "node-1"})
}
