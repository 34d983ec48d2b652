package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// testHMACKey stands for the key the gateway reads from its secret provider.
var testHMACKey = []byte("0123456789abcdef0123456789abcdef")

// testBirthNumber is a raw identifier the tests hand to HMAC only: finding it in any
// file or output can only mean it leaked.
const testBirthNumber = "915714/4238"

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// clock is an injectable Now that tests move by hand; every reading advances it a
// millisecond, so records get distinct times.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

// testOptions: a fresh key, a hand-moved clock, and no checkpoint by the clock, so
// where checkpoints fall depends on the record count alone.
func testOptions(t testing.TB) Options {
	return Options{
		Node:               "node-1",
		SigningKey:         newKey(t),
		CheckpointInterval: time.Hour,
		Now:                newClock().Now,
	}
}

// MustOpen opens a log on a new file under t.TempDir(). When the test ends the log is
// closed and the file checked: bbolt's consistency check, then VerifyDB.
func MustOpen(t testing.TB, o Options) (*Log, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.db")
	return mustOpenPath(t, path, o), path
}

func mustOpenPath(t testing.TB, path string, o Options) *Log {
	t.Helper()
	l, err := Open(path, o)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		l.Close() // tests that break the file see Close fail on purpose
		checkFile(t, path, l.PublicKey())
	})
	return l
}

// checkFile runs bbolt's check and VerifyDB on a closed log file.
func checkFile(t testing.TB, path string, pub PublicKey) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Errorf("reopening %s to check it: %v", path, err)
		return
	}
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt check: %v", err)
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Errorf("checking %s: %v", path, err)
	}
	if _, err := VerifyDB(path, pub); err != nil {
		t.Errorf("VerifyDB(%s): %v", path, err)
	}
}

// sampleRecord is the i-th of a varied stream: intents and outcomes of calls to two
// vendors for two apps, with identifiers on some.
func sampleRecord(i int) Record {
	allow := i%5 != 0
	vendor, app := "airbank", "onboarding-web"
	if i%3 == 0 {
		vendor = "kb"
	}
	if i%4 == 0 {
		app = "loans"
	}
	r := Record{
		Kind:         KindIntent,
		RequestID:    fmt.Sprintf("req-%d", i/2),
		DecisionID:   fmt.Sprintf("dec-%d", i/2),
		App:          app,
		Vendor:       vendor,
		Operation:    vendor + ".personalData",
		Method:       "GET",
		PathTemplate: "/openapi/glClientIdentity/v1/personalData",
		ConsentID:    fmt.Sprintf("consent-%d", i%7),
		Purpose:      "kyc-onboarding",
		SubjectHMAC:  HMAC(testHMACKey, fmt.Sprintf("user-%d", i%11)),
		Allow:        &allow,
		Reasons:      []string{"consent active", "purpose covered"},
	}
	if i%2 == 1 {
		r.Kind = KindOutcome
		r.Status, r.LatencyUS, r.BytesIn, r.BytesOut = 200, int64(1000+i), 120, int64(900+i)
		r.Disclosed = []string{"names", "surname"}
		r.Withheld = []string{"birthNumber", "politicallyExposedPerson"}
		r.Identifiers = []string{HMAC(testHMACKey, fmt.Sprintf("%06d/%04d", 900000+i, i))}
	}
	return r
}

// appendN appends n sample records one after another and returns them as stored.
func appendN(t testing.TB, l *Log, n int) []Record {
	t.Helper()
	out := make([]Record, 0, n)
	for i := range n {
		r, err := l.Append(context.Background(), sampleRecord(i))
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		out = append(out, r)
	}
	return out
}

