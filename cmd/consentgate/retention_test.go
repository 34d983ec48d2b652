package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/audit/archive"
	"github.com/consentgate/consentgate/internal/s3dev"
	"github.com/consentgate/consentgate/internal/tier"
)

// segmentedLogFile writes 300 records to a log at dir/audit.db sealed every 64
// KiB, and the PEM of its public key to dir/audit.pub.
func segmentedLogFile(t *testing.T, dir string) (db, pubFile string, pub audit.PublicKey) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	db = filepath.Join(dir, "audit.db")
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
	pubFile = filepath.Join(dir, "audit.pub")
	writeTestFile(t, pubFile, string(audit.PublicKeyPEM(l.PublicKey())))
	return db, pubFile, l.PublicKey()
}

// `audit verify` over a log whose older segments were archived: here alone it
// verifies from the signed checkpoint it starts at and says so; with --archive
// from record 1; with an archived segment gone it fails naming the segment after
// the gap.
func TestAuditVerifyAcrossTheArchive(t *testing.T) {
	dir := t.TempDir()
	db, pub, key := segmentedLogFile(t, dir)
	arch := filepath.Join(dir, "archive")
	r := &archive.Retention{SegmentDir: audit.SegmentDir(db), Store: archive.Dir{Path: arch}, PublicKey: key,
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

// The archive a configuration names, an S3 bucket whose keys are in the secret
// provider, is what --archive-config reads.
func TestAuditVerifyFromAnS3Archive(t *testing.T) {
	tier.Needs(t, "the S3 store (versitygw, built by make s3)")
	srv, err := s3dev.Start(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir, file, _ := writeServeConfig(t)
	db, pub, key := segmentedLogFile(t, t.TempDir())
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "s3-ca.pem"), mustRead(t, srv.CAFile))
	writeTestFile(t, file, string(data)+fmt.Sprintf(`audit:
  retention:
    keep_archive: 24h
    archive:
      s3: {endpoint: %q, bucket: %q, prefix: gw-0, access_key: "consentgate/archive#access_key", secret_key: "consentgate/archive#secret_key", ca_file: s3-ca.pem, object_lock: compliance}
`, srv.Endpoint, s3dev.Bucket))
	secretsFile := filepath.Join(dir, "secrets.yaml")
	writeTestFile(t, secretsFile, mustRead(t, secretsFile)+fmt.Sprintf("consentgate/archive:\n  access_key: %s\n  secret_key: %s\n", srv.AccessKey, srv.SecretKey))
	cfg, err := loadConfig(file, "")
	if err != nil {
		t.Fatal(err)
	}
	p, err := openSecrets(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	store, err := archiveStore(context.Background(), cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	r := &archive.Retention{SegmentDir: audit.SegmentDir(db), Store: store, PublicKey: key, KeepArchive: time.Hour}
	if err := r.Once(context.Background()); err != nil || r.Stats().Archived < 3 {
		t.Fatalf("archiving: %+v, %v", r.Stats(), err)
	}
	out, err := runCmd(t, "audit", "verify", "--db", db, "--pubkey", pub, "--archive-config", file, "--require-vouched")
	if err != nil || !strings.Contains(out, "verified: 300 records") || strings.Contains(out, "starts at") {
		t.Errorf("verify with the S3 archive: %v\n%s", err, out)
	}
	if out, err := runCmd(t, "audit", "verify", "--db", db, "--pubkey", pub, "--archive-config", file, "--archive", dir); err == nil {
		t.Errorf("both archive flags taken:\n%s", out)
	}
}

func mustRead(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The gateway's hourly round destroys the link keys of people no record has
// named for audit.link_retention.
func TestForgetLinkKeysRound(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	l, err := audit.Open(filepath.Join(t.TempDir(), "audit.db"), audit.Options{SigningKey: key, LinkRetention: 24 * time.Hour,
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	h := audit.HMAC([]byte("k"), "user-1")
	if _, err := l.Append(context.Background(), audit.Record{Kind: audit.KindIntent, SubjectHMAC: h}); err != nil {
		t.Fatal(err)
	}
	if terms, _ := l.LinkTerms(h); len(terms) != 2 {
		t.Fatalf("terms before: %d", len(terms))
	}
	now = now.Add(72 * time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // one round, then stop
	forgetLinkKeys(ctx, l, time.Hour, slog.New(slog.DiscardHandler))
	if terms, _ := l.LinkTerms(h); len(terms) != 1 {
		t.Errorf("terms after the round: %d, want the HMAC alone", len(terms))
	}
}
