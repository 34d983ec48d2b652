package consent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgStore keeps the registry in PostgreSQL, shared by every gateway that opens it.
// Each write is one SQL transaction at READ COMMITTED; what makes concurrent
// gateways safe is in the statements: a consent read for a change is locked
// (SELECT … FOR UPDATE), inserts use the primary key (ON CONFLICT DO NOTHING), and
// taking a state or swapping tokens is one conditional DELETE or UPDATE whose row
// count says who won.
type pgStore struct{ pool *pgxpool.Pool }

var _ store = (*pgStore)(nil)

// writeTimeout bounds one write transaction. A write is not cut short when the
// caller hangs up: the hook (the audit log) may already have recorded it.
const writeTimeout = 30 * time.Second

func (s *pgStore) view(ctx context.Context, fn func(storeTx) error) error {
	return fn(pgTx{ctx: ctx, q: s.pool})
}

func (s *pgStore) update(ctx context.Context, fn func(storeTx) error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		return fn(pgTx{ctx: ctx, q: tx, write: true})
	})
}

// batch is update: each PostgreSQL transaction commits on its own (the server
// groups concurrent commits' WAL flushes itself).
func (s *pgStore) batch(ctx context.Context, fn func(storeTx) error) error { return s.update(ctx, fn) }

// close waits for connections in use to come back; calling it again does nothing.
func (s *pgStore) close() error {
	s.pool.Close()
	return nil
}

// querier is what a pool and a transaction share: views query the pool (each
// statement on its own), updates their transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

type pgTx struct {
	ctx   context.Context
	q     querier
	write bool
}

func (t pgTx) loadConsent(id string, c *Consent) error {
	q := `SELECT doc FROM consentgate_consents WHERE id = $1`
	if t.write {
		q += ` FOR UPDATE`
	}
	var doc []byte
	err := t.q.QueryRow(t.ctx, q, id).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return fmt.Errorf("reading consent %s: %w", id, err)
	}
	if err := json.Unmarshal(doc, c); err != nil {
		return fmt.Errorf("decoding consent %s: %w", id, err)
	}
	return nil
}

// insertConsent waits for a concurrent insert of the same id to end, then
// inserts nothing if that one committed.
func (t pgTx) insertConsent(c *Consent) (bool, error) {
	doc, err := json.Marshal(c)
	if err != nil {
		return false, fmt.Errorf("encoding consent %s: %w", c.ID, err)
	}
	tag, err := t.q.Exec(t.ctx, `INSERT INTO consentgate_consents (id, app, subject, doc) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO NOTHING`, c.ID, c.App, c.Subject, doc)
	if err != nil {
		return false, fmt.Errorf("storing consent %s: %w", c.ID, err)
	}
	return tag.RowsAffected() == 1, nil
}

func (t pgTx) updateConsent(c *Consent) error {
	doc, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encoding consent %s: %w", c.ID, err)
	}
	tag, err := t.q.Exec(t.ctx, `UPDATE consentgate_consents SET doc = $2 WHERE id = $1`, c.ID, doc)
	if err != nil {
		return fmt.Errorf("storing consent %s: %w", c.ID, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("storing consent %s: it is not stored", c.ID)
	}
	return nil
}

func (t pgTx) bySubject(subject string) ([]Consent, error) {
	rows, err := t.q.Query(t.ctx, `SELECT doc FROM consentgate_consents WHERE subject = $1`, subject)
	if err != nil {
		return nil, fmt.Errorf("reading a subject's consents: %w", err)
	}
	docs, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fmt.Errorf("reading a subject's consents: %w", err)
	}
	out := make([]Consent, len(docs))
	for i, doc := range docs {
		if err := json.Unmarshal(doc, &out[i]); err != nil {
			return nil, fmt.Errorf("decoding a subject's consent: %w", err)
		}
	}
	return out, nil
}