// appendConcurrently appends writers×each sample records from as many goroutines.
func appendConcurrently(t testing.TB, l *Log, writers, each int) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := l.Append(context.Background(), sampleRecord(w*each+i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// closedLog writes a log of n sample records with a checkpoint after every `every`
// records, closes it, and returns its path and public key. With every=5 and n=12 the
// file is: 1-5 records, 6 checkpoint, 7-11 records, 12 checkpoint, 13-14 records,
// 15 the final checkpoint.
func closedLog(t testing.TB, n, every int) (string, ed25519.PublicKey) {
	t.Helper()
	o := testOptions(t)
	o.CheckpointEvery = every
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, n)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path, l.PublicKey().(ed25519.PublicKey)
}

// abandon leaves a log as a crash would: the file closed under the writer, so Close
// cannot add its final checkpoint.
func abandon(l *Log) {
	l.db.Close()
	l.Close()
}

// editRecords opens a closed log file directly with bbolt and lets fn change its
// records bucket, as someone with write access to the file could.
func editRecords(t testing.TB, path string, fn func(b *bolt.Bucket) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { return fn(tx.Bucket(bucketRecords)) }); err != nil {
		t.Fatal(err)
	}
}

// rechain re-hashes the stored records from seq on, as a forger without the signing
// key would after changing one: every link and every checkpoint's head_hash holds
// again, only signatures do not.
func rechain(b *bolt.Bucket, from uint64) error {
	prev := b.Get(seqKey(from - 1))
	prevHash := ""
	if prev != nil {
		prevHash = lenient(prev).Hash
	}
	c := b.Cursor()
	var updates [][2][]byte
	for k, v := c.Seek(seqKey(from)); k != nil; k, v = c.Next() {
		r := lenient(v)
		if prevHash != "" {
			r.PrevHash = prevHash
		}
		if r.Kind == KindCheckpoint {
			r.Detail[DetailHeadHash] = r.PrevHash // keeps its statement, not its signature, true
		}
		raw, _ := decodeHash(r.PrevHash)
		sum := chainHash(raw, recordBody(nil, &r))
		r.Hash = fmt.Sprintf("%x", sum)
		prevHash = r.Hash
		updates = append(updates, [2][]byte{bytes.Clone(k), recordLine(nil, &r)})
	}
	for _, u := range updates {
		if err := b.Put(u[0], u[1]); err != nil {
			return err
		}
	}
	return nil
}

// rechainLines is rechain for the lines of an export (header first).
func rechainLines(lines []string, from int) {
	prevHash := lenient([]byte(lines[from-1])).Hash
	for i := from; i < len(lines); i++ {
		r := lenient([]byte(lines[i]))
		r.PrevHash = prevHash
		if r.Kind == KindCheckpoint {
			r.Detail[DetailHeadHash] = r.PrevHash
		}
		raw, _ := decodeHash(r.PrevHash)
		sum := chainHash(raw, recordBody(nil, &r))
		r.Hash = fmt.Sprintf("%x", sum)
		prevHash = r.Hash
		lines[i] = string(recordLine(nil, &r))
	}
}

// exportOf is a log's export as lines, header first, no trailing newline.
func exportOf(t testing.TB, l *Log, f Filter) []string {
	t.Helper()
	var b bytes.Buffer
	if err := l.Export(context.Background(), &b, f); err != nil {
		t.Fatalf("Export: %v", err)
	}
	return strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
}

func joinLines(lines []string) string { return strings.Join(lines, "\n") + "\n" }

// wantVerifyError checks that err is a *VerifyError at seq whose reason contains want.
func wantVerifyError(t testing.TB, err error, seq uint64, want string) {
	t.Helper()
	var verr *VerifyError
	if !errors.As(err, &verr) {
		t.Fatalf("error = %v, want a *VerifyError at %d (%q)", err, seq, want)
	}
	if !errors.Is(err, ErrVerify) {
		t.Errorf("%v does not wrap ErrVerify", err)
	}
	if verr.Seq != seq || !strings.Contains(verr.Reason, want) {
		t.Errorf("VerifyError{Seq: %d, Reason: %q}, want Seq %d and a reason with %q", verr.Seq, verr.Reason, seq, want)
	}
}
