package consent

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// testSubject is the raw user id the tests hand to the registry. It is long and odd
// enough that finding it anywhere can only mean it leaked.
const testSubject = "raw-user-id-4711-Jana-Novakova"

var testKey = []byte("0123456789abcdef0123456789abcdef")

// clock is an injectable Now that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testOptions are the options every test starts from, on a clock it can move.
func testOptions(c *clock) Options {
	return Options{
		SubjectKey: testKey,
		Vendors:    []string{"airbank", "kb", "finid"},
		Purposes:   []string{"kyc-onboarding", "age-verification"},
		Categories: []string{"identity", "address", "document"},
		Now:        c.Now,
	}
}

func testRequest() Request {
	return Request{
		Subject:    testSubject,
		Vendors:    []string{"airbank"},
		Purposes:   []string{"kyc-onboarding"},
		Categories: []string{"identity", "address"},
		Evidence:   Evidence{Text: "I agree that Air Bank may confirm my identity.", Reference: "form-123"},
		TTL:        "720h",
	}
}

// MustOpen opens a registry on a new file under t.TempDir(). When the test ends it is
// closed and the file checked: bbolt's own consistency check, then our index.
func MustOpen(t testing.TB, o Options) (*Registry, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "consents.db")
	return mustOpenPath(t, path, o), path
}

// mustOpenPath opens the file at path, with the same check at the end of the test.
func mustOpenPath(t testing.TB, path string, o Options) *Registry {
	t.Helper()
	r, err := Open(path, o)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		checkFile(t, path)
	})
	return r
}

// checkFile runs bbolt's tx.Check on a closed registry file, and checks that every
// consent has exactly its one index entry and every index entry its consent.
func checkFile(t testing.TB, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Errorf("reopening %s to check it: %v", path, err)
		return
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt check: %v", err)
		}
		want := map[string]bool{}
		err := tx.Bucket(bucketConsents).ForEach(func(k, v []byte) error {
			var c Consent
			if err := json.Unmarshal(v, &c); err != nil {
				return err
			}
			if c.ID != string(k) {
				t.Errorf("consent stored under %q has id %q", k, c.ID)
			}
			if c.Status != Active && c.Status != Revoked {
				t.Errorf("consent %s stored with status %q", c.ID, c.Status)
			}
			want[string(subjectKey(c.Subject, c.ID))] = true
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketBySubject).ForEach(func(k, _ []byte) error {
			if !want[string(k)] {
				t.Errorf("index entry %q has no consent", k)
			}
			delete(want, string(k))
			return nil
		})
		for k := range want {
			t.Errorf("consent index lacks %q", k)
		}
		if err != nil {
			return err
		}
		// No vendor tokens outlive their consent's revocation.
		return tx.Bucket(bucketTokens).ForEach(func(k, _ []byte) error {
			id, _, _ := strings.Cut(string(k), "\x00")
			var c Consent
			if err := loadConsent(tx, id, &c); err != nil {
				t.Errorf("tokens stored for consent %s, which is not stored: %v", id, err)
			} else if c.Status == Revoked {
				t.Errorf("tokens stored for revoked consent %s", id)
			}
			return nil
		})
	})
	if err != nil {
		t.Errorf("checking %s: %v", path, err)
	}
}

// storedCount is how many consents the file holds, whatever any API says.
func storedCount(t testing.TB, r *Registry) int {
	t.Helper()
	n := 0
	err := r.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketConsents).Stats().KeyN + tx.Bucket(bucketBySubject).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// hookLog records the changes a hook saw, and fails on demand.
type hookLog struct {
	mu      sync.Mutex
	changes []Change
	fail    error
}

func (h *hookLog) hook(_ context.Context, c Change) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fail != nil {
		return h.fail
	}
	h.changes = append(h.changes, c)
	return nil
}

func (h *hookLog) seen() []Change {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Change(nil), h.changes...)
}

func mustContain(t testing.TB, what, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%s %q does not contain %q", what, s, sub)
	}
}