func (t pgTx) insertPending(key []byte, p *Pending) (bool, error) {
	doc, err := json.Marshal(p)
	if err != nil {
		return false, fmt.Errorf("encoding pending authorization: %w", err)
	}
	tag, err := t.q.Exec(t.ctx, `INSERT INTO consentgate_oauth_pending (key, expires_unix_ns, doc) VALUES ($1, $2, $3)
		ON CONFLICT (key) DO NOTHING`, key, p.ExpiresAt.UnixNano(), doc)
	if err != nil {
		return false, fmt.Errorf("storing pending authorization: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// sweepPending compares nanoseconds since the epoch: the same instant bbolt's
// ExpiresAt.After(now) compares, with no rounding to microseconds.
func (t pgTx) sweepPending(now time.Time) error {
	if _, err := t.q.Exec(t.ctx, `DELETE FROM consentgate_oauth_pending WHERE expires_unix_ns <= $1`, now.UnixNano()); err != nil {
		return fmt.Errorf("removing expired pending authorizations: %w", err)
	}
	return nil
}

// takePending is one DELETE … RETURNING: of two gateways taking the same key,
// the second waits for the first and then finds no row.
func (t pgTx) takePending(key []byte) (*Pending, error) {
	var doc []byte
	err := t.q.QueryRow(t.ctx, `DELETE FROM consentgate_oauth_pending WHERE key = $1 RETURNING doc`, key).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrUnknownState
	}
	if err != nil {
		return nil, fmt.Errorf("taking pending authorization: %w", err)
	}
	var p Pending
	if err := json.Unmarshal(doc, &p); err != nil {
		return nil, fmt.Errorf("decoding pending authorization: %w", err)
	}
	return &p, nil
}

func (t pgTx) putTokens(consentID, vendor string, sealed []byte) error {
	_, err := t.q.Exec(t.ctx, `INSERT INTO consentgate_oauth_tokens (consent_id, vendor, sealed) VALUES ($1, $2, $3)
		ON CONFLICT (consent_id, vendor) DO UPDATE SET sealed = excluded.sealed`, consentID, vendor, sealed)
	if err != nil {
		return fmt.Errorf("storing tokens of consent %s: %w", consentID, err)
	}
	return nil
}

func (t pgTx) tokens(consentID, vendor string) ([]byte, error) {
	var sealed []byte
	err := t.q.QueryRow(t.ctx, `SELECT sealed FROM consentgate_oauth_tokens WHERE consent_id = $1 AND vendor = $2`,
		consentID, vendor).Scan(&sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: consent %s at vendor %s", ErrNoTokens, consentID, vendor)
	}
	if err != nil {
		return nil, fmt.Errorf("reading tokens of consent %s: %w", consentID, err)
	}
	return sealed, nil
}

// swapTokens is one conditional statement: a concurrent swap from the same old
// value waits for this one, then sees the new value and changes nothing.
func (t pgTx) swapTokens(consentID, vendor string, old, updated []byte) (bool, error) {
	var tag pgconn.CommandTag
	var err error
	if updated == nil {
		tag, err = t.q.Exec(t.ctx, `DELETE FROM consentgate_oauth_tokens WHERE consent_id = $1 AND vendor = $2 AND sealed = $3`,
			consentID, vendor, old)
	} else {
		tag, err = t.q.Exec(t.ctx, `UPDATE consentgate_oauth_tokens SET sealed = $4 WHERE consent_id = $1 AND vendor = $2 AND sealed = $3`,
			consentID, vendor, old, updated)
	}
	if err != nil {
		return false, fmt.Errorf("replacing tokens of consent %s: %w", consentID, err)
	}
	return tag.RowsAffected() == 1, nil
}

func (t pgTx) deleteTokens(consentID string) ([]string, error) {
	rows, err := t.q.Query(t.ctx, `DELETE FROM consentgate_oauth_tokens WHERE consent_id = $1 RETURNING vendor`, consentID)
	if err != nil {
		return nil, fmt.Errorf("deleting tokens of consent %s: %w", consentID, err)
	}
	vendors, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("deleting tokens of consent %s: %w", consentID, err)
	}
	if len(vendors) == 0 {
		return nil, nil // as bbolt answers: no vendor, not an empty list
	}
	slices.Sort(vendors)
	return vendors, nil
}

// keyCheck inserts first: two gateways opening a new database at once store one
// check, and both compare against it.
func (t pgTx) keyCheck(want []byte) ([]byte, error) {
	if _, err := t.q.Exec(t.ctx, `INSERT INTO consentgate_meta (name, value) VALUES ('subject_key_check', $1)
		ON CONFLICT (name) DO NOTHING`, string(want)); err != nil {
		return nil, fmt.Errorf("storing the subject key check: %w", err)
	}
	var got string
	if err := t.q.QueryRow(t.ctx, `SELECT value FROM consentgate_meta WHERE name = 'subject_key_check'`).Scan(&got); err != nil {
		return nil, fmt.Errorf("reading the subject key check: %w", err)
	}
	return []byte(got), nil
}

// bindResource inserts unless the key is taken, then reads what is stored: of two
// gateways binding one id at once, both see the winner's binding.
func (t pgTx) bindResource(res *Resource) (*Resource, error) {
	doc, err := json.Marshal(res)
	if err != nil {
		return nil, fmt.Errorf("encoding resource: %w", err)
	}
	_, err = t.q.Exec(t.ctx, `INSERT INTO consentgate_resources (vendor, kind, id, consent_id, created_ns, doc)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
		res.Vendor, res.Kind, res.ID, res.ConsentID, res.CreatedAt.UnixNano(), doc)
	if err != nil {
		return nil, fmt.Errorf("storing resource: %w", err)
	}
	return t.resource(res.Vendor, res.Kind, res.ID)
}

func (t pgTx) resource(vendor, kind, id string) (*Resource, error) {
	var doc []byte
	err := t.q.QueryRow(t.ctx, `SELECT doc FROM consentgate_resources WHERE vendor = $1 AND kind = $2 AND id = $3`,
		vendor, kind, id).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: no %s %s of vendor %s is bound", ErrNotFound, kind, id, vendor)
	}
	if err != nil {
		return nil, fmt.Errorf("reading resource %s of vendor %s: %w", kind, vendor, err)
	}
	var res Resource
	if err := json.Unmarshal(doc, &res); err != nil {
		return nil, fmt.Errorf("decoding resource %s of vendor %s: %w", kind, vendor, err)
	}
	return &res, nil
}

func (t pgTx) resourcesOf(consentID string) ([]Resource, error) {
	rows, err := t.q.Query(t.ctx, `SELECT doc FROM consentgate_resources WHERE consent_id = $1 ORDER BY created_ns, vendor COLLATE "C", kind COLLATE "C", id COLLATE "C"`, consentID)
	if err != nil {
		return nil, fmt.Errorf("reading the resources of consent %s: %w", consentID, err)
	}
	docs, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fmt.Errorf("reading the resources of consent %s: %w", consentID, err)
	}
	out := make([]Resource, 0, len(docs))
	for _, doc := range docs {
		var res Resource
		if err := json.Unmarshal(doc, &res); err != nil {
			return nil, fmt.Errorf("decoding a resource of consent %s: %w", consentID, err)
		}
		out = append(out, res)
	}
	return out, nil
}

func (t pgTx) putErasure(e *storedErasure) error {
	doc, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encoding erasure: %w", err)
	}
	_, err = t.q.Exec(t.ctx, `INSERT INTO consentgate_erasures (consent_id, vendor, kind, resource_id, status, next_ns, doc)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
		e.ConsentID, e.Vendor, e.Kind, e.ResourceID, e.Status, e.NextAt.UnixNano(), doc)
	if err != nil {
		return fmt.Errorf("storing erasure of consent %s: %w", e.ConsentID, err)
	}
	return nil
}

func (t pgTx) saveErasure(e *storedErasure) error {
	doc, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encoding erasure: %w", err)
	}
	_, err = t.q.Exec(t.ctx, `UPDATE consentgate_erasures SET status = $5, next_ns = $6, doc = $7
		WHERE consent_id = $1 AND vendor = $2 AND kind = $3 AND resource_id = $4`,
		e.ConsentID, e.Vendor, e.Kind, e.ResourceID, e.Status, e.NextAt.UnixNano(), doc)
	if err != nil {
		return fmt.Errorf("storing erasure of consent %s: %w", e.ConsentID, err)
	}
	return nil
}

