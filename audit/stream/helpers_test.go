package stream

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consentgate/consentgate/audit"
)

// openLog is a fresh audit log that closes when the test ends.
func openLog(t testing.TB) *audit.Log {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	l, err := audit.Open(filepath.Join(t.TempDir(), "audit.db"), audit.Options{Node: "node-1", SigningKey: key, CheckpointEvery: 100})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// appendN appends n outcome records of a call, subject as an HMAC.
func appendN(t testing.TB, l *audit.Log, n int) {
	t.Helper()
	for i := range n {
		if _, err := l.Append(context.Background(), audit.Record{Kind: audit.KindOutcome, App: "onboarding-web", Vendor: "kb",
			Operation: "kb.clientIdentity", RequestID: fmt.Sprintf("req-%d", i), SubjectHMAC: strings.Repeat("5d", 32)}); err != nil {
			t.Fatal(err)
		}
	}
}

// lines are the log's stored lines by sequence number.
func lines(t testing.TB, l *audit.Log) map[uint64]string {
	t.Helper()
	all, err := l.Lines(0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64]string{}
	for _, x := range all {
		out[x.Seq] = string(x.Data)
	}
	return out
}

// seqOf reads a record line's sequence number.
func seqOf(t testing.TB, line string) uint64 {
	t.Helper()
	var r struct {
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal([]byte(line), &r); err != nil || r.Seq == 0 {
		t.Fatalf("not a record line: %.200s (%v)", line, err)
	}
	return r.Seq
}

// run starts s until the test ends (or stop is called) and returns stop.
func run(t testing.TB, s *Stream) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.Run(ctx); err != nil {
			t.Errorf("stream %s: %v", s.Name, err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// eventually polls cond every 20ms for up to d.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("after %s: %s", d, what)
}
