package consent

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// Registry is the consent registry, kept in a bbolt file (Open) or in PostgreSQL
// (OpenPostgres). It is safe for concurrent use, also by several gateways sharing one
// database: every read sees every write committed before it began, by this gateway or
// another (there is no cache to go stale).
type Registry struct {
	st                store
	key               []byte
	categories        map[string]bool
	vendors, purposes atomic.Pointer[map[string]bool]
	maxTTL            time.Duration
	now               func() time.Time
	hook              func(context.Context, Change) error
	log               *slog.Logger
	erasure           atomic.Pointer[ErasurePlan] // nil: none
	// keysSwept is when expired consents' data keys were last looked for
	// (shredLapsedKeys), in Unix nanoseconds.
	keysSwept atomic.Int64
}

// Open opens (creating, mode 0600) the registry file at path: the embedded store,
// for one gateway process. Several gateways share a registry through OpenPostgres.
func Open(path string, o Options) (*Registry, error) {
	r, err := newRegistry(o)
	if err != nil {
		return nil, err
	}
	st, err := openBolt(path)
	if err != nil {
		return nil, err
	}
	if err := r.use(context.Background(), st); err != nil {
		st.close()
		return nil, fmt.Errorf("opening consent registry %s: %w", path, err)
	}
	return r, nil
}

// use checks the subject key against the store's, then keeps the store.
func (r *Registry) use(ctx context.Context, st store) error {
	want := []byte(r.SubjectHMAC(keyCheckInput))
	err := st.update(ctx, func(tx storeTx) error {
		got, err := tx.keyCheck(want)
		if err != nil {
			return err
		}
		if !hmac.Equal(got, want) {
			return ErrWrongKey
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.st = st
	return nil
}

// Close closes the store. Calling it again does nothing.
func (r *Registry) Close() error {
	return r.st.close()
}

// SubjectHMAC is what the registry stores and answers in place of the app's user id.
func (r *Registry) SubjectHMAC(subject string) string {
	m := hmac.New(sha256.New, r.key)
	m.Write([]byte(subject))
	return hex.EncodeToString(m.Sum(nil))
}

// keyCheckInput is hashed under the subject key and kept in the store, so that opening
// it with another key fails loudly rather than every subject lookup finding nothing.
// It reveals nothing about the key: it is one more HMAC of a known input.
const keyCheckInput = "consentgate consent registry: subject key check v1"

// SetVendors replaces the vendors new consents may name and how a withdrawal
// reaches them: a reload of the vendor profiles that adds one makes it usable at
// once. Consents already stored keep theirs; erasures already queued run.
func (r *Registry) SetVendors(vendors []string, plan *ErasurePlan) error {
	set, err := allowedSet("vendors", vendors)
	if err != nil {
		return err
	}
	r.vendors.Store(&set)
	r.erasure.Store(plan)
	return nil
}

// SetPurposes replaces the purposes new consents may name: a policy revision
// that adds one makes it usable at once. Consents already stored keep theirs.
func (r *Registry) SetPurposes(purposes []string) error {
	set, err := allowedSet("purposes", purposes)
	if err != nil {
		return err
	}
	r.purposes.Store(&set)
	return nil
}
