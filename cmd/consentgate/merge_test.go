package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/audit"
)

// replicaExport writes an audit log for one replica with its own key, and
// returns its export file and public-key file.
func replicaExport(t *testing.T, dir, node string, times []time.Time) (export, pubkey string) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	l, err := audit.Open(filepath.Join(dir, node+".db"), audit.Options{Node: node, SigningKey: key, Now: func() time.Time {
		if i < len(times) {
			i++
			return times[i-1]
		}
		return times[len(times)-1]
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range len(times) {
		if _, err := l.Append(ctx, audit.Record{Kind: audit.KindIntent, Vendor: "kb", App: "onboarding-web"}); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if err := l.Export(ctx, &b, audit.Filter{}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	export, pubkey = filepath.Join(dir, node+".jsonl"), filepath.Join(dir, node+".pub")
	writeTestFile(t, export, b.String())
	writeTestFile(t, pubkey, string(audit.PublicKeyPEM(key.Public().(ed25519.PublicKey))))
	return export, pubkey
}

func TestAuditExportMerge(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	at := func(ms ...int) (ts []time.Time) {
		for _, m := range ms {
			ts = append(ts, t0.Add(time.Duration(m)*time.Millisecond))
		}
		return ts
	}
	a, pubA := replicaExport(t, dir, "gw-0", at(1, 4, 5, 9))
	b, pubB := replicaExport(t, dir, "gw-1", at(2, 3, 7))
	out := filepath.Join(dir, "merged.jsonl")

	if msg, err := runCmd(t, "audit", "export", "--merge", a, b, "--pubkey", pubA, "--pubkey", pubB, "--out", out); err != nil {
		t.Fatalf("merge: %v\n%s", err, msg)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var nodes []string
	for line := range strings.SplitSeq(strings.TrimSuffix(string(raw), "\n"), "\n") {
		var r audit.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		if r.Kind == audit.KindIntent {
			nodes = append(nodes, r.Node)
		}
	}
	if got, want := strings.Join(nodes, " "), "gw-0 gw-1 gw-1 gw-0 gw-0 gw-1 gw-0"; got != want {
		t.Errorf("merged order %q, want %q", got, want)
	}

	// Nothing is merged unless every chain verifies with one of the keys.
	writeTestFile(t, out, "")
	if _, err := runCmd(t, "audit", "export", "--merge", a, b, "--pubkey", pubA, "--out", out); err == nil {
		t.Error("merged an export whose key was not given")
	}
	tampered := filepath.Join(dir, "tampered.jsonl")
	rawB, _ := os.ReadFile(b)
	writeTestFile(t, tampered, strings.Replace(string(rawB), `"vendor":"kb"`, `"vendor":"xx"`, 1))
	msg, err := runCmd(t, "audit", "export", "--merge", a, tampered, "--pubkey", pubA, "--pubkey", pubB, "--out", out)
	if err == nil || !strings.Contains(msg+err.Error(), "NOT MERGED") {
		t.Errorf("merged a tampered export: %v %s", err, msg)
	}
	if raw, _ := os.ReadFile(out); len(raw) != 0 {
		t.Errorf("a failed merge wrote %d bytes", len(raw))
	}
}
