package consent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	bolt "go.etcd.io/bbolt"

	"github.com/consentgate/consentgate/internal/pgdev"
)

// TestMain stops the package's PostgreSQL server (started by the first test
// that needs it) once every test is done.
func TestMain(m *testing.M) {
	code := m.Run()
	pgdev.CloseShared()
	os.Exit(code)
}

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

// backend is a kind of store every registry test runs against: the registry must
// behave the same on both.
type backend string

const (
	bboltBackend    backend = "bbolt"
	postgresBackend backend = "postgres"
)

// eachBackend runs test once per backend, as subtests named after it.
func eachBackend(t *testing.T, test func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range []backend{bboltBackend, postgresBackend} {
		t.Run(string(b), func(t *testing.T) { test(t, b) })
	}
}

// testStore is one new, empty store: a file under t.TempDir(), or a database of
// its own on the package's PostgreSQL server.
type testStore struct {
	backend backend
	path    string        // bbolt
	pg      *pgdev.Server // postgres
	db      string
}

func newTestStore(t testing.TB, b backend) *testStore {
	t.Helper()
	st := &testStore{backend: b}
	switch b {
	case bboltBackend:
		st.path = filepath.Join(t.TempDir(), "consents.db")
	case postgresBackend:
		st.pg, st.db = pgdev.NewDatabase(t)
	}
	return st
}

// postgres is how the consentgate role reaches the test database, over TLS
// verified as in production.
func (st *testStore) postgres() Postgres {
	return Postgres{Host: st.pg.Host, Port: uint16(st.pg.Port), Database: st.db, User: st.pg.User,
		Password: staticPassword(st.pg.Password), SSLMode: "verify-full", CAFile: st.pg.CAFile}
}

func staticPassword(pw string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return pw, nil }
}

// tryOpen opens a registry on the store, with no cleanup.
func (st *testStore) tryOpen(t testing.TB, o Options) (*Registry, error) {
	t.Helper()
	if st.backend == bboltBackend {
		return Open(st.path, o)
	}
	return OpenPostgres(context.Background(), st.postgres(), o)
}

// open opens a registry on the store. When the test ends it is closed and the
// store checked (see check).
func (st *testStore) open(t testing.TB, o Options) *Registry {
	t.Helper()
	r, err := st.tryOpen(t, o)
	if err != nil {
		t.Fatalf("opening the %s registry: %v", st.backend, err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		st.check(t)
	})
	return r
}

// mustOpen opens a registry on a new store of backend b.
func mustOpen(t testing.TB, b backend, o Options) (*Registry, *testStore) {
	t.Helper()
	st := newTestStore(t, b)
	return st.open(t, o), st
}

// rawState is what a store holds, read past the registry: consents by id,
// subject index entries ("<subject>/<id>"), pending authorizations, and token
// keys ("<consent id>/<vendor>", sorted).
type rawState struct {
	consents map[string]Consent
	index    []string
	pending  int
	tokens   []string
}

// count is how many records the consents take, index entries included, whatever
// any API says.
func (s rawState) count() int { return len(s.consents) + len(s.index) }

// raw reads the store of the open registry r.
func raw(t testing.TB, r *Registry) rawState {
	t.Helper()
	s := rawState{consents: map[string]Consent{}}
	var err error
	switch st := r.st.(type) {
	case *boltStore:
		err = st.db.View(func(tx *bolt.Tx) error { return rawBolt(tx, &s) })
	case *pgStore:
		err = rawPostgres(context.Background(), st, &s)
	default:
		t.Fatalf("unknown store %T", r.st)
	}
	if err != nil {
		t.Fatalf("reading the store: %v", err)
	}
	return s
}

func rawBolt(tx *bolt.Tx, s *rawState) error {
	err := tx.Bucket(bucketConsents).ForEach(func(k, v []byte) error {
		var c Consent
		if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("consent %s: %w", k, err)
		}
		s.consents[string(k)] = c
		return nil
	})
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketBySubject).ForEach(func(k, _ []byte) error {
		s.index = append(s.index, string(k))
		return nil
	}); err != nil {
		return err
	}
	s.pending = tx.Bucket(bucketPending).Stats().KeyN
	return tx.Bucket(bucketTokens).ForEach(func(k, _ []byte) error {
		s.tokens = append(s.tokens, strings.ReplaceAll(string(k), "\x00", "/"))
		return nil
	})
}

