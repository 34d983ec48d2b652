package consent

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Registry is the consent store. It is safe for concurrent use; every read sees every
// write committed before it began (there is no cache to go stale).
type Registry struct {
	db                            *bolt.DB
	key                           []byte
	vendors, purposes, categories map[string]bool
	maxTTL                        time.Duration
	now                           func() time.Time
	hook                          func(context.Context, Change) error
	log                           *slog.Logger
}

// lockTimeout is how long Open waits for another process to let go of the file. bbolt
// waits forever by default, which turns a second consentgate on the same data directory
// into a silent hang instead of an error.
const lockTimeout = time.Second

// Open opens (creating, mode 0600) the registry file at path.
func Open(path string, o Options) (*Registry, error) {
	r, err := newRegistry(o)
	if err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("opening consent registry %s: %w (still locked after %s; is another consentgate running on it?)", path, ErrLocked, lockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("opening consent registry %s: %w", path, err)
	}
	if err := db.Update(r.prepare); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening consent registry %s: %w", path, err)
	}
	r.db = db
	return r, nil
}

// Close closes the file. Calling it again does nothing.
func (r *Registry) Close() error {
	return r.db.Close()
}

// SubjectHMAC is what the registry stores and answers in place of the app's user id.
func (r *Registry) SubjectHMAC(subject string) string {
	m := hmac.New(sha256.New, r.key)
	m.Write([]byte(subject))
	return hex.EncodeToString(m.Sum(nil))
}

// keyCheckInput is hashed under the subject key and kept in the file, so that opening the
// file with another key fails loudly rather than every subject lookup finding nothing.
// It reveals nothing about the key: it is one more HMAC of a known input.
const keyCheckInput = "consentgate consent registry: subject key check v1"

// prepare creates the buckets of a new file and checks the subject key of an old one.
func (r *Registry) prepare(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketConsents, bucketBySubject, bucketMeta, bucketPending, bucketTokens} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("creating bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	want := []byte(r.SubjectHMAC(keyCheckInput))
	got := meta.Get(keyKeyCheck)
	if got == nil {
		return meta.Put(keyKeyCheck, want)
	}
	if !hmac.Equal(got, want) {
		return ErrWrongKey
	}
	return nil
}
