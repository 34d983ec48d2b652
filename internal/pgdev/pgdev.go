// Package pgdev runs a throwaway PostgreSQL server for tests: initdb into a new
// temporary directory, a free loopback port and a unix socket there, a password
// (SCRAM) role for consentgate, optionally TLS; Close stops it and removes it all.
package pgdev

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/consentgate/consentgate/internal/freeport"

	"github.com/jackc/pgx/v5"
)

// BinEnv names the environment variable that says where initdb and postgres are,
// for systems that keep them elsewhere than PATH or /usr/lib/postgresql/*/bin.
const BinEnv = "CONSENTGATE_POSTGRES_BIN"

// InstallHint is how to get PostgreSQL, for error messages.
const InstallHint = "install it with `make test-deps` (deploy/scripts/test-deps.sh runs `apt-get install postgresql`), or set " + BinEnv + " to the folder holding initdb and postgres"

// ErrNotInstalled means the PostgreSQL server programs are missing.
var ErrNotInstalled = errors.New("PostgreSQL server (initdb, postgres) not found")

// Options shape a Server.
type Options struct {
	// TLS turns on ssl with a server certificate for 127.0.0.1 and localhost,
	// issued by a new CA whose certificate is in Server.CAFile.
	TLS bool
}

// Server is a running PostgreSQL server on loopback.
type Server struct {
	// Host and Port are where it listens for TCP (127.0.0.1).
	Host string
	Port int
	// SocketDir holds its unix socket.
	SocketDir string
	// User and Password are a role that logs in with a password (SCRAM): the
	// owner of every database CreateDatabase makes, as consentgate's role would
	// own its database.
	User, Password string
	// CAFile verifies the server's certificate (TLS only).
	CAFile string

	dir, logFile, superPassword string
	cmd                         *exec.Cmd
	exited                      chan struct{}

	mu    sync.Mutex // guards admin
	admin *pgx.Conn
}