func (t pgTx) erasuresOf(consentID string) ([]storedErasure, error) {
	rows, err := t.q.Query(t.ctx, `SELECT doc FROM consentgate_erasures WHERE consent_id = $1
		ORDER BY vendor COLLATE "C", kind COLLATE "C", resource_id COLLATE "C"`, consentID)
	if err != nil {
		return nil, fmt.Errorf("reading the erasures of consent %s: %w", consentID, err)
	}
	return collectErasures(rows)
}

// claimErasures skips rows another replica holds locked: two gateways never
// claim one erasure at once.
func (t pgTx) claimErasures(now time.Time, n int, until time.Time) ([]storedErasure, error) {
	rows, err := t.q.Query(t.ctx, `UPDATE consentgate_erasures e
		SET next_ns = $3, doc = jsonb_set(e.doc, '{next_at}', to_jsonb($4::text))
		FROM (SELECT consent_id, vendor, kind, resource_id FROM consentgate_erasures
			WHERE status = 'pending' AND next_ns <= $1 ORDER BY next_ns LIMIT $2 FOR UPDATE SKIP LOCKED) due
		WHERE e.consent_id = due.consent_id AND e.vendor = due.vendor AND e.kind = due.kind AND e.resource_id = due.resource_id
		RETURNING e.doc`, now.UnixNano(), n, until.UnixNano(), until.UTC().Format(time.RFC3339Nano))
	if err != nil {
		return nil, fmt.Errorf("claiming erasures: %w", err)
	}
	return collectErasures(rows)
}

