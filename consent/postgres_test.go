package consent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/freeport"

	"github.com/consentgate/consentgate/internal/logsink"
	"github.com/consentgate/consentgate/internal/pgdev"
)

// replica is one gateway's registry on a shared database, with its own hook
// and log.
type replica struct {
	*Registry
	hooks *hookLog
	logs  *logsink.Buffer
}

// twoReplicas opens two registries on one new database, as two gateways would.
func twoReplicas(t *testing.T, clk *clock) (a, b replica, st *testStore) {
	t.Helper()
	st = newTestStore(t, postgresBackend)
	open := func() replica {
		rp := replica{hooks: &hookLog{}, logs: &logsink.Buffer{}}
		o := testOptions(clk)
		o.Hook = rp.hooks.hook
		o.Logger = slog.New(slog.NewJSONHandler(rp.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		rp.Registry = st.open(t, o)
		return rp
	}
	return open(), open(), st
}

// What one gateway writes, the other reads on its next call: there is no cache.
func TestPostgresReplicasShareTheRegistry(t *testing.T) {
	clk := newClock()
	a, b, _ := twoReplicas(t, clk)
	ctx := t.Context()
	req := testRequest()
	req.Vendors = []string{"airbank", "kb"}
	c, err := a.Create(ctx, "web", req)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.Get(ctx, c.ID); err != nil || got.Status != Active || got.Subject != c.Subject {
		t.Fatalf("replica B Get = %+v, %v", got, err)
	}
	if list, err := b.BySubject(ctx, "web", testSubject); err != nil || len(list) != 1 || list[0].ID != c.ID {
		t.Fatalf("replica B BySubject = %+v, %v", list, err)
	}

	// Authorised through A, refreshed through B, read by A.
	if err := a.CompleteAuthorization(ctx, "web", c.ID, Authorization{Vendor: "kb", AuthorizedAt: clk.Now()}, []byte("sealed-1")); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Get(ctx, c.ID); len(got.Authorizations) != 1 || got.Authorizations[0].Vendor != "kb" {
		t.Errorf("replica B sees evidence %+v", got.Authorizations)
	}
	if err := b.SwapTokens(ctx, c.ID, "kb", []byte("sealed-1"), []byte("sealed-2")); err != nil {
		t.Fatal(err)
	}
	if tok, err := a.Tokens(ctx, c.ID, "kb"); err != nil || string(tok) != "sealed-2" {
		t.Errorf("replica A reads tokens %q, %v; want sealed-2", tok, err)
	}

	// Revoked on B: A's next lookup sees it, and the tokens are gone for both.
	clk.Add(time.Minute)
	if _, err := b.Revoke(ctx, "web", "app", c.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Get(ctx, c.ID); err != nil || got.Status != Revoked || got.RevokedBy != "web" {
		t.Fatalf("replica A after B's revoke: %+v, %v", got, err)
	}
	if _, err := a.Tokens(ctx, c.ID, "kb"); !errors.Is(err, ErrNoTokens) {
		t.Errorf("replica A tokens after B's revoke: %v, want ErrNoTokens", err)
	}
	// Revoking again on A is no change, and A's audit records none.
	if _, err := a.Revoke(ctx, "web", "app", c.ID); err != nil {
		t.Fatal(err)
	}
	kinds := func(h *hookLog) (out []string) {
		for _, ch := range h.seen() {
			out = append(out, ch.Kind)
		}
		return out
	}
	if got, want := kinds(a.hooks), []string{ChangeCreated, ChangeAuthorized}; !slices.Equal(got, want) {
		t.Errorf("replica A recorded %v, want %v", got, want)
	}
	if got, want := kinds(b.hooks), []string{ChangeRevoked}; !slices.Equal(got, want) {
		t.Errorf("replica B recorded %v, want %v", got, want)
	}
	if del := b.hooks.seen()[0].TokensDeleted; !slices.Equal(del, []string{"kb"}) {
		t.Errorf("B's revocation deleted tokens of %v, want [kb]", del)
	}
}

// race runs f(i) for i < n at once and waits for all.
func race(n int, f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

// An OAuth2 state is good for one try: of gateways taking it at once, exactly
// one gets it, whichever replica the browser came back to.
func TestPostgresConcurrentTakeAuthorization(t *testing.T) {
	clk := newClock()
	a, b, _ := twoReplicas(t, clk)
	ctx := t.Context()
	c, err := a.Create(ctx, "web", testRequest())
	if err != nil {
		t.Fatal(err)
	}
	const states, takers = 20, 6
	for k := range states {
		key := []byte(fmt.Sprintf("state-%d", k))
		if err := a.BeginAuthorization(ctx, key, pendingFor(c, "airbank", clk)); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var won, unknown int
		race(takers, func(i int) {
			r := []replica{a, b}[i%2]
			p, err := r.TakeAuthorization(ctx, key)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && p.ConsentID == c.ID:
				won++
			case errors.Is(err, ErrUnknownState):
				unknown++
			default:
				t.Errorf("take: %+v, %v", p, err)
			}
		})
		if won != 1 || unknown != takers-1 {
			t.Fatalf("state %d: %d takers got it, %d were refused; want 1 and %d", k, won, unknown, takers-1)
		}
	}
	if n := raw(t, a.Registry).pending; n != 0 {
		t.Errorf("%d pending authorizations left", n)
	}
}

// A refresh is a compare-and-swap: of replicas refreshing the same tokens at
// once, one wins and the others change nothing; a revocation racing them
// leaves no tokens behind.
func TestPostgresSwapTokensAcrossReplicas(t *testing.T) {
	clk := newClock()
	a, b, _ := twoReplicas(t, clk)
	ctx := t.Context()
	for round := range 10 {
		c, err := a.Create(ctx, "web", testRequest())
		if err != nil {
			t.Fatal(err)
		}
		if err := a.CompleteAuthorization(ctx, "web", c.ID, Authorization{Vendor: "airbank", AuthorizedAt: clk.Now()}, []byte("v1")); err != nil {
			t.Fatal(err)
		}
		const swappers = 6
		var mu sync.Mutex
		var winners []string
		race(swappers, func(i int) {
			r := []replica{a, b}[i%2]
			next := fmt.Sprintf("v2-from-%d", i)
			err := r.SwapTokens(ctx, c.ID, "airbank", []byte("v1"), []byte(next))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners = append(winners, next)
			case !errors.Is(err, ErrNoTokens):
				t.Errorf("swap: %v", err)
			}
		})
		if len(winners) != 1 {
			t.Fatalf("round %d: %d swaps from v1 succeeded (%v), want 1", round, len(winners), winners)
		}
		if tok, err := b.Tokens(ctx, c.ID, "airbank"); err != nil || string(tok) != winners[0] {
			t.Fatalf("round %d: stored %q, %v; want the winner's %q", round, tok, err, winners[0])
		}

		// A revocation on one replica racing a refresh on the other.
		race(2, func(i int) {
			if i == 0 {
				if _, err := a.Revoke(ctx, "web", "app", c.ID); err != nil {
					t.Errorf("revoke: %v", err)
				}
				return
			}
			if err := b.SwapTokens(ctx, c.ID, "airbank", []byte(winners[0]), []byte("v3")); err != nil && !errors.Is(err, ErrNoTokens) {
				t.Errorf("swap: %v", err)
			}
		})
		if _, err := b.Tokens(ctx, c.ID, "airbank"); !errors.Is(err, ErrNoTokens) {
			t.Fatalf("round %d: tokens after a revocation raced a refresh: %v", round, err)
		}
	}
}

// Two gateways changing one consent at once make one change, and the audit log
// records one: revoke and revoke, seed and seed, complete and revoke.
func TestPostgresConcurrentChangesRecordOnce(t *testing.T) {
	clk := newClock()
	a, b, _ := twoReplicas(t, clk)
	ctx := t.Context()
	count := func(kind string) (n int) {
		for _, h := range []*hookLog{a.hooks, b.hooks} {
			for _, ch := range h.seen() {
				if ch.Kind == kind {
					n++
				}
			}
		}
		return n
	}
	for round := range 10 {
		req := testRequest()
		req.Vendors = []string{"airbank", "kb"}
		c, err := a.Create(ctx, "web", req)
		if err != nil {
			t.Fatal(err)
		}
		revokes := count(ChangeRevoked)
		race(4, func(i int) {
			r := []replica{a, b}[i%2]
			if got, err := r.Revoke(ctx, "web", "app", c.ID); err != nil || got.Status != Revoked {
				t.Errorf("revoke: %+v, %v", got, err)
			}
		})
		if n := count(ChangeRevoked) - revokes; n != 1 {
			t.Fatalf("round %d: %d revocations recorded, want 1", round, n)
		}

		seed := seedConsent(a.Registry)
		seed.ID = fmt.Sprintf("seed-%d", round)
		creates := count(ChangeCreated)
		race(4, func(i int) {
			if err := []replica{a, b}[i%2].Put(ctx, seed); err != nil {
				t.Errorf("Put: %v", err)
			}
		})
		if n := count(ChangeCreated) - creates; n != 1 {
			t.Fatalf("round %d: the seed was recorded created %d times, want 1", round, n)
		}

		// An end user completing a login while the app revokes: either order is
		// fine, but the revoked consent never keeps tokens (checked again for the
		// whole database when the test ends).
		d, err := b.Create(ctx, "web", req)
		if err != nil {
			t.Fatal(err)
		}
		race(2, func(i int) {
			if i == 0 {
				a.CompleteAuthorization(ctx, "web", d.ID, Authorization{Vendor: "kb", AuthorizedAt: clk.Now()}, []byte("sealed"))
				return
			}
			if _, err := b.Revoke(ctx, "web", "app", d.ID); err != nil {
				t.Errorf("revoke: %v", err)
			}
		})
		if _, err := a.Tokens(ctx, d.ID, "kb"); !errors.Is(err, ErrNoTokens) {
			t.Fatalf("round %d: a revoked consent kept tokens: %v", round, err)
		}
	}
}

// Replicas starting together on a new database both come up: one creates the
// tables, the other waits for it and finds them.
func TestPostgresConcurrentFirstOpen(t *testing.T) {
	st := newTestStore(t, postgresBackend)
	regs := make([]*Registry, 4)
	errs := make([]error, 4)
	race(4, func(i int) { regs[i], errs[i] = st.tryOpen(t, testOptions(newClock())) })
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		defer regs[i].Close()
	}
	c, err := regs[0].Create(t.Context(), "web", testRequest())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := regs[3].Get(t.Context(), c.ID); err != nil {
		t.Fatal(err)
	}
}

// The schema is created once and then only read: a role that may not create
// tables opens a database a first gateway has set up, and a database a newer
// consentgate has migrated is refused rather than misread.
func TestPostgresSchemaVersion(t *testing.T) {
	st := newTestStore(t, postgresBackend)
	r := st.open(t, testOptions(newClock()))
	r.Close()
	ctx := t.Context()
	if got, err := st.pg.Query(ctx, st.db, `SELECT value FROM consentgate_meta WHERE name = 'schema_version'`); err != nil || len(got) != 1 || got[0][0] != fmt.Sprint(len(pgMigrations)) {
		t.Fatalf("schema_version = %v, %v", got, err)
	}
	// In PostgreSQL 15 the database owner may create in public; take that away.
	if _, err := st.pg.Query(ctx, st.db, `ALTER SCHEMA public OWNER TO postgres`); err != nil {
		t.Fatal(err)
	}
	r2, err := st.tryOpen(t, testOptions(newClock()))
	if err != nil {
		t.Fatalf("reopening without CREATE: %v", err)
	}
	r2.Close()

	if _, err := st.pg.Query(ctx, st.db, `UPDATE consentgate_meta SET value = '99' WHERE name = 'schema_version'`); err != nil {
		t.Fatal(err)
	}
	_, err = st.tryOpen(t, testOptions(newClock()))
	if !errors.Is(err, ErrSchema) {
		t.Fatalf("Open of a newer schema: %v, want ErrSchema", err)
	}
	mustContain(t, "error", err.Error(), "version 99")
	if _, err := st.pg.Query(ctx, st.db, `UPDATE consentgate_meta SET value = $1 WHERE name = 'schema_version'`, fmt.Sprint(len(pgMigrations))); err != nil {
		t.Fatal(err)
	}
}

// TLS as libpq means it: verify-full checks the chain and the name; a server
// certificate from another CA is refused.
func TestPostgresTLSModes(t *testing.T) {
	st := newTestStore(t, postgresBackend)
	otherCA := writeOtherCA(t)
	tests := []struct {
		name   string
		change func(*Postgres)
		ok     bool
	}{
		{"verify-full", func(*Postgres) {}, true},
		{"verify-full by name", func(p *Postgres) { p.Host = "localhost" }, true},
		{"verify-ca", func(p *Postgres) { p.SSLMode = "verify-ca" }, true},
		{"require", func(p *Postgres) { p.SSLMode = "require"; p.CAFile = "" }, true},
		{"disable", func(p *Postgres) { p.SSLMode = "disable"; p.CAFile = "" }, true},
		{"default is verify-full", func(p *Postgres) { p.SSLMode = "" }, true},
		{"verify-full, another CA", func(p *Postgres) { p.CAFile = otherCA }, false},
		{"verify-full, system roots", func(p *Postgres) { p.CAFile = "" }, false},
		{"unknown mode", func(p *Postgres) { p.SSLMode = "prefer" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := st.postgres()
			tt.change(&p)
			r, err := OpenPostgres(t.Context(), p, testOptions(newClock()))
			if err == nil {
				r.Close()
			}
			if (err == nil) != tt.ok {
				t.Fatalf("open: %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// writeOtherCA writes a new CA certificate, one that signed nothing the test
// server holds.
func writeOtherCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "another test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "other-ca.crt")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// The database password is in no error, however opening fails, in no log line,
// and not in what the server logged.
func TestPostgresPasswordNeverLeaves(t *testing.T) {
	st := newTestStore(t, postgresBackend)
	logs := &logsink.Buffer{}
	o := testOptions(newClock())
	o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	closed := st.postgres()
	closed.Port = uint16(freePortForTest(t))
	wrong := "wrong-password-" + st.db
	failures := []struct {
		name   string
		change func(*Postgres)
		detail string
	}{
		{"wrong password", func(p *Postgres) { p.Password = staticPassword(wrong) }, "password authentication failed"},
		{"password unavailable", func(p *Postgres) {
			p.Password = func(context.Context) (string, error) {
				return "", errors.New("secret consentgate/postgres#password expired")
			}
		}, "reading the database password: secret consentgate/postgres#password expired"},
		{"nothing listening", func(p *Postgres) { *p = closed }, "connect"},
		{"unknown database", func(p *Postgres) { p.Database = "no_such_db" }, "no_such_db"},
		{"missing CA file", func(p *Postgres) { p.CAFile = "/nonexistent/ca.crt" }, "/nonexistent/ca.crt"},
		{"server not trusted", func(p *Postgres) { p.CAFile = writeOtherCA(t) }, "certificate"},
	}
	var errs strings.Builder
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			p := st.postgres()
			tt.change(&p)
			_, err := OpenPostgres(t.Context(), p, o)
			if err == nil {
				t.Fatal("opened")
			}
			mustContain(t, "error", err.Error(), tt.detail)
			mustContain(t, "error", err.Error(), p.String())
			fmt.Fprintln(&errs, err)
		})
	}
	r := st.open(t, o)
	c, err := r.Create(t.Context(), "web", testRequest())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Revoke(t.Context(), "web", "app", c.ID); err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{"errors": errs.String(), "log": logs.String(), "server log": st.pg.Log(),
		"name": fmt.Sprint(st.postgres())}
	for what, out := range outputs {
		for _, pw := range []string{st.pg.Password, wrong} {
			if strings.Contains(out, pw) {
				t.Errorf("a password is in the %s:\n%s", what, out)
			}
		}
	}
	if !strings.Contains(st.pg.Log(), "password authentication failed") {
		t.Error("the server log does not show the failed login: this search proves nothing")
	}
}

func freePortForTest(t *testing.T) int {
	t.Helper()
	port, err := freeport.Loopback()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// With the database unreachable, every call fails with an error that is not
// "not found" (the gateway answers 503 and calls no vendor), no change is
// recorded, and the registry recovers when the database is back.
func TestPostgresOutageFailsClosed(t *testing.T) {
	clk := newClock()
	hooks := &hookLog{}
	o := testOptions(clk)
	o.Hook = hooks.hook
	r, st := mustOpen(t, postgresBackend, o)
	ctx := t.Context()
	c, err := r.Create(ctx, "web", testRequest())
	if err != nil {
		t.Fatal(err)
	}
	recorded := len(hooks.seen())
	outage := func(on bool) {
		t.Helper()
		if err := st.pg.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %s ALLOW_CONNECTIONS %t`, st.db, !on)); err != nil {
			t.Fatal(err)
		}
		if on {
			if err := st.pg.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, st.db); err != nil {
				t.Fatal(err)
			}
		}
	}
	outage(true)
	calls := map[string]func() error{
		"Get":        func() error { _, err := r.Get(ctx, c.ID); return err },
		"BySubject":  func() error { _, err := r.BySubject(ctx, "web", testSubject); return err },
		"Revoke":     func() error { _, err := r.Revoke(ctx, "web", "app", c.ID); return err },
		"Create":     func() error { _, err := r.Create(ctx, "web", testRequest()); return err },
		"Tokens":     func() error { _, err := r.Tokens(ctx, c.ID, "airbank"); return err },
		"TakeState":  func() error { _, err := r.TakeAuthorization(ctx, []byte("k")); return err },
		"BeginState": func() error { return r.BeginAuthorization(ctx, []byte("k"), pendingFor(c, "airbank", clk)) },
	}
	for name, call := range calls {
		err := call()
		if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrNoTokens) || errors.Is(err, ErrUnknownState) {
			t.Errorf("%s during the outage: %v; want a storage error", name, err)
		} else if strings.Contains(err.Error(), st.pg.Password) {
			t.Errorf("%s error holds the password", name)
		}
	}
	if n := len(hooks.seen()); n != recorded {
		t.Errorf("%d changes recorded during the outage", n-recorded)
	}
	outage(false)
	// The pool drops connections the outage broke as it meets them.
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := r.Get(ctx, c.ID)
		if err == nil {
			if got.Status != Active {
				t.Errorf("after the outage the consent is %s", got.Status)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after the outage: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A password rotated in the secret provider is used by the next connection:
// no restart, and connections already open carry on.
func TestPostgresPasswordRotation(t *testing.T) {
	s := pgdev.Shared(t)
	ctx := t.Context()
	role := fmt.Sprintf("rotating_%d", time.Now().UnixNano())
	if err := s.Exec(ctx, fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD 'first-password'`, role)); err != nil {
		t.Fatal(err)
	}
	db := role + "_db"
	if err := s.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %s OWNER %s`, db, role)); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	current := "first-password"
	p := Postgres{Host: s.Host, Port: uint16(s.Port), Database: db, User: role, SSLMode: "verify-full", CAFile: s.CAFile,
		Password: func(context.Context) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			return current, nil
		}}
	r, err := OpenPostgres(ctx, p, testOptions(newClock()))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := r.Create(ctx, "web", testRequest())
	if err != nil {
		t.Fatal(err)
	}
	// The DBA rotates the password, the secret provider serves the new one, and
	// every session of the old one ends.
	if err := s.Exec(ctx, fmt.Sprintf(`ALTER ROLE %s PASSWORD 'second-password'`, role)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	current = "second-password"
	mu.Unlock()
	if err := s.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, db); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Broken connections are dropped as the pool meets them; new ones log in
		// with the new password.
		if _, err := r.Get(ctx, c.ID); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("after the rotation: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	rows, err := s.Query(ctx, "postgres", `SELECT count(*) FROM pg_stat_activity WHERE datname = $1`, db)
	if err != nil || rows[0][0] == "0" {
		t.Errorf("no session with the new password: %v, %v", rows, err)
	}
}

// docs/postgres.md's SQL is what operators run: both blocks, run as the
// superuser (with fresh names and passwords), give a database the registry
// migrates as the owner and then uses as the least-privileged role.
func TestDocumentedPostgresSetup(t *testing.T) {
	doc, err := os.ReadFile("../docs/postgres.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) != 2 {
		t.Fatalf("docs/postgres.md has %d sql blocks, want 2 (setup, least privilege)", len(blocks))
	}
	s := pgdev.Shared(t)
	ctx := t.Context()
	name := fmt.Sprintf("doc_%d", time.Now().UnixNano())
	owner, app := "owner-"+name, "app-"+name
	rename := func(sql string) string {
		sql = regexp.MustCompile(`\bconsentgate(_app)?\b`).ReplaceAllString(sql, name+"$1")
		return strings.NewReplacer("'change-me'", "'"+owner+"'", "'change-me-too'", "'"+app+"'").Replace(sql)
	}
	// CREATE DATABASE may not run inside the implicit transaction of a
	// multi-statement string: one statement at a time.
	for _, stmt := range strings.Split(rename(blocks[0][1]), ";") {
		if strings.TrimSpace(stmt) != "" {
			if err := s.Exec(ctx, stmt); err != nil {
				t.Fatalf("setup block: %v", err)
			}
		}
	}
	p := Postgres{Host: s.Host, Port: uint16(s.Port), Database: name, User: name, Password: staticPassword(owner),
		SSLMode: "verify-full", CAFile: s.CAFile}
	first, err := OpenPostgres(ctx, p, testOptions(newClock()))
	if err != nil {
		t.Fatalf("first start, as the owner: %v", err)
	}
	first.Close()
	if err := s.ExecIn(ctx, name, rename(blocks[1][1])); err != nil {
		t.Fatalf("least-privilege block: %v", err)
	}
	p.User, p.Password = name+"_app", staticPassword(app)
	clk := newClock()
	r, err := OpenPostgres(ctx, p, testOptions(clk))
	if err != nil {
		t.Fatalf("start as the least-privileged role: %v", err)
	}
	defer r.Close()
	// Every kind of write the registry makes.
	c, err := r.Create(ctx, "web", testRequest())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.BeginAuthorization(ctx, []byte("k"), pendingFor(c, "airbank", clk)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.TakeAuthorization(ctx, []byte("k")); err != nil {
		t.Fatal(err)
	}
	if err := r.CompleteAuthorization(ctx, "web", c.ID, Authorization{Vendor: "airbank", AuthorizedAt: clk.Now()}, []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := r.SwapTokens(ctx, c.ID, "airbank", []byte("v1"), []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Revoke(ctx, "web", "app", c.ID); err != nil {
		t.Fatal(err)
	}
	if err := r.Put(ctx, seedConsent(r)); err != nil {
		t.Fatal(err)
	}
	// And it could not have created anything itself.
	if err := s.ExecIn(ctx, name, fmt.Sprintf(`SET ROLE %s_app; CREATE TABLE nope (x int)`, name)); err == nil {
		t.Error("the least-privileged role may create tables")
	}
}
