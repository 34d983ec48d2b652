package console

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentgate/consentgate/audit"
)

// benchRecords is the size of the log the timeline benchmark reads: the
// issue's bound is a page in 200 ms over a million records.
const benchRecords = 1_000_000

// millionLog is a log in dir of benchRecords records of calls like the
// gateway's (an intent and an outcome each, a fifth denied), sealed into
// segments of 128 MiB: deep pages read sealed segments.
func millionLog(dir string) (*audit.Log, error) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	l, err := audit.Open(filepath.Join(dir, "audit.db"), audit.Options{Node: "bench", SigningKey: key, Mode: audit.ModeAsync,
		BatchSize: 4096, ReserveBytes: -1, SegmentBytes: 128 << 20})
	if err != nil {
		return nil, err
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 8 {
		wg.Go(func() {
			for i := next.Add(1); i <= benchRecords; i = next.Add(1) {
				if _, err := l.Append(context.Background(), benchRecord(int(i))); err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return nil, err
	}
	// Async mode: wait for the writer to have committed everything.
	for deadline := time.Now().Add(time.Minute); l.Head().Seq < benchRecords && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	return l, nil
}

func benchRecord(i int) audit.Record {
	vendors := []string{"airbank", "kb", "biometric", "finid", "banqware"}
	apps := []string{"onboarding-web", "eshop-checkout", "pfm-mobile"}
	allow := i%5 != 0
	r := audit.Record{Kind: audit.KindIntent, RequestID: fmt.Sprintf("req-%d", i/2), DecisionID: fmt.Sprintf("dec-%d", i/2),
		App: apps[i%3], Vendor: vendors[i%5], Operation: vendors[i%5] + ".personalData", Method: "GET",
		PathTemplate: "/openapi/glClientIdentity/v1/personalData", ConsentID: fmt.Sprintf("consent-%d", i%997),
		Purpose: "kyc-onboarding", SubjectHMAC: audit.HMAC([]byte("bench key of 32 bytes at least!!"), fmt.Sprintf("user-%d", i%9973)),
		Allow: &allow, Reasons: []string{"consent active", "purpose covered"},
		Detail: map[string]string{"policy_input": `{"app":{"id":"onboarding-web"},"vendor":"airbank"}`}}
	if i%2 == 1 {
		r.Kind, r.Status, r.LatencyUS, r.BytesIn, r.BytesOut = audit.KindOutcome, 200, int64(1000+i%5000), 120, 900
		r.Disclosed, r.Withheld = []string{"names", "surname"}, []string{"birthNumber"}
		r.Detail = map[string]string{"outcome": "forwarded", "categories": "identity"}
		if !allow {
			r.Status, r.Detail = 403, map[string]string{"outcome": "denied", "refusal": "policy-denied"}
		}
	}
	return r
}

// BenchmarkTimelinePage is the server side of a timeline page over a
// 1,000,000-record log: the records read, filtered and rendered as HTML.
func BenchmarkTimelinePage(b *testing.B) {
	l, err := millionLog(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	if l.Head().Seq < benchRecords {
		b.Fatalf("the log holds %d records", l.Head().Seq)
	}
	h := New(Options{Audit: l, Secret: make([]byte, 32)})
	mid := l.Head().Seq / 2
	midRecord, err := l.Record(mid)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, query string }{
		{"newest", ""},
		{"vendor", "?vendor=kb"},
		{"denied-at-one-vendor", "?vendor=airbank&outcome=denied"},
		{"time-window-in-the-middle", "?to=" + midRecord.Time.Format(time.RFC3339Nano)},
		{"deep-page-in-a-segment", fmt.Sprintf("?before=%d&app=pfm-mobile", mid)},
		{"no-match-scan-bound", "?app=nobody"},
		{"record", fmt.Sprintf("/%d", mid)},
	} {
		b.Run(c.name, func(b *testing.B) {
			target := "/console/timeline" + c.query
			if c.name == "record" {
				target = "/console/records" + c.query
			}
			for b.Loop() {
				w := do(h, auditor, "GET", target, nil, nil)
				if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "</html>") {
					b.Fatalf("%s: %d", target, w.Code)
				}
			}
		})
	}
}
