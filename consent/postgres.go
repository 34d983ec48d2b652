package consent

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres says how to reach the PostgreSQL database that gateways share. Zero
// values are documented per field.
type Postgres struct {
	// Host is a DNS name, an IP address, or a unix socket directory (starting with /).
	Host string
	// Port zero is 5432.
	Port     uint16
	Database string
	User     string
	// Password returns User's password; it is asked for every new connection, so
	// a password rotated in the secret provider is used without a restart. No
	// error, log line or connection string consentgate writes ever holds it.
	// Nil: no password (a unix socket with peer authentication).
	Password func(context.Context) (string, error)
	// SSLMode is libpq's: disable, require (encrypted, server not authenticated),
	// verify-ca or verify-full (also the host name). "" is verify-full. TLS is not
	// used over a unix socket.
	SSLMode string
	// CAFile holds the PEM roots that verify the server. "": the system roots.
	CAFile string
	// MaxConns bounds the gateway's connections. Zero: 10.
	MaxConns int32
}

// Defaults of Postgres, applied by OpenPostgres.
const (
	DefaultPostgresPort     = 5432
	DefaultPostgresSSLMode  = "verify-full"
	DefaultPostgresMaxConns = 10
)

// OpenPostgres opens the registry in a PostgreSQL database, creating or migrating
// its tables (consentgate_*) first. Gateways opening one database share every
// consent, pending authorization and sealed token; they must use one subject key
// (a different one is ErrWrongKey).
func OpenPostgres(ctx context.Context, p Postgres, o Options) (*Registry, error) {
	r, err := newRegistry(o)
	if err != nil {
		return nil, err
	}
	cfg, err := p.poolConfig()
	if err != nil {
		return nil, fmt.Errorf("opening consent registry %s: %w", p, err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("opening consent registry %s: %w", p, err)
	}
	st := &pgStore{pool: pool}
	if err := migrate(ctx, pool); err != nil {
		st.close()
		return nil, fmt.Errorf("opening consent registry %s: %w", p, err)
	}
	if err := r.use(ctx, st); err != nil {
		st.close()
		return nil, fmt.Errorf("opening consent registry %s: %w", p, err)
	}
	return r, nil
}

// String names the database for messages: never the password.
func (p Postgres) String() string {
	return fmt.Sprintf("postgres://%s@%s/%s", p.User, net.JoinHostPort(p.Host, strconv.Itoa(p.port())), p.Database)
}

func (p Postgres) port() int {
	if p.Port == 0 {
		return DefaultPostgresPort
	}
	return int(p.Port)
}

// poolConfig builds pgx's configuration from a libpq keyword/value string that
// holds everything but the password, which is set on the parsed result: so the
// string pgx may quote in its errors has nothing secret in it. pgx applies the
// libpq meaning of sslmode and sslrootcert.
func (p Postgres) poolConfig() (*pgxpool.Config, error) {
	mode := p.SSLMode
	if mode == "" {
		mode = DefaultPostgresSSLMode
	}
	switch mode {
	case "disable", "require", "verify-ca", "verify-full":
	default:
		return nil, fmt.Errorf("sslmode %q is not disable, require, verify-ca or verify-full", mode)
	}
	if p.Host == "" || p.Database == "" || p.User == "" {
		return nil, fmt.Errorf("host, database and user are required")
	}
	kv := [][2]string{{"host", p.Host}, {"port", strconv.Itoa(p.port())}, {"dbname", p.Database}, {"user", p.User},
		{"sslmode", mode}, {"application_name", "consentgate"}, {"connect_timeout", "10"}}
	if p.CAFile != "" {
		kv = append(kv, [2]string{"sslrootcert", p.CAFile})
	}
	var b strings.Builder
	for _, e := range kv {
		fmt.Fprintf(&b, "%s='%s' ", e[0], strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(e[1]))
	}
	cfg, err := pgxpool.ParseConfig(b.String())
	if err != nil {
		return nil, err
	}
	if p.Password != nil {
		cfg.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
			pw, err := p.Password(ctx)
			if err != nil {
				return fmt.Errorf("reading the database password: %w", err)
			}
			cc.Password = pw
			return nil
		}
	}
	cfg.MaxConns = p.MaxConns
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultPostgresMaxConns
	}
	return cfg, nil
}
