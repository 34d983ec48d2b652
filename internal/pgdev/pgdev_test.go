package pgdev

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) {
	code := m.Run()
	CloseShared()
	os.Exit(code)
}

// Without PostgreSQL, the error says how to install it.
func TestMissingServerNamesTheInstallCommand(t *testing.T) {
	t.Setenv(BinEnv, "/nonexistent")
	_, err := BinDir()
	if err == nil || !strings.Contains(err.Error(), "make test-deps") || !strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Fatalf("err = %v", err)
	}
}

// The role logs in with its password only (SCRAM, not trust), over TLS that
// verifies against CAFile, and owns the databases CreateDatabase makes.
func TestServer(t *testing.T) {
	s, db := NewDatabase(t)
	ctx := t.Context()
	dsn := func(password, sslmode string) string {
		return fmt.Sprintf("host=%s port=%d dbname=%s user=%s password=%s sslmode=%s sslrootcert=%s",
			s.Host, s.Port, db, s.User, password, sslmode, s.CAFile)
	}
	conn, err := pgx.Connect(ctx, dsn(s.Password, "verify-full"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var ssl bool
	var owner string
	err = conn.QueryRow(ctx, `SELECT s.ssl, pg_get_userbyid(d.datdba) FROM pg_stat_ssl s, pg_database d
		WHERE s.pid = pg_backend_pid() AND d.datname = current_database()`).Scan(&ssl, &owner)
	if err != nil || !ssl || owner != s.User {
		t.Errorf("ssl %v, database owner %q, %v", ssl, owner, err)
	}
	if c, err := pgx.Connect(ctx, dsn("not-"+s.Password, "verify-full")); err == nil {
		c.Close(ctx)
		t.Error("a wrong password logged in")
	}
	// As root, the cluster is not root's: PostgreSQL would refuse to run.
	if os.Geteuid() == 0 {
		rows, err := s.Query(ctx, db, `SELECT current_setting('data_directory')`)
		if err != nil {
			t.Fatal(err)
		}
		info, err := os.Stat(rows[0][0])
		if err != nil {
			t.Fatal(err)
		}
		if st, ok := info.Sys().(*syscall.Stat_t); !ok || st.Uid == 0 {
			t.Errorf("data directory %s belongs to root", rows[0][0])
		}
	}
}
