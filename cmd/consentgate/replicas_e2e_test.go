package main

import (
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/internal/pgdev"
	"github.com/consentgate/consentgate/secrets"
)

// Two gateways sharing one PostgreSQL consent registry, as two replicas of the
// Helm chart would: a consent an app registers through replica A's admin API
// is used by a call through replica B, and a revocation through B is honoured by
// A on its next call. Each keeps its own audit log.
func TestDevReplicasShareConsentsInPostgres(t *testing.T) {
	pg, db := pgdev.NewDatabase(t)
	consents := &configs.Consents{Backend: configs.ConsentsPostgres, Postgres: &configs.Postgres{
		PasswordSecret: "consentgate/postgres#password", Host: pg.Host, Port: pg.Port, Database: db, User: pg.User,
		SSLMode: "verify-full", CAFile: pg.CAFile, MaxConns: 4}}

	// The replicas share what a deployment shares: the secrets (the subject
	// key, the database password) and the PKI; not their data directories.
	dirA, dirB := t.TempDir(), t.TempDir()
	if err := secrets.WriteFile(filepath.Join(dirA, "secrets.yaml"), map[string]map[string]string{
		"consentgate/postgres": {"password": pg.Password}}); err != nil {
		t.Fatal(err)
	}
	a, stopA := startTestDevOpts(t, devOptions{dir: dirA, consents: consents})
	t.Cleanup(stopA)
	copyTree(t, filepath.Join(dirA, "pki"), filepath.Join(dirB, "pki"))
	copyTree(t, filepath.Join(dirA, "secrets.yaml"), filepath.Join(dirB, "secrets.yaml"))
	b, stopB := startTestDevOpts(t, devOptions{dir: dirB, consents: consents})
	t.Cleanup(stopB)

	const verify = "/v/finid/api/v1/verifications"
	const body = `{"iin":"900315401233","phone":"+77011234567","photo":"aGVsbG8gZmFjZQ=="}`
	id := a.createConsent(t, a.app, `{"subject":"customer-replicas-1","vendors":["finid"],"purposes":["biometric-verification"],
		"categories":["biometric","identity","national_id","contact","document"],"evidence":{"text":"online form"},"ttl":"24h"}`)

	// Used through B, which never saw it being created.
	resp, out := call(t, b.app, "POST", b.gatewayURL()+verify, body, under(id, "biometric-verification"))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(out), `"status":"pending"`) {
		t.Fatalf("call through B under A's consent: %d %s", resp.StatusCode, out)
	}
	if resp, out := call(t, b.app, "GET", b.adminURL()+"/v1/consents?subject=customer-replicas-1", "", nil); resp.StatusCode != http.StatusOK || !strings.Contains(string(out), id) {
		t.Fatalf("B lists the subject's consents: %d %s", resp.StatusCode, out)
	}
	// And through A, before the revocation.
	if resp, out := call(t, a.app, "POST", a.gatewayURL()+verify, body, under(id, "biometric-verification")); resp.StatusCode != http.StatusOK {
		t.Fatalf("call through A: %d %s", resp.StatusCode, out)
	}

	// Revoked through B: A's very next call is refused, and A's vendor is not called.
	if resp, out := call(t, b.app, "DELETE", b.adminURL()+"/v1/consents/"+id, "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke through B: %d %s", resp.StatusCode, out)
	}
	before := a.sandboxes.FinID.Count()
	resp, out = call(t, a.app, "POST", a.gatewayURL()+verify, body, under(id, "biometric-verification"))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(out), "consent revoked") {
		t.Fatalf("call through A after B revoked: %d %s", resp.StatusCode, out)
	}
	if a.sandboxes.FinID.Count() != before {
		t.Error("A called the vendor under a consent B had revoked")
	}

	// Each replica recorded its own change, and neither logged the database
	// password or the raw subject.
	if !strings.Contains(a.logs.String(), `"msg":"consent created","id":"`+id) || strings.Contains(a.logs.String(), `"msg":"consent revoked","id":"`+id) {
		t.Error("A's log does not show the creation (only)")
	}
	if !strings.Contains(b.logs.String(), `"msg":"consent revoked","id":"`+id) {
		t.Error("B's log does not show the revocation")
	}
	for name, e := range map[string]*devEnv{"A": a, "B": b} {
		if !strings.Contains(e.logs.String(), "consent registry shared in PostgreSQL") {
			t.Errorf("%s does not say it uses the shared registry", name)
		}
		for _, leak := range []string{pg.Password, "customer-replicas-1"} {
			if strings.Contains(e.logs.String(), leak) {
				t.Errorf("%s's log holds %q", name, leak)
			}
		}
	}
	// Nothing was written to a bbolt registry.
	for _, dir := range []string{dirA, dirB} {
		if _, err := os.Stat(filepath.Join(dir, "state.db")); !os.IsNotExist(err) {
			t.Errorf("%s/state.db exists: %v", dir, err)
		}
	}
}

// copyTree copies a file or a folder, keeping modes.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(dst, info.Mode().Perm())
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// serve reads consents.postgres from the file and the password from the
// secret provider; every way it can fail names the field and never the password.
func TestServeWithPostgresConsents(t *testing.T) {
	pg, db := pgdev.NewDatabase(t)
	setup := func(t *testing.T, password string) (dir, file string) {
		t.Helper()
		dir, file, _ = writeServeConfig(t)
		values, err := secrets.ReadFile(filepath.Join(dir, "secrets.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if password != "" {
			values["consentgate/postgres"] = map[string]string{"password": password}
		}
		if err := secrets.WriteFile(filepath.Join(dir, "secrets.yaml"), values); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, file, string(data)+fmt.Sprintf(`consents:
  backend: postgres
  postgres:
    host: %s
    port: %d
    database: %s
    user: %s
    password_secret: consentgate/postgres#password
    ca_file: %s
`, pg.Host, pg.Port, db, pg.User, pg.CAFile))
		return dir, file
	}

	t.Run("starts", func(t *testing.T) {
		dir, file := setup(t, pg.Password)
		log := serveUntilReady(t, "--config", file)
		if !strings.Contains(log, "consent registry shared in PostgreSQL") || !strings.Contains(log, "sslmode=verify-full") {
			t.Errorf("the log does not say which registry is used:\n%s", log)
		}
		if strings.Contains(log, pg.Password) {
			t.Error("the log holds the database password")
		}
		if _, err := os.Stat(filepath.Join(dir, "state.db")); !os.IsNotExist(err) {
			t.Errorf("state.db was created: %v", err)
		}
	})
	for _, tt := range []struct{ name, password, want string }{
		{"no password secret", "", "consents.postgres.password_secret"},
		{"wrong password", "wrong-" + pg.Password, "password authentication failed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, file := setup(t, tt.password)
			out, err := runCmd(t, "serve", "--config", file)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("serve: %v, want an error naming %q\n%s", err, tt.want, out)
			}
			if strings.Contains(err.Error()+out, pg.Password) {
				t.Error("the error or the log holds the password")
			}
		})
	}
}