// BinDir finds the folder holding initdb and postgres: $CONSENTGATE_POSTGRES_BIN,
// else initdb's folder on PATH (symlinks followed), else the newest
// /usr/lib/postgresql/<version>/bin (Debian's packages).
func BinDir() (string, error) {
	has := func(dir string) bool {
		for _, p := range []string{"initdb", "postgres"} {
			if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
				return false
			}
		}
		return true
	}
	if d := os.Getenv(BinEnv); d != "" {
		if !has(d) {
			return "", fmt.Errorf("%w in %s=%s; %s", ErrNotInstalled, BinEnv, d, InstallHint)
		}
		return d, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil && has(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(found, func(a, b string) int { return version(b) - version(a) })
	for _, d := range found {
		if has(d) {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w on PATH or in /usr/lib/postgresql/*/bin; %s", ErrNotInstalled, InstallHint)
}

// version is the major version in /usr/lib/postgresql/<version>/bin.
func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Start creates a cluster in a new temporary directory and starts it. PostgreSQL
// refuses to run as root, so as root the cluster belongs to, and the server runs
// as, the user postgres (which Debian's package creates).
func Start(ctx context.Context, o Options) (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	owner, err := runAs()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgdev-")
	if err != nil {
		return nil, err
	}
	s := &Server{Host: "127.0.0.1", SocketDir: dir, User: "consentgate", Password: "pgdev-" + randomHex(16),
		dir: dir, logFile: filepath.Join(dir, "postgres.log"), superPassword: randomHex(16)}
	if err := s.start(ctx, bin, owner, o); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) start(ctx context.Context, bin string, owner *syscall.Credential, o Options) error {
	if err := s.own(owner, s.dir); err != nil {
		return err
	}
	pwfile := filepath.Join(s.dir, "superuser-password")
	if err := s.writeFile(owner, pwfile, []byte(s.superPassword+"\n")); err != nil {
		return err
	}
	data := filepath.Join(s.dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"--auth=scram-sha-256", "--pwfile="+pwfile, "-E", "UTF8", "--no-locale", "--no-sync")
	initdb.Dir, initdb.SysProcAttr = s.dir, childAttrs(owner)
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	os.Remove(pwfile)

	args := []string{"-D", data, "-k", s.SocketDir, "-c", "listen_addresses=" + s.Host,
		// A throwaway server: durability buys nothing, and a loaded machine is slow enough.
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=32MB", "-c", "password_encryption=scram-sha-256"}
	if o.TLS {
		tlsArgs, err := s.writeTLS(owner)
		if err != nil {
			return err
		}
		args = append(args, tlsArgs...)
	}
	// The port is free when chosen, and may not be when bound: try a few.
	var err error
	for range 3 {
		if s.Port, err = freeport.Loopback(); err != nil {
			return err
		}
		if err = s.run(ctx, bin, owner, append(args, "-p", strconv.Itoa(s.Port))); err == nil {
			break
		}
	}
	if err != nil {
		return err
	}
	return s.createRole(ctx)
}

// run starts postgres and waits until the superuser can log in.
func (s *Server) run(ctx context.Context, bin string, owner *syscall.Credential, args []string) error {
	log, err := os.OpenFile(s.logFile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer log.Close() // the child has its own descriptor
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = s.dir, log, log
	cmd.SysProcAttr = childAttrs(owner)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	deadline := time.Now().Add(60 * time.Second) // a loaded 2-core machine
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := pgx.Connect(cctx, s.superDSN("postgres"))
		cancel()
		if err == nil {
			s.admin = conn
			return nil
		}
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("postgres exited at start:\n%s", s.Log())
		case <-ctx.Done():
			s.stop()
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return fmt.Errorf("postgres not ready after 60s: %v\n%s", err, s.Log())
		}
	}
}

// superDSN reaches the server as its superuser over the unix socket.
func (s *Server) superDSN(db string) string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s password=%s sslmode=disable", s.SocketDir, s.Port, db, s.superPassword)
}

func (s *Server) createRole(ctx context.Context) error {
	// The password is a literal (CREATE ROLE takes no parameters); it is hex, so
	// it needs no quoting.
	_, err := s.admin.Exec(ctx, fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD '%s'`, s.User, s.Password))
	if err != nil {
		return fmt.Errorf("creating role %s: %w", s.User, err)
	}
	return nil
}

// CreateDatabase makes a new, empty database owned by User and returns its name.
func (s *Server) CreateDatabase(ctx context.Context) (string, error) {
	name := "cg_" + randomHex(8)
	if err := s.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %s OWNER %s`, name, s.User)); err != nil {
		return "", err
	}
	return name, nil
}

// Exec runs sql as the superuser (tests that break or inspect a database).
func (s *Server) Exec(ctx context.Context, sql string, args ...any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.admin == nil {
		return errors.New("postgres is not running")
	}
	if _, err := s.admin.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("%s: %w", strings.Fields(sql)[0], err)
	}
	return nil
}

// ExecIn runs sql, which may be several statements, as the superuser in database db.
func (s *Server) ExecIn(ctx context.Context, db, sql string) error {
	conn, err := pgx.Connect(ctx, s.superDSN(db))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.PgConn().Exec(ctx, sql).ReadAll()
	return err
}

// Query runs sql as the superuser in database db and returns every row's
// columns as text (tests that read what is stored).
func (s *Server) Query(ctx context.Context, db, sql string, args ...any) ([][]string, error) {
	conn, err := pgx.Connect(ctx, s.superDSN(db))
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]string, error) {
		vals, err := r.Values()
		out := make([]string, len(vals))
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				out[i] = string(b)
			} else {
				out[i] = fmt.Sprint(v)
			}
		}
		return out, err
	})
}

// Log is what the server has logged so far.
func (s *Server) Log() string {
	data, _ := os.ReadFile(s.logFile)
	return string(data)
}

// Close stops the server and removes its directory; it is safe to call more than
// once, and on a nil Server.
func (s *Server) Close() {
	if s == nil {
		return
	}
	s.stop()
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

func (s *Server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.admin.Close(ctx)
		cancel()
		s.admin = nil
	}
	if s.cmd == nil {
		return
	}
	// SIGINT is a fast shutdown: open sessions are ended.
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

// runAs is who runs initdb and postgres: nil (this process's user), or postgres
// when this process is root.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL refuses to run as root, and there is no user postgres to run it as (%v); %s", err, InstallHint)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// own gives path to the user the server runs as.
func (s *Server) own(owner *syscall.Credential, path string) error {
	if owner == nil {
		return nil
	}
	if err := os.Chown(path, int(owner.Uid), int(owner.Gid)); err != nil {
		return fmt.Errorf("giving %s to the postgres user: %w", path, err)
	}
	return nil
}

func (s *Server) writeFile(owner *syscall.Credential, path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	return s.own(owner, path)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
