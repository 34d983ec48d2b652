package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Link keys let a person's records become unlinkable when their retention ends,
// while the records, and so the chain, stay as they are: archived segments may be
// under object lock. With LinkRetention set, Append replaces a record's subject
// HMAC s by HMAC(k, s) and each identifier HMAC i by HMAC(k, i), k being a random
// key of the person's (of s) kept in a file beside the log, never in it. Search
// terms come from the same keys (LinkTerms). Once no record has named the person
// for LinkRetention, their key is destroyed: their records keep their hashes, and
// nothing can tie them to the person, nor to each other through the person, again.

var (
	bucketLinkKeys = []byte("link_keys") // subject HMAC → key (32 bytes) || last use (unix seconds, 8 bytes)
	// bucketLinked indexes the identifiers seen in a subject's records: identifier
	// HMAC || subject HMAC → empty. A search by identifier needs only the keys of
	// those subjects; the entries go with the subject's key.
	bucketLinked = []byte("linked_identifiers")
	linkMeta     = []byte("meta")
	linkLogID    = []byte("log_id")
)

// LinkKeysPath is where the log at path keeps its link keys: audit.db's in
// audit-links.db.
func LinkKeysPath(path string) string {
	return strings.TrimSuffix(path, filepath.Ext(path)) + "-links.db"
}

// linkKeys is the open key file, with a cache of the keys in use.
type linkKeys struct {
	path      string
	dbMu      sync.RWMutex // db is swapped when the file is rewritten
	db        *bolt.DB
	retention time.Duration
	mu        sync.Mutex
	cache     map[string]*linkKey
	indexed   map[string]bool // identifier || subject pairs known to be in bucketLinked
}

type linkKey struct {
	key  [32]byte
	used time.Time // last use, to the day it is stored with
}

// openLinkKeys opens (creating) the key file of the log with id logID; a file of
// another log is refused, as its keys would link nothing here.
func openLinkKeys(path, logID string, retention time.Duration) (*linkKeys, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return nil, fmt.Errorf("opening audit link keys %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketLinkKeys, bucketLinked} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		m, err := tx.CreateBucketIfNotExists(linkMeta)
		if err != nil {
			return err
		}
		switch id := m.Get(linkLogID); {
		case id == nil:
			return m.Put(linkLogID, []byte(logID))
		case string(id) != logID:
			return fmt.Errorf("%w: the link keys are of log %s, not %s", ErrWrongKey, id, logID)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("opening audit link keys %s: %w", path, err)
	}
	db.MaxBatchDelay = time.Millisecond // a new person's first record waits for it
	return &linkKeys{path: path, db: db, retention: retention, cache: map[string]*linkKey{}, indexed: map[string]bool{}}, nil
}

// pseudonymize replaces r's subject and identifier HMACs by their keyed forms
// under the subject's link key, creating it (on disk first) if the subject has none.
func (k *linkKeys) pseudonymize(r *Record, now time.Time) error {
	if r.SubjectHMAC == "" {
		return nil
	}
	key, err := k.key(r.SubjectHMAC, now)
	if err == nil {
		err = k.index(r.SubjectHMAC, r.Identifiers)
	}
	if err != nil {
		return fmt.Errorf("%w: the subject's link key: %w", ErrUnavailable, err)
	}
	r.SubjectHMAC = linked(key, r.SubjectHMAC)
	for i, id := range r.Identifiers {
		r.Identifiers[i] = linked(key, id)
	}
	return nil
}

func linked(key [32]byte, h string) string {
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(h))
	return hex.EncodeToString(m.Sum(nil))
}

// key is the subject's link key. A new one is committed before it is used: a key
// lost after records used it would make them unlinkable too early. The last use is
// kept to the day, so a subject costs one write a day at most; concurrent callers
// share the commit.
func (k *linkKeys) key(subject string, now time.Time) ([32]byte, error) {
	day := now.UTC().Truncate(24 * time.Hour)
	k.mu.Lock()
	c, ok := k.cache[subject]
	k.mu.Unlock()
	if ok && !c.used.Before(day) {
		return c.key, nil
	}
	var lk linkKey
	// dbMu is let go before mu is taken again: sweep takes them the other way.
	k.dbMu.RLock()
	err := k.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLinkKeys)
		if v := b.Get([]byte(subject)); len(v) == 40 {
			copy(lk.key[:], v)
		} else if _, err := rand.Read(lk.key[:]); err != nil {
			return err
		}
		lk.used = day
		return b.Put([]byte(subject), binary.BigEndian.AppendUint64(lk.key[:], uint64(day.Unix())))
	})
	k.dbMu.RUnlock()
	if err != nil {
		return [32]byte{}, err
	}
	k.mu.Lock()
	k.cache[subject] = &lk
	k.mu.Unlock()
	return lk.key, nil
}

