package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/audit/archive"
)

// `audit verify` over a log whose older segments were archived: here alone it
// verifies from the signed checkpoint it starts at and says so; with --archive
// from record 1; with an archived segment gone it fails naming the segment after
// the gap.
func TestAuditVerifyAcrossTheArchive(t *testing.T) {
	dir := t.TempDir()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "audit.db")
	l, err := audit.Open(db, audit.Options{SigningKey: key, SegmentBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for range 300 {
		if _, err := l.Append(context.Background(), audit.Record{Kind: audit.KindIntent, Vendor: "kb", App: "onboarding-web",
			Reasons: []string{strings.Repeat("consent active ", 60)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(dir, "audit.pub")
	writeTestFile(t, pub, string(audit.PublicKeyPEM(l.PublicKey())))
	arch := filepath.Join(dir, "archive")
	r := &archive.Retention{SegmentDir: audit.SegmentDir(db), Store: archive.Dir{Path: arch}, PublicKey: l.PublicKey(),
		KeepArchive: time.Hour}
	if err := r.Once(context.Background()); err != nil || r.Stats().Archived < 3 {
		t.Fatalf("archiving: %+v, %v", r.Stats(), err)
	}

	out, err := runCmd(t, "audit", "verify", "--db", db, "--pubkey", pub)
	if err != nil || !strings.Contains(out, "the chain starts at record ") {
		t.Errorf("the node alone: %v\n%s", err, out)
	}
	out, err = runCmd(t, "audit", "verify", "--db", db, "--pubkey", pub, "--archive", arch, "--require-vouched")
	if err != nil || !strings.Contains(out, "verified: 300 records") || strings.Contains(out, "starts at") {
		t.Errorf("with the archive: %v\n%s", err, out)
	}
	segs, err := archive.Dir{Path: arch}.List(context.Background())
	if err != nil || len(segs) < 3 {
		t.Fatal(segs, err)
	}
	if err := os.Remove(filepath.Join(arch, segs[1].Name)); err != nil {
		t.Fatal(err)
	}
	out, err = runCmd(t, "audit", "verify", "--db", db, "--pubkey", pub, "--archive", arch)
	if err == nil || !strings.Contains(err.Error(), "missing segment") || !strings.Contains(err.Error(), segs[2].Name) {
		t.Errorf("an archived segment gone: %v\n%s", err, out)
	}
	if _, err := runCmd(t, "audit", "verify", "--export", db, "--pubkey", pub, "--archive", arch); err == nil || !strings.Contains(err.Error(), "go with --db") {
		t.Error("--archive with --export was taken")
	}
}
