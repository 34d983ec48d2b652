package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// With link keys a person's records name them only through their key: search
// finds them by the subject or an identifier while the key lives; once no record
// has named them for the retention, the key is destroyed and nothing finds their
// records, which keep their hashes: the chain verifies as before.
func TestLinkKeysUnlinkAPersonAtTheEndOfRetention(t *testing.T) {
	clk := newClock()
	o := testOptions(t)
	o.Now = clk.Now
	o.LinkRetention = 30 * 24 * time.Hour
	l, path := MustOpen(t, o)
	ctx := context.Background()
	alice, bob := HMAC(testHMACKey, "alice"), HMAC(testHMACKey, "bob")
	aliceBN := HMAC(testHMACKey, testBirthNumber)
	for i := range 4 {
		r := sampleRecord(2*i + 1) // outcomes, with identifiers
		r.SubjectHMAC, r.Identifiers = alice, []string{aliceBN}
		if _, err := l.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	clk.mu.Lock()
	clk.t = clk.t.Add(20 * 24 * time.Hour)
	clk.mu.Unlock()
	r := sampleRecord(2)
	r.SubjectHMAC = bob
	if _, err := l.Append(ctx, r); err != nil {
		t.Fatal(err)
	}
	found := func(h string) int {
		t.Helper()
		terms, err := l.LinkTerms(h)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		var buf bytes.Buffer
		if err := l.Export(ctx, &buf, Filter{}); err != nil {
			t.Fatal(err)
		}
		if err := SearchExportTerms(&buf, terms, func(Record) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if a, b, bn := found(alice), found(bob), found(aliceBN); a != 4 || b != 1 || bn != 4 {
		t.Fatalf("while the keys live: alice %d, bob %d, alice's birth number %d records", a, b, bn)
	}
	if n, err := l.ForgetLinkKeys(ctx); err != nil || n != 0 {
		t.Fatalf("20 days after: %d keys destroyed, %v", n, err)
	}
	clk.mu.Lock()
	clk.t = clk.t.Add(15 * 24 * time.Hour) // alice: 35 days; bob: 15
	clk.mu.Unlock()
	if n, err := l.ForgetLinkKeys(ctx); err != nil || n != 1 {
		t.Fatalf("35 days after: %d keys destroyed, %v", n, err)
	}
	if a, b, bn := found(alice), found(bob), found(aliceBN); a != 0 || b != 1 || bn != 0 {
		t.Errorf("after alice's key went: alice %d, bob %d, alice's birth number %d records", a, b, bn)
	}
	l.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{alice, bob, aliceBN} {
		if bytes.Contains(raw, []byte(h)) {
			t.Errorf("the log holds the HMAC %s itself, not its linked form", h[:12])
		}
	}
	rep, err := VerifyDB(path, l.PublicKey(), RequireVouched())
	if err != nil || rep.Records != 6 { // 5 records and the record of the destruction
		t.Errorf("the chain after the destruction: %d records, %v", rep.Records, err)
	}
	if terms, err := LinkTerms(path, alice); err != nil || len(terms) != 1 {
		t.Errorf("offline terms for alice: %d, %v (want only alice's HMAC itself: her key is gone)", len(terms), err)
	}
	if terms, err := LinkTerms(path, bob); err != nil || len(terms) != 2 {
		t.Errorf("offline terms for bob: %d, %v (want his HMAC, and under his key)", len(terms), err)
	}
	if raw, err := os.ReadFile(LinkKeysPath(path)); err != nil || bytes.Contains(raw, []byte(aliceBN)) {
		t.Errorf("the link keys file still indexes alice's birth number (%v)", err)
	}
}

// The link keys are the log's: another log's file is refused.
func TestLinkKeysOfAnotherLogAreRefused(t *testing.T) {
	o := testOptions(t)
	o.LinkRetention = time.Hour
	l, path := MustOpen(t, o)
	l.Close()
	if err := os.Rename(path, path+".old"); err != nil {
		t.Fatal(err)
	}
	defer os.Rename(path+".old", path)
	if l2, err := Open(path, o); !errors.Is(err, ErrWrongKey) {
		t.Errorf("a new log beside another's link keys: %v", err)
		if err == nil {
			l2.Close()
			os.Remove(path)
		}
	}
}

// A rewrite that cannot happen destroys nothing: the keys stay whole in the old
// file, and the next sweep destroys them for good and records it.
func TestLinkKeysRewriteFailureDestroysNothing(t *testing.T) {
	clk := newClock()
	o := testOptions(t)
	o.Now = clk.Now
	o.LinkRetention = 24 * time.Hour
	l, path := MustOpen(t, o)
	ctx := context.Background()
	alice := HMAC(testHMACKey, "alice")
	r := sampleRecord(1)
	r.SubjectHMAC, r.Identifiers = alice, []string{HMAC(testHMACKey, testBirthNumber)}
	if _, err := l.Append(ctx, r); err != nil {
		t.Fatal(err)
	}
	clk.mu.Lock()
	clk.t = clk.t.Add(3 * 24 * time.Hour)
	clk.mu.Unlock()
	replaceFault = func() error { return errors.New("disk full") }
	n, err := l.ForgetLinkKeys(ctx)
	replaceFault = nil
	if err == nil || n != 0 {
		t.Fatalf("a sweep that could not rewrite: %d, %v", n, err)
	}
	if terms, _ := l.LinkTerms(alice); len(terms) != 2 {
		t.Fatalf("alice's key after the failed sweep: %d terms, want it whole", len(terms))
	}
	if n, err := l.ForgetLinkKeys(ctx); err != nil || n != 1 {
		t.Fatalf("the next sweep: %d, %v", n, err)
	}
	l.Close()
	raw, err := os.ReadFile(LinkKeysPath(path))
	if err != nil || bytes.Contains(raw, []byte(alice)) {
		t.Errorf("the keys file still names alice (%v)", err)
	}
	if _, err := os.Stat(LinkKeysPath(path) + ".rewrite"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the rewrite's leftover is still there: %v", err)
	}
}

// The day of a key's last use lasts until its end: a record at 23:59 keeps the
// key a whole retention after it.
func TestLinkKeysLastForTheWholeRetention(t *testing.T) {
	now := time.Date(2026, 12, 1, 23, 59, 0, 0, time.UTC)
	o := testOptions(t)
	o.Now = func() time.Time { return now }
	o.LinkRetention = 24 * time.Hour
	l, _ := MustOpen(t, o)
	alice := HMAC(testHMACKey, "alice")
	r := sampleRecord(2)
	r.SubjectHMAC = alice
	if _, err := l.Append(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		after time.Duration
		gone  int
	}{{2 * time.Minute, 0}, {23 * time.Hour, 0}, {24*time.Hour + 2*time.Minute, 1}} {
		now = time.Date(2026, 12, 1, 23, 59, 0, 0, time.UTC).Add(c.after)
		if n, err := l.ForgetLinkKeys(context.Background()); err != nil || n != c.gone {
			t.Errorf("%s after the last use: %d keys destroyed, %v; want %d", c.after, n, err, c.gone)
		}
	}
}

// The keys cached in memory are the day's: a long-running gateway does not hold
// every person of the retention in memory.
func TestLinkKeysCacheIsTheDays(t *testing.T) {
	k, err := openLinkKeys(filepath.Join(t.TempDir(), "links.db"), "log-1", 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer k.close()
	day1 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, s := range []string{"a", "b", "c"} {
		r := Record{SubjectHMAC: HMAC(testHMACKey, s), Identifiers: []string{HMAC(testHMACKey, s+"-id")}}
		if err := k.pseudonymize(&r, day1); err != nil {
			t.Fatal(err)
		}
	}
	first, err := k.key(HMAC(testHMACKey, "a"), day1)
	if err != nil {
		t.Fatal(err)
	}
	again, err := k.key(HMAC(testHMACKey, "a"), day1.Add(24*time.Hour))
	if err != nil || again != first || len(k.cache) != 1 || len(k.indexed) != 0 {
		t.Errorf("the next day: same key %v, %d cached, %d pairs noted, %v", again == first, len(k.cache), len(k.indexed), err)
	}
}