// index notes that the subject's records hold these identifiers, once per pair.
func (k *linkKeys) index(subject string, ids []string) error {
	var missing [][]byte
	k.mu.Lock()
	for _, id := range ids {
		if pair := id + subject; !k.indexed[pair] {
			missing = append(missing, []byte(pair))
		}
	}
	k.mu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	k.dbMu.RLock()
	err := k.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLinked)
		for _, pair := range missing {
			if err := b.Put(pair, nil); err != nil {
				return err
			}
		}
		return nil
	})
	k.dbMu.RUnlock()
	if err != nil {
		return err
	}
	k.mu.Lock()
	for _, pair := range missing {
		k.indexed[string(pair)] = true
	}
	k.mu.Unlock()
	return nil
}

// sweep destroys the keys of subjects no record has named for the retention, and
// returns how many.
func (k *linkKeys) sweep(now time.Time) (int, error) {
	if k.retention <= 0 {
		return 0, nil
	}
	k.mu.Lock() // the cache and the file in step
	defer k.mu.Unlock()
	k.dbMu.Lock()
	defer k.dbMu.Unlock()
	cut := now.Add(-k.retention).Unix()
	gone := map[string]bool{}
	err := k.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLinkKeys).Cursor()
		for s, v := c.First(); s != nil; s, v = c.Next() {
			if len(v) == 40 && int64(binary.BigEndian.Uint64(v[32:])) < cut {
				if err := c.Delete(); err != nil {
					return err
				}
				gone[string(s)] = true
			}
		}
		// The index would still say which identifiers were this person's.
		c = tx.Bucket(bucketLinked).Cursor()
		for pair, _ := c.First(); pair != nil; pair, _ = c.Next() {
			if len(pair) == 128 && gone[string(pair[64:])] {
				if err := c.Delete(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for s := range gone {
		delete(k.cache, s)
	}
	if len(gone) > 0 {
		if err := k.rewrite(); err != nil {
			return len(gone), err
		}
	}
	for pair := range k.indexed {
		if len(pair) == 128 && gone[pair[64:]] {
			delete(k.indexed, pair)
		}
	}
	return len(gone), nil
}

// terms are the forms h takes in records: h itself (records written before link
// keys, or without a subject), h under its own key (h a subject HMAC), and h under
// the key of each subject whose records hold it (h an identifier HMAC).
func (k *linkKeys) terms(h string) ([]string, error) {
	out := []string{h}
	k.dbMu.RLock()
	defer k.dbMu.RUnlock()
	err := k.db.View(func(tx *bolt.Tx) error {
		keys := tx.Bucket(bucketLinkKeys)
		add := func(subject []byte) {
			if v := keys.Get(subject); len(v) == 40 {
				out = append(out, linked([32]byte(v[:32]), h))
			}
		}
		add([]byte(h))
		c := tx.Bucket(bucketLinked).Cursor()
		for pair, _ := c.Seek([]byte(h)); bytes.HasPrefix(pair, []byte(h)); pair, _ = c.Next() {
			add(pair[len(h):])
		}
		return nil
	})
	return out, err
}

// rewrite copies the live keys into a new file that replaces the old one: bbolt
// leaves deleted values in its free pages, where a destroyed key would survive.
// Called with dbMu held.
func (k *linkKeys) rewrite() error {
	tmp := k.path + ".rewrite"
	os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return err
	}
	err = bolt.Compact(dst, k.db, 0)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rewriting the link keys: %w", err)
	}
	if err := k.db.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, k.path); err != nil {
		os.Remove(tmp)
	}
	syncDir(filepath.Dir(k.path))
	db, err := bolt.Open(k.path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return fmt.Errorf("reopening the link keys: %w", err)
	}
	db.MaxBatchDelay = time.Millisecond
	k.db = db
	return nil
}

func (k *linkKeys) close() error {
	if k == nil {
		return nil
	}
	return k.db.Close()
}

// LinkTerms are the search terms for h (a subject or identifier HMAC) in the log at
// path, from its link keys file (opened read-only: the gateway stopped, or a copy).
// Without a link keys file, h is the only term.
func LinkTerms(path, h string) ([]string, error) {
	file := LinkKeysPath(path)
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
		return []string{h}, nil
	}
	db, err := bolt.Open(file, 0o600, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s is in use by a running gateway: ask it (--admin), which knows the keys", ErrLocked, file)
	}
	if err != nil {
		return nil, fmt.Errorf("opening audit link keys %s: %w", file, err)
	}
	defer db.Close()
	return (&linkKeys{db: db}).terms(h)
}
