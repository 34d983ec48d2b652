package consent

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgMigrations are the versions of the PostgreSQL schema: pgMigrations[i] takes a
// database from version i to i+1. Append only; never edit a released step.
//
// consents holds each consent's JSON (as bbolt does) next to the columns it is
// found by; tokens are sealed by the gateway; a pending authorization's expiry is
// nanoseconds since the epoch, compared exactly as the bbolt store compares it.
var pgMigrations = [][]string{
	{
		`CREATE TABLE consentgate_consents (
			id      text PRIMARY KEY,
			app     text NOT NULL,
			subject text NOT NULL,
			doc     jsonb NOT NULL
		)`,
		`CREATE INDEX consentgate_consents_subject ON consentgate_consents (subject)`,
		`CREATE TABLE consentgate_oauth_pending (
			key             bytea PRIMARY KEY,
			expires_unix_ns bigint NOT NULL,
			doc             jsonb NOT NULL
		)`,
		`CREATE INDEX consentgate_oauth_pending_expiry ON consentgate_oauth_pending (expires_unix_ns)`,
		`CREATE TABLE consentgate_oauth_tokens (
			consent_id text NOT NULL REFERENCES consentgate_consents (id),
			vendor     text NOT NULL,
			sealed     bytea NOT NULL,
			PRIMARY KEY (consent_id, vendor)
		)`,
	},
	{
		`CREATE TABLE consentgate_resources (
			vendor     text NOT NULL,
			kind       text NOT NULL,
			id         text NOT NULL,
			consent_id text NOT NULL REFERENCES consentgate_consents (id),
			created_ns bigint NOT NULL,
			doc        jsonb NOT NULL,
			PRIMARY KEY (vendor, kind, id)
		)`,
		`CREATE INDEX consentgate_resources_consent ON consentgate_resources (consent_id, created_ns)`,
		`CREATE TABLE consentgate_erasures (
			consent_id  text NOT NULL REFERENCES consentgate_consents (id),
			vendor      text NOT NULL,
			kind        text NOT NULL,
			resource_id text NOT NULL,
			status      text NOT NULL,
			next_ns     bigint NOT NULL,
			doc         jsonb NOT NULL,
			PRIMARY KEY (consent_id, vendor, kind, resource_id)
		)`,
		`CREATE INDEX consentgate_erasures_due ON consentgate_erasures (status, next_ns)`,
	},
	{
		// wrapped is NULL once the key is destroyed: the row stays, so no new key
		// is made for a revoked consent.
		`CREATE TABLE consentgate_data_keys (
			consent_id text PRIMARY KEY REFERENCES consentgate_consents (id),
			wrapped    bytea
		)`,
		`CREATE TABLE consentgate_value_tokens (
			id         bytea PRIMARY KEY,
			consent_id text NOT NULL REFERENCES consentgate_consents (id),
			doc        bytea NOT NULL
		)`,
		`CREATE INDEX consentgate_value_tokens_consent ON consentgate_value_tokens (consent_id)`,
		// scope is the end user's subject HMAC and the app, not a consent: an
		// app could otherwise make a new consent for a fresh budget.
		`CREATE TABLE consentgate_call_budget (
			scope    text NOT NULL,
			key      text NOT NULL,
			start_ns bigint NOT NULL,
			calls    integer NOT NULL,
			PRIMARY KEY (scope, key)
		)`,
	},
}

// pgLockKey is the advisory lock migrations hold ("consent" in ASCII), so that
// replicas starting together do not race on CREATE TABLE.
const pgLockKey = 0x636f6e73656e74

// migrate brings the schema to the newest version, in one transaction. A database
// already there runs no DDL, so a role without CREATE works once an owner (or
// a first gateway) has created the tables.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(pgLockKey)); err != nil {
			return fmt.Errorf("locking the schema: %w", err)
		}
		version, err := schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		if version > len(pgMigrations) {
			return fmt.Errorf("%w: the database is at version %d, this consentgate knows up to %d", ErrSchema, version, len(pgMigrations))
		}
		if version == len(pgMigrations) {
			return nil
		}
		if version == 0 {
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS consentgate_meta (name text PRIMARY KEY, value text NOT NULL)`); err != nil {
				return fmt.Errorf("creating consentgate_meta: %w", err)
			}
		}
		for v := version; v < len(pgMigrations); v++ {
			for _, stmt := range pgMigrations[v] {
				if _, err := tx.Exec(ctx, stmt); err != nil {
					return fmt.Errorf("migrating the consent schema to version %d: %w", v+1, err)
				}
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO consentgate_meta (name, value) VALUES ('schema_version', $1)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, strconv.Itoa(len(pgMigrations)))
		if err != nil {
			return fmt.Errorf("recording the consent schema version: %w", err)
		}
		return nil
	})
}

// schemaVersion is 0 for a database consentgate has never used.
func schemaVersion(ctx context.Context, tx pgx.Tx) (int, error) {
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass('consentgate_meta') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, fmt.Errorf("reading the consent schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var s string
	err := tx.QueryRow(ctx, `SELECT value FROM consentgate_meta WHERE name = 'schema_version'`).Scan(&s)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading the consent schema version: %w", err)
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("consentgate_meta holds schema_version %q, not a number", s)
	}
	return v, nil
}
