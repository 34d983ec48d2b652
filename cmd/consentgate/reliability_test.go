package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/consentgate/consentgate/audit"
)

// The reliability suite (TestReliability*) runs briefly in `make test` and at full
// length in `make reliability`, which sets CONSENTGATE_RELIABILITY=full. Either way
// every check runs and can fail; only durations and counts differ. A setting may be
// overridden on its own with the environment variable named next to it.

// reliabilityFull says whether the full suite was asked for.
func reliabilityFull() bool { return os.Getenv("CONSENTGATE_RELIABILITY") == "full" }

// reliabilityDuration is the short or full value of a duration, or $env when set.
func reliabilityDuration(t *testing.T, env string, short, full time.Duration) time.Duration {
	t.Helper()
	if s := os.Getenv(env); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("%s=%q: want a positive duration such as 90s or 10m", env, s)
		}
		return d
	}
	if reliabilityFull() {
		return full
	}
	return short
}

// reliabilityCount is the short or full value of a count, or $env when set.
func reliabilityCount(t *testing.T, env string, short, full int) int {
	t.Helper()
	if s := os.Getenv(env); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("%s=%q: want a positive whole number", env, s)
		}
		return n
	}
	if reliabilityFull() {
		return full
	}
	return short
}

// auditExport is the running gateway's audit log: the export as text (to search for
// values that must not be there) and its intent and outcome records by request id.
type auditExport struct {
	text     string
	intents  map[string]audit.Record
	outcomes map[string]audit.Record
}

func exportAudit(t *testing.T, l *audit.Log) auditExport {
	t.Helper()
	var buf bytes.Buffer
	if err := l.Export(context.Background(), &buf, audit.Filter{}); err != nil {
		t.Fatalf("exporting the audit log: %v", err)
	}
	x := auditExport{text: buf.String(), intents: map[string]audit.Record{}, outcomes: map[string]audit.Record{}}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r audit.Record
		if json.Unmarshal(sc.Bytes(), &r) != nil || r.RequestID == "" {
			continue
		}
		switch r.Kind {
		case audit.KindIntent:
			x.intents[r.RequestID] = r
		case audit.KindOutcome:
			x.outcomes[r.RequestID] = r
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return x
}

// loadCall is the i-th call of a load across the five vendors: the dev calls in
// turn, each Banqware user with a client id of its own (the hub refuses a second
// user with the same one).
func loadCall(i int) (vendor, purpose, method, path, body string) {
	c := devCalls[i%len(devCalls)]
	if c.vendor == "banqware" {
		c.body = fmt.Sprintf(`{"clientId":"load-%d"}`, i)
	}
	return c.vendor, c.purpose, c.method, c.path, c.body
}