// rawPostgres reads the tables; the subject column is the index, and the row
// must agree with the JSON it holds.
func rawPostgres(ctx context.Context, st *pgStore, s *rawState) error {
	rows, err := st.pool.Query(ctx, `SELECT id, app, subject, doc FROM consentgate_consents`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id, app, subject string
		var doc []byte
		if err := rows.Scan(&id, &app, &subject, &doc); err != nil {
			return err
		}
		var c Consent
		if err := json.Unmarshal(doc, &c); err != nil {
			return fmt.Errorf("consent %s: %w", id, err)
		}
		if c.ID != id || c.App != app || c.Subject != subject {
			return fmt.Errorf("row %s/%s/%s holds consent %s of app %s, subject %s", id, app, subject, c.ID, c.App, c.Subject)
		}
		s.consents[id] = c
		s.index = append(s.index, subject+"/"+id)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if err := st.pool.QueryRow(ctx, `SELECT count(*) FROM consentgate_oauth_pending`).Scan(&s.pending); err != nil {
		return err
	}
	rows, err = st.pool.Query(ctx, `SELECT consent_id || '/' || vendor FROM consentgate_oauth_tokens ORDER BY 1`)
	if err != nil {
		return err
	}
	s.tokens, err = pgx.CollectRows(rows, pgx.RowTo[string])
	return err
}

// check verifies a closed store: bbolt's own consistency check, then, on both
// backends, that every consent has exactly its one index entry, is stored as
// active or revoked, and that no tokens outlive their consent's revocation.
func (st *testStore) check(t testing.TB) {
	t.Helper()
	var s rawState
	var err error
	switch st.backend {
	case bboltBackend:
		s, err = st.rawBoltFile(t)
	case postgresBackend:
		r, oerr := st.tryOpen(t, Options{SubjectKey: testKey, Vendors: []string{"x"}, Purposes: []string{"x"}, Categories: []string{"x"}})
		if oerr != nil {
			t.Errorf("reopening the database to check it: %v", oerr)
			return
		}
		s = raw(t, r)
		r.Close()
	}
	if err != nil {
		t.Errorf("checking the %s store: %v", st.backend, err)
		return
	}
	want := map[string]bool{}
	for id, c := range s.consents {
		if c.ID != id {
			t.Errorf("consent stored under %q has id %q", id, c.ID)
		}
		if c.Status != Active && c.Status != Revoked {
			t.Errorf("consent %s stored with status %q", c.ID, c.Status)
		}
		want[string(subjectKey(c.Subject, c.ID))] = true
	}
	for _, k := range s.index {
		if !want[k] {
			t.Errorf("index entry %q has no consent", k)
		}
		delete(want, k)
	}
	for k := range want {
		t.Errorf("consent index lacks %q", k)
	}
	for _, k := range s.tokens {
		id, _, _ := strings.Cut(k, "/")
		if c, ok := s.consents[id]; !ok {
			t.Errorf("tokens stored for consent %s, which is not stored", id)
		} else if c.Status == Revoked {
			t.Errorf("tokens stored for revoked consent %s", id)
		}
	}
}

// rawBoltFile opens the closed file read-only, runs bbolt's check and reads it.
func (st *testStore) rawBoltFile(t testing.TB) (rawState, error) {
	s := rawState{consents: map[string]Consent{}}
	db, err := bolt.Open(st.path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return s, err
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt check: %v", err)
		}
		return rawBolt(tx, &s)
	})
	return s, err
}

// contents is everything the store holds and, for PostgreSQL, everything the
// server logged, as text to search for what must not be there.
func (st *testStore) contents(t testing.TB) string {
	t.Helper()
	if st.backend == bboltBackend {
		data, err := os.ReadFile(st.path)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	var b strings.Builder
	for _, table := range []string{"consentgate_consents", "consentgate_oauth_pending", "consentgate_oauth_tokens", "consentgate_resources", "consentgate_meta", "consentgate_data_keys", "consentgate_value_tokens"} {
		rows, err := st.pg.Query(context.Background(), st.db, "SELECT * FROM "+table)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(&b, table, rows)
	}
	b.WriteString(st.pg.Log())
	return b.String()
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
