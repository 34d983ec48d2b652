package consent

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Get returns the consent with id as of now, whichever app owns it: callers acting for an
// app must compare App themselves. It is on the gateway's hot path, so it is one read
// transaction and one JSON decode, and nothing is cached: a revocation committed before
// the call is always seen. An unknown id is ErrNotFound.
func (r *Registry) Get(ctx context.Context, id string) (*Consent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var c Consent
	if err := r.db.View(func(tx *bolt.Tx) error { return loadConsent(tx, id, &c) }); err != nil {
		return nil, err
	}
	c.settle(r.now())
	return &c, nil
}

// BySubject returns the consents of one end user, oldest grant first. subject is the raw
// app user id, hashed here; app "" means every app's (for admins and auditors). None is
// an empty list, not an error.
func (r *Registry) BySubject(ctx context.Context, app, subject string) ([]Consent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if subject == "" {
		return nil, fmt.Errorf("%w: subject is required", ErrInvalid)
	}
	prefix := subjectKey(r.SubjectHMAC(subject), "")
	out := []Consent{}
	err := r.db.View(func(tx *bolt.Tx) error {
		consents := tx.Bucket(bucketConsents)
		cur := tx.Bucket(bucketBySubject).Cursor()
		for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
			id := k[len(prefix):]
			v := consents.Get(id)
			if v == nil {
				// Both keys are written in one transaction, so this is a damaged file:
				// an incomplete answer about consent must not pass for a complete one.
				return fmt.Errorf("subject index names consent %s, which is not stored", id)
			}
			var c Consent
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("decoding consent %s: %w", id, err)
			}
			if app == "" || c.App == app {
				out = append(out, c)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	now := r.now()
	for i := range out {
		out[i].settle(now)
	}
	slices.SortFunc(out, func(a, b Consent) int {
		return cmp.Or(a.GrantedAt.Compare(b.GrantedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}
