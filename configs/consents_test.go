package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pgMain is goodMain with the shared PostgreSQL consent backend (lines 22-28).
const pgMain = goodMain + `consents:
  backend: postgres
  postgres:
    host: db.internal
    database: consentgate
    user: consentgate
    password_secret: consentgate/postgres#password
`

func TestConsentsBackend(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "v.yaml"), goodVendor)
	load := func(t *testing.T, main string) *Config {
		t.Helper()
		write(t, filepath.Join(dir, "main.yaml"), main)
		cfg, err := Load(filepath.Join(dir, "main.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	t.Run("bbolt by default", func(t *testing.T) {
		cfg := load(t, goodMain)
		if cfg.Consents.Backend != ConsentsBbolt || cfg.Consents.Postgres != nil || cfg.StateDB != "state.db" {
			t.Errorf("consents %+v, state_db %q", cfg.Consents, cfg.StateDB)
		}
	})
	t.Run("postgres defaults", func(t *testing.T) {
		p := load(t, pgMain).Consents.Postgres
		if p.Port != 5432 || p.SSLMode != "verify-full" || p.MaxConns != 10 || p.PasswordSecret != "consentgate/postgres#password" {
			t.Errorf("postgres %+v", p)
		}
	})
	for _, host := range []string{"127.0.0.1", "localhost", "::1", "/var/run/postgresql"} {
		t.Run("plain to "+host, func(t *testing.T) {
			p := load(t, strings.Replace(pgMain, "db.internal", `"`+host+`"`, 1)+"    sslmode: disable\n").Consents.Postgres
			if p.SSLMode != "disable" {
				t.Errorf("sslmode %q", p.SSLMode)
			}
		})
	}
}

func TestConsentsErrorsNameFileLineField(t *testing.T) {
	tests := []struct {
		name, main, want string
	}{
		{"unknown backend", strings.Replace(pgMain, "backend: postgres", "backend: etcd", 1),
			`main.yaml:23: consents.backend: "etcd" is unknown: use bbolt or postgres`},
		{"postgres without its section", goodMain + "consents:\n  backend: postgres\n",
			"main.yaml:22: consents.postgres: is required with backend postgres"},
		{"postgres section unused", strings.Replace(pgMain, "backend: postgres", "backend: bbolt", 1),
			"main.yaml:24: consents.postgres: is only used with backend postgres"},
		{"no password in the file", pgMain + "    password: hunter2-in-the-file\n",
			"main.yaml:29: consents.postgres.password: unknown field"},
		{"no DSN in the file", pgMain + "    dsn: postgres://u:hunter2@db/x\n",
			"main.yaml:29: consents.postgres.dsn: unknown field"},
		{"password where its reference goes", strings.Replace(pgMain, "consentgate/postgres#password", "hunter2-in-the-file", 1),
			"main.yaml:28: consents.postgres.password_secret: is not a secret reference"},
		{"no host", strings.Replace(pgMain, "    host: db.internal\n", "", 1),
			"main.yaml:24: consents.postgres.host: is required"},
		{"no user", strings.Replace(pgMain, "    user: consentgate\n", "", 1),
			"main.yaml:24: consents.postgres.user: is required"},
		{"bad port", pgMain + "    port: 70000\n",
			"main.yaml:29: consents.postgres.port: 70000 is not a TCP port"},
		{"plain over the network", pgMain + "    sslmode: disable\n",
			`main.yaml:29: consents.postgres.sslmode: disable is only allowed to a loopback host or a unix socket; "db.internal" is neither`},
		{"libpq mode that may fall back to plain", pgMain + "    sslmode: prefer\n",
			`main.yaml:29: consents.postgres.sslmode: "prefer" is not verify-full, verify-ca, require or disable`},
		{"CA file that would not be used", pgMain + "    sslmode: require\n    ca_file: pg-ca.pem\n",
			"main.yaml:30: consents.postgres.ca_file: is not used with sslmode require"},
		{"pool too large", pgMain + "    max_conns: 5000\n",
			"main.yaml:29: consents.postgres.max_conns: 5000 is outside 1..1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "main.yaml"), tt.main)
			write(t, filepath.Join(dir, "v.yaml"), goodVendor)
			_, err := Load(filepath.Join(dir, "main.yaml"))
			if err == nil {
				t.Fatal("no error")
			}
			if want := dir + string(filepath.Separator) + tt.want; !strings.Contains(err.Error(), want) {
				t.Errorf("error\n%v\ndoes not contain\n%s", err, want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error repeats a password: %v", err)
			}
		})
	}
}

func TestConsentsCAFileIsChecked(t *testing.T) {
	dir := t.TempDir()
	main := strings.Replace(pgMain, "data_dir: /tmp/x", "data_dir: "+dir, 1) + "    ca_file: pg-ca.pem\n"
	write(t, filepath.Join(dir, "main.yaml"), main)
	write(t, filepath.Join(dir, "v.yaml"), goodVendor)
	cfg, err := Load(filepath.Join(dir, "main.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, "main.yaml") + ":29: consents.postgres.ca_file: cannot read " + filepath.Join(dir, "pg-ca.pem")
	if err := cfg.CheckFiles(); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("CheckFiles = %v, want it to name %s", err, want)
	}
	if err := os.WriteFile(filepath.Join(dir, "pg-ca.pem"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cfg.CheckFiles(); err != nil && strings.Contains(err.Error(), "consents.postgres.ca_file") {
		t.Errorf("a readable CA file was reported: %v", err)
	}
}