func collectErasures(rows pgx.Rows) ([]storedErasure, error) {
	docs, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fmt.Errorf("reading erasures: %w", err)
	}
	out := make([]storedErasure, 0, len(docs))
	for _, doc := range docs {
		var e storedErasure
		if err := json.Unmarshal(doc, &e); err != nil {
			return nil, fmt.Errorf("decoding an erasure: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}

func (t pgTx) unplannedConsents(now time.Time) ([]string, error) {
	rows, err := t.q.Query(t.ctx, `SELECT DISTINCT r.consent_id FROM consentgate_resources r
		JOIN consentgate_consents c ON c.id = r.consent_id
		WHERE NOT EXISTS (SELECT 1 FROM consentgate_erasures e WHERE e.consent_id = r.consent_id)
		AND (c.doc->>'status' = 'revoked' OR (c.doc->>'expires_at')::timestamptz <= $1)
		ORDER BY 1`, now)
	if err != nil {
		return nil, fmt.Errorf("finding withdrawn consents to erase: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("finding withdrawn consents to erase: %w", err)
	}
	return ids, nil
}

func (t pgTx) dataKey(consentID string) ([]byte, bool, error) {
	var wrapped []byte
	err := t.q.QueryRow(t.ctx, `SELECT wrapped FROM consentgate_data_keys WHERE consent_id = $1`, consentID).Scan(&wrapped)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("reading the data key of consent %s: %w", consentID, err)
	}
	return wrapped, wrapped == nil, nil
}

func (t pgTx) putDataKey(consentID string, wrapped []byte) error {
	_, err := t.q.Exec(t.ctx, `INSERT INTO consentgate_data_keys (consent_id, wrapped) VALUES ($1, $2)
		ON CONFLICT (consent_id) DO NOTHING`, consentID, wrapped)
	if err != nil {
		return fmt.Errorf("storing the data key of consent %s: %w", consentID, err)
	}
	return nil
}

func (t pgTx) shredDataKey(consentID string) (bool, error) {
	wrapped, _, err := t.dataKey(consentID)
	if err != nil {
		return false, err
	}
	_, err = t.q.Exec(t.ctx, `INSERT INTO consentgate_data_keys (consent_id, wrapped) VALUES ($1, NULL)
		ON CONFLICT (consent_id) DO UPDATE SET wrapped = NULL`, consentID)
	if err != nil {
		return false, fmt.Errorf("destroying the data key of consent %s: %w", consentID, err)
	}
	return wrapped != nil, nil
}

func (t pgTx) putValueToken(id []byte, consentID string, rec []byte) ([]byte, error) {
	if _, err := t.q.Exec(t.ctx, `INSERT INTO consentgate_value_tokens (id, consent_id, doc) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO NOTHING`, id, consentID, rec); err != nil {
		return nil, fmt.Errorf("storing a token: %w", err)
	}
	return t.valueToken(id)
}

func (t pgTx) valueToken(id []byte) ([]byte, error) {
	var doc []byte
	err := t.q.QueryRow(t.ctx, `SELECT doc FROM consentgate_value_tokens WHERE id = $1`, id).Scan(&doc)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading a token: %w", err)
	}
	return doc, nil
}

func (t pgTx) spend(scope, key string, now time.Time, per time.Duration) (time.Time, int, error) {
	var start int64
	var calls int
	// One statement: two replicas counting at once both count.
	err := t.q.QueryRow(t.ctx, `INSERT INTO consentgate_call_budget AS b (scope, key, start_ns, calls) VALUES ($1, $2, $3, 1)
		ON CONFLICT (scope, key) DO UPDATE SET
			start_ns = CASE WHEN b.start_ns + $4 <= $3 THEN $3 ELSE b.start_ns END,
			calls = CASE WHEN b.start_ns + $4 <= $3 THEN 1 ELSE b.calls + 1 END
		RETURNING start_ns, calls`, scope, key, now.UnixNano(), per.Nanoseconds()).Scan(&start, &calls)
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("counting a call budget: %w", err)
	}
	return time.Unix(0, start), calls, nil
}

func (t pgTx) valueTokensOf(consentID string, n int) (ids, recs [][]byte, err error) {
	rows, err := t.q.Query(t.ctx, `SELECT id, doc FROM consentgate_value_tokens WHERE consent_id = $1 ORDER BY id LIMIT $2`, consentID, n)
	if err != nil {
		return nil, nil, fmt.Errorf("listing the tokens of consent %s: %w", consentID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, doc []byte
		if err := rows.Scan(&id, &doc); err != nil {
			return nil, nil, fmt.Errorf("listing the tokens of consent %s: %w", consentID, err)
		}
		ids, recs = append(ids, id), append(recs, doc)
	}
	return ids, recs, rows.Err()
}

func (t pgTx) swapDataKey(consentID string, old, updated []byte) (bool, error) {
	tag, err := t.q.Exec(t.ctx, `UPDATE consentgate_data_keys SET wrapped = $3 WHERE consent_id = $1 AND wrapped = $2`, consentID, old, updated)
	if err != nil {
		return false, fmt.Errorf("storing the data key of consent %s: %w", consentID, err)
	}
	return tag.RowsAffected() == 1, nil
}

func (t pgTx) lapsedDataKeys(now time.Time) ([]string, error) {
	rows, err := t.q.Query(t.ctx, `SELECT k.consent_id FROM consentgate_data_keys k
		JOIN consentgate_consents c ON c.id = k.consent_id
		WHERE k.wrapped IS NOT NULL
		AND (c.doc->>'status' = 'revoked' OR (c.doc->>'expires_at')::timestamptz <= $1)
		ORDER BY 1`, now)
	if err != nil {
		return nil, fmt.Errorf("finding the data keys of lapsed consents: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func (t pgTx) dataKeyOwners() ([]string, error) {
	rows, err := t.q.Query(t.ctx, `SELECT consent_id FROM consentgate_data_keys WHERE wrapped IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("listing data keys: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
