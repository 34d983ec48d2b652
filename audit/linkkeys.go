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
	day       time.Time       // the day cache and indexed are of: they start empty each day
	closed    bool            // under dbMu
}

type linkKey struct {
	key  [32]byte
	used time.Time // last use, to the day it is stored with
}

// openLinkKeys opens (creating) the key file of the log with id logID; a file of
// another log is refused, as its keys would link nothing here.
func openLinkKeys(path, logID string, retention time.Duration) (*linkKeys, error) {
	os.RemoveAll(path + ".rewrite") // a rewrite cut short: the file in place is whole
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
	if !day.Equal(k.day) {
		// A key cached yesterday must be written again today anyway: dropping
		// the maps keeps them to the people of one day, not of the retention.
		k.cache, k.indexed, k.day = map[string]*linkKey{}, map[string]bool{}, day
	}
	c, ok := k.cache[subject]
	k.mu.Unlock()
	if ok && !c.used.Before(day) {
		return c.key, nil
	}
	var lk linkKey
	// dbMu is let go before mu is taken again: sweep takes them the other way.
	k.dbMu.RLock()
	db, err := k.open()
	if err == nil {
		err = db.Batch(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketLinkKeys)
			if v := b.Get([]byte(subject)); len(v) == 40 {
				copy(lk.key[:], v)
			} else if _, err := rand.Read(lk.key[:]); err != nil {
				return err
			}
			lk.used = day
			return b.Put([]byte(subject), binary.BigEndian.AppendUint64(lk.key[:], uint64(day.Unix())))
		})
	}
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
	db, err := k.open()
	if err == nil {
		err = db.Batch(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketLinked)
			for _, pair := range missing {
				if err := b.Put(pair, nil); err != nil {
					return err
				}
			}
			return nil
		})
	}
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
// returns how many. It never deletes in place (bbolt keeps deleted values in its
// free pages): the live keys and index entries are copied into a new file that
// replaces the old one, so the file on disk is either the old one, nothing
// destroyed, or the new one, which holds nothing of the destroyed.
func (k *linkKeys) sweep(now time.Time) (int, error) {
	if k.retention <= 0 {
		return 0, nil
	}
	k.mu.Lock() // the cache and the file in step
	defer k.mu.Unlock()
	k.dbMu.Lock()
	defer k.dbMu.Unlock()
	if k.closed {
		return 0, fmt.Errorf("%w: closed", ErrUnavailable)
	}
	if err := k.reopen(); err != nil {
		return 0, err
	}
	// A day of last use lasts until its end: a key used at 23:59 is not a day older.
	cut := now.Add(-k.retention).Unix() - 24*60*60
	gone := map[string]bool{}
	err := k.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLinkKeys).ForEach(func(s, v []byte) error {
			if len(v) == 40 && int64(binary.BigEndian.Uint64(v[32:])) < cut {
				gone[string(s)] = true
			}
			return nil
		})
	})
	if err != nil || len(gone) == 0 {
		return 0, err
	}
	if err := k.replace(gone); err != nil {
		return 0, fmt.Errorf("rewriting the link keys without the %d destroyed: %w", len(gone), err)
	}
	for s := range gone {
		delete(k.cache, s)
	}
	for pair := range k.indexed {
		if len(pair) == 128 && gone[pair[64:]] {
			delete(k.indexed, pair)
		}
	}
	return len(gone), nil
}

// replace writes the file anew without the subjects in gone and puts it in place.
// Called with dbMu held; on an error before the rename the old file stays.
func (k *linkKeys) replace(gone map[string]bool) error {
	tmp := k.path + ".rewrite"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return err
	}
	err = k.db.View(func(src *bolt.Tx) error {
		return dst.Update(func(tx *bolt.Tx) error { return copyLive(src, tx, gone) })
	})
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if err := k.db.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	k.db = nil
	if replaceFault != nil {
		err = replaceFault()
	}
	if err != nil {
		os.Remove(tmp)
		return errors.Join(err, k.reopen())
	}
	if err := os.Rename(tmp, k.path); err != nil {
		os.Remove(tmp)
		return errors.Join(err, k.reopen())
	}
	if err := SyncDir(filepath.Dir(k.path)); err != nil {
		return errors.Join(err, k.reopen())
	}
	return k.reopen()
}

// replaceFault, set by tests, fails a rewrite just before the new file would take
// the old one's place: the worst moment, with both on disk.
var replaceFault func() error

// copyLive copies the meta, and the keys and index entries of subjects not in gone.
func copyLive(src, dst *bolt.Tx, gone map[string]bool) error {
	for _, name := range [][]byte{linkMeta, bucketLinkKeys, bucketLinked} {
		out, err := dst.CreateBucket(name)
		if err != nil {
			return err
		}
		err = src.Bucket(name).ForEach(func(key, v []byte) error {
			switch {
			case bytes.Equal(name, bucketLinkKeys) && gone[string(key)]:
				return nil
			case bytes.Equal(name, bucketLinked) && len(key) == 128 && gone[string(key[64:])]:
				return nil
			}
			return out.Put(key, v)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// reopen opens the file again if a rewrite left it closed. Called with dbMu held.
func (k *linkKeys) reopen() error {
	if k.db != nil {
		return nil
	}
	db, err := bolt.Open(k.path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return fmt.Errorf("%w: reopening the link keys: %w", ErrUnavailable, err)
	}
	db.MaxBatchDelay = time.Millisecond
	k.db = db
	return nil
}

// terms are the forms h takes in records: h itself (records written before link
// keys, or without a subject), h under its own key (h a subject HMAC), and h under
// the key of each subject whose records hold it (h an identifier HMAC).
func (k *linkKeys) terms(h string) ([]string, error) {
	out := []string{h}
	k.dbMu.RLock()
	defer k.dbMu.RUnlock()
	db, err := k.open()
	if err != nil {
		return nil, err
	}
	err = db.View(func(tx *bolt.Tx) error {
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

func (k *linkKeys) close() error {
	if k == nil {
		return nil
	}
	k.dbMu.Lock()
	defer k.dbMu.Unlock()
	k.closed = true
	if k.db == nil {
		return nil
	}
	return k.db.Close()
}

// open is the file to use, or an error if a rewrite could not reopen it (records
// naming someone are refused until it can). Called with dbMu held for reading.
func (k *linkKeys) open() (*bolt.DB, error) {
	if k.db == nil || k.closed {
		return nil, fmt.Errorf("%w: the link keys file is not open", ErrUnavailable)
	}
	return k.db, nil
}

// LinkTerms are the search terms for a person's HMACs (subject or identifier
// HMACs) in the log at path, from its link keys file (opened read-only: the
// gateway stopped, or a copy), each once. Without a link keys file, the HMACs
// are the only terms.
func LinkTerms(path string, hs ...string) ([]string, error) {
	file := LinkKeysPath(path)
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
		return uniq(hs), nil
	}
	db, err := bolt.Open(file, 0o600, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s is in use by a running gateway: ask it (--admin), which knows the keys", ErrLocked, file)
	}
	if err != nil {
		return nil, fmt.Errorf("opening audit link keys %s: %w", file, err)
	}
	defer db.Close()
	return termsOf(&linkKeys{db: db}, hs)
}
