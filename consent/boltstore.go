package consent

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Layout of the file. consents maps id to the consent's JSON. by_subject maps
// "<subject hmac>/<id>" to nothing, so a subject's consents are one prefix scan away;
// the HMAC is fixed-length hex, so the first "/" always ends it. meta holds the key check.
// oauth_pending maps the hash of an OAuth2 state to its Pending; oauth_tokens maps
// "<consent id>\x00<vendor>" to that vendor's tokens, sealed by the gateway.
// resources maps "<vendor>\x00<kind>\x00<id>" to a Resource; resources_by_consent
// maps "<consent id>\x00<vendor>\x00<kind>\x00<id>" to nothing.
var (
	bucketResources = []byte("resources")
	// erasures maps "<consent id>\x00<vendor>\x00<kind>\x00<resource id>" to a
	// storedErasure; erasures_pending holds the keys of those still pending.
	bucketErasures  = []byte("erasures")
	bucketErasePend = []byte("erasures_pending")
	bucketResByCons = []byte("resources_by_consent")
	bucketConsents  = []byte("consents")
	bucketBySubject = []byte("by_subject")
	bucketMeta      = []byte("meta")
	bucketPending   = []byte("oauth_pending")
	bucketTokens    = []byte("oauth_tokens")
	// data_keys maps a consent id to its wrapped token data key, or to nothing
	// once destroyed; value_tokens maps a token's id to its record.
	bucketDataKeys    = []byte("data_keys")
	bucketValueTokens = []byte("value_tokens")
	// call_budget maps "<scope>\x00<key>" to its window's start (unix ns) and
	// calls, 8 bytes each.
	bucketBudget = []byte("call_budget")
	// value_tokens_by_consent maps "<consent id>\x00<token id>" to nothing.
	bucketTokensByCons = []byte("value_tokens_by_consent")
	keyKeyCheck        = []byte("subject_key_check")
)

// lockTimeout is how long Open waits for another process to let go of the file. bbolt
// waits forever by default, which turns a second consentgate on the same data directory
// into a silent hang instead of an error.
const lockTimeout = time.Second

// boltStore keeps the registry in one bbolt file: the embedded default, for one
// gateway process (bbolt locks the file).
type boltStore struct{ db *bolt.DB }

var _ store = (*boltStore)(nil)

func openBolt(path string) (*boltStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("opening consent registry %s: %w (still locked after %s; is another consentgate running on it?)", path, ErrLocked, lockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("opening consent registry %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketConsents, bucketBySubject, bucketMeta, bucketPending, bucketTokens, bucketResources, bucketResByCons, bucketErasures, bucketErasePend, bucketDataKeys, bucketValueTokens, bucketBudget, bucketTokensByCons} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("creating bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("opening consent registry %s: %w", path, err)
	}
	// A batch (token records) waits this long for company before it commits:
	// bbolt's 10 ms default is most of a token's latency.
	db.MaxBatchDelay = 2 * time.Millisecond
	return &boltStore{db: db}, nil
}

func (s *boltStore) view(_ context.Context, fn func(storeTx) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

func (s *boltStore) batch(_ context.Context, fn func(storeTx) error) error {
	return s.db.Batch(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

// update uses db.Update, not db.Batch: Batch may run fn twice, and the hook would
// record the same change twice.
func (s *boltStore) update(_ context.Context, fn func(storeTx) error) error {
	return s.db.Update(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

func (s *boltStore) close() error { return s.db.Close() }

// boltTx is a bbolt transaction. A write transaction holds the file's only writer
// lock, so everything it reads stays as read until it commits.
type boltTx struct{ tx *bolt.Tx }

// tokensKey is where a consent's tokens at a vendor are stored; ids never hold a
// NUL byte, so the prefix of one consent never matches another's.
func tokensKey(consentID, vendor string) []byte {
	return []byte(consentID + "\x00" + vendor)
}

func subjectKey(subject, id string) []byte {
	return []byte(subject + "/" + id)
}

// loadConsent names only the id in its error: an unknown id and another app's
// consent must read alike to the API.
func (b boltTx) loadConsent(id string, c *Consent) error {
	v := b.tx.Bucket(bucketConsents).Get([]byte(id))
	if v == nil {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err := json.Unmarshal(v, c); err != nil {
		return fmt.Errorf("decoding consent %s: %w", id, err)
	}
	return nil
}

func (b boltTx) insertConsent(c *Consent) (bool, error) {
	if b.tx.Bucket(bucketConsents).Get([]byte(c.ID)) != nil {
		return false, nil
	}
	return true, b.storeConsent(c)
}

func (b boltTx) updateConsent(c *Consent) error { return b.storeConsent(c) }

// storeConsent writes c and its index entry. The subject of a consent never changes, so
// rewriting an existing consent leaves the index as it was.
func (b boltTx) storeConsent(c *Consent) error {
	v, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encoding consent %s: %w", c.ID, err)
	}
	if err := b.tx.Bucket(bucketConsents).Put([]byte(c.ID), v); err != nil {
		return fmt.Errorf("storing consent %s: %w", c.ID, err)
	}
	if err := b.tx.Bucket(bucketBySubject).Put(subjectKey(c.Subject, c.ID), nil); err != nil {
		return fmt.Errorf("indexing consent %s: %w", c.ID, err)
	}
	return nil
}

func (b boltTx) bySubject(subject string) ([]Consent, error) {
	prefix := subjectKey(subject, "")
	consents := b.tx.Bucket(bucketConsents)
	cur := b.tx.Bucket(bucketBySubject).Cursor()
	var out []Consent
	for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
		id := k[len(prefix):]
		v := consents.Get(id)
		if v == nil {
			// Both keys are written in one transaction, so this is a damaged file:
			// an incomplete answer about consent must not pass for a complete one.
			return nil, fmt.Errorf("subject index names consent %s, which is not stored", id)
		}
		var c Consent
		if err := json.Unmarshal(v, &c); err != nil {
			return nil, fmt.Errorf("decoding consent %s: %w", id, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func (b boltTx) insertPending(key []byte, p *Pending) (bool, error) {
	pending := b.tx.Bucket(bucketPending)
	if pending.Get(key) != nil {
		return false, nil
	}
	v, err := json.Marshal(p)
	if err != nil {
		return false, fmt.Errorf("encoding pending authorization: %w", err)
	}
	if err := pending.Put(key, v); err != nil {
		return false, fmt.Errorf("storing pending authorization: %w", err)
	}
	return true, nil
}

// sweepPending also removes entries it cannot decode: they could never be taken.
func (b boltTx) sweepPending(now time.Time) error {
	pending := b.tx.Bucket(bucketPending)
	var old [][]byte
	err := pending.ForEach(func(k, v []byte) error {
		var p Pending
		if json.Unmarshal(v, &p) != nil || !p.ExpiresAt.After(now) {
			old = append(old, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range old {
		if err := pending.Delete(k); err != nil {
			return fmt.Errorf("removing an expired pending authorization: %w", err)
		}
	}
	return nil
}

func (b boltTx) takePending(key []byte) (*Pending, error) {
	pending := b.tx.Bucket(bucketPending)
	v := pending.Get(key)
	if v == nil {
		return nil, ErrUnknownState
	}
	var p Pending
	if err := json.Unmarshal(v, &p); err != nil {
		return nil, fmt.Errorf("decoding pending authorization: %w", err)
	}
	if err := pending.Delete(key); err != nil {
		return nil, fmt.Errorf("removing pending authorization: %w", err)
	}
	return &p, nil
}

func (b boltTx) putTokens(consentID, vendor string, sealed []byte) error {
	if err := b.tx.Bucket(bucketTokens).Put(tokensKey(consentID, vendor), sealed); err != nil {
		return fmt.Errorf("storing tokens of consent %s: %w", consentID, err)
	}
	return nil
}

// tokens copies the value out: bbolt's is only valid inside the transaction.
func (b boltTx) tokens(consentID, vendor string) ([]byte, error) {
	v := b.tx.Bucket(bucketTokens).Get(tokensKey(consentID, vendor))
	if v == nil {
		return nil, fmt.Errorf("%w: consent %s at vendor %s", ErrNoTokens, consentID, vendor)
	}
	return bytes.Clone(v), nil
}

func (b boltTx) swapTokens(consentID, vendor string, old, updated []byte) (bool, error) {
	bucket := b.tx.Bucket(bucketTokens)
	k := tokensKey(consentID, vendor)
	if cur := bucket.Get(k); cur == nil || !bytes.Equal(cur, old) {
		return false, nil
	}
	var err error
	if updated == nil {
		err = bucket.Delete(k)
	} else {
		err = bucket.Put(k, updated)
	}
	if err != nil {
		return false, fmt.Errorf("replacing tokens of consent %s: %w", consentID, err)
	}
	return true, nil
}

func (b boltTx) deleteTokens(consentID string) ([]string, error) {
	bucket := b.tx.Bucket(bucketTokens)
	prefix := tokensKey(consentID, "")
	var keys [][]byte
	cur := bucket.Cursor()
	for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	var vendors []string
	for _, k := range keys {
		if err := bucket.Delete(k); err != nil {
			return nil, fmt.Errorf("deleting tokens of consent %s: %w", consentID, err)
		}
		vendors = append(vendors, string(k[len(prefix):]))
	}
	slices.Sort(vendors)
	return vendors, nil
}

func (b boltTx) keyCheck(want []byte) ([]byte, error) {
	meta := b.tx.Bucket(bucketMeta)
	if got := meta.Get(keyKeyCheck); got != nil {
		return bytes.Clone(got), nil
	}
	if err := meta.Put(keyKeyCheck, want); err != nil {
		return nil, fmt.Errorf("storing the subject key check: %w", err)
	}
	return want, nil
}

func resourceKey(vendor, kind, id string) []byte {
	return []byte(vendor + "\x00" + kind + "\x00" + id)
}

func (b boltTx) bindResource(res *Resource) (*Resource, error) {
	k := resourceKey(res.Vendor, res.Kind, res.ID)
	if v := b.tx.Bucket(bucketResources).Get(k); v != nil {
		var got Resource
		if err := json.Unmarshal(v, &got); err != nil {
			return nil, fmt.Errorf("decoding resource %s of vendor %s: %w", res.Kind, res.Vendor, err)
		}
		return &got, nil
	}
	v, err := json.Marshal(res)
	if err != nil {
		return nil, fmt.Errorf("encoding resource: %w", err)
	}
	if err := b.tx.Bucket(bucketResources).Put(k, v); err != nil {
		return nil, fmt.Errorf("storing resource: %w", err)
	}
	if err := b.tx.Bucket(bucketResByCons).Put(append([]byte(res.ConsentID+"\x00"), k...), nil); err != nil {
		return nil, fmt.Errorf("indexing resource: %w", err)
	}
	return res, nil
}

func (b boltTx) resource(vendor, kind, id string) (*Resource, error) {
	v := b.tx.Bucket(bucketResources).Get(resourceKey(vendor, kind, id))
	if v == nil {
		return nil, fmt.Errorf("%w: no %s %s of vendor %s is bound", ErrNotFound, kind, id, vendor)
	}
	var res Resource
	if err := json.Unmarshal(v, &res); err != nil {
		return nil, fmt.Errorf("decoding resource %s of vendor %s: %w", kind, vendor, err)
	}
	return &res, nil
}

func (b boltTx) resourcesOf(consentID string) ([]Resource, error) {
	prefix := []byte(consentID + "\x00")
	resources := b.tx.Bucket(bucketResources)
	var out []Resource
	cur := b.tx.Bucket(bucketResByCons).Cursor()
	for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
		v := resources.Get(k[len(prefix):])
		if v == nil {
			return nil, fmt.Errorf("the resource index of consent %s names a resource that is not stored", consentID)
		}
		var res Resource
		if err := json.Unmarshal(v, &res); err != nil {
			return nil, fmt.Errorf("decoding a resource of consent %s: %w", consentID, err)
		}
		out = append(out, res)
	}
	slices.SortStableFunc(out, func(a, b Resource) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

func erasureKey(e *storedErasure) []byte {
	return []byte(e.ConsentID + "\x00" + e.Vendor + "\x00" + e.Kind + "\x00" + e.ResourceID)
}

func (b boltTx) putErasure(e *storedErasure) error {
	if b.tx.Bucket(bucketErasures).Get(erasureKey(e)) != nil {
		return nil
	}
	return b.saveErasure(e)
}

// saveErasure keeps the pending index in step with the status.
func (b boltTx) saveErasure(e *storedErasure) error {
	k := erasureKey(e)
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encoding erasure: %w", err)
	}
	if err := b.tx.Bucket(bucketErasures).Put(k, v); err != nil {
		return fmt.Errorf("storing erasure of consent %s: %w", e.ConsentID, err)
	}
	pending := b.tx.Bucket(bucketErasePend)
	if e.Status == ErasurePending {
		err = pending.Put(k, nil)
	} else {
		err = pending.Delete(k)
	}
	if err != nil {
		return fmt.Errorf("indexing erasure of consent %s: %w", e.ConsentID, err)
	}
	return nil
}

func (b boltTx) erasuresOf(consentID string) ([]storedErasure, error) {
	prefix := []byte(consentID + "\x00")
	var out []storedErasure
	cur := b.tx.Bucket(bucketErasures).Cursor()
	for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
		var e storedErasure
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, fmt.Errorf("decoding an erasure of consent %s: %w", consentID, err)
		}
		out = append(out, e)
	}
	return out, nil
}

func (b boltTx) claimErasures(now time.Time, n int, until time.Time) ([]storedErasure, error) {
	erasures := b.tx.Bucket(bucketErasures)
	var due []storedErasure
	err := b.tx.Bucket(bucketErasePend).ForEach(func(k, _ []byte) error {
		if len(due) == n {
			return nil
		}
		var e storedErasure
		if err := json.Unmarshal(erasures.Get(k), &e); err != nil {
			return fmt.Errorf("decoding a pending erasure: %w", err)
		}
		if !e.NextAt.After(now) {
			due = append(due, e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range due {
		due[i].NextAt = until
		if err := b.saveErasure(&due[i]); err != nil {
			return nil, err
		}
	}
	return due, nil
}

func (b boltTx) unplannedConsents(now time.Time) ([]string, error) {
	erasures := b.tx.Bucket(bucketErasures).Cursor()
	var out []string
	last := ""
	cur := b.tx.Bucket(bucketResByCons).Cursor()
	for k, _ := cur.First(); k != nil; k, _ = cur.Next() {
		id, _, _ := strings.Cut(string(k), "\x00")
		if id == last {
			continue
		}
		last = id
		prefix := []byte(id + "\x00")
		if ek, _ := erasures.Seek(prefix); ek != nil && bytes.HasPrefix(ek, prefix) {
			continue
		}
		var c Consent
		if err := b.loadConsent(id, &c); err != nil {
			return nil, err
		}
		if c.settle(now); c.Status != Active {
			out = append(out, id)
		}
	}
	return out, nil
}

func (b boltTx) dataKey(consentID string) ([]byte, bool, error) {
	v := b.tx.Bucket(bucketDataKeys).Get([]byte(consentID))
	if v == nil {
		return nil, false, nil
	}
	if len(v) == 0 {
		return nil, true, nil
	}
	return bytes.Clone(v), false, nil
}

func (b boltTx) putDataKey(consentID string, wrapped []byte) error {
	bucket := b.tx.Bucket(bucketDataKeys)
	if bucket.Get([]byte(consentID)) != nil {
		return nil
	}
	if err := bucket.Put([]byte(consentID), wrapped); err != nil {
		return fmt.Errorf("storing the data key of consent %s: %w", consentID, err)
	}
	return nil
}

func (b boltTx) shredDataKey(consentID string) (bool, error) {
	bucket := b.tx.Bucket(bucketDataKeys)
	had := len(bucket.Get([]byte(consentID))) > 0
	if err := bucket.Put([]byte(consentID), []byte{}); err != nil {
		return false, fmt.Errorf("destroying the data key of consent %s: %w", consentID, err)
	}
	return had, nil
}

func (b boltTx) putValueToken(id []byte, consentID string, rec []byte) ([]byte, error) {
	bucket := b.tx.Bucket(bucketValueTokens)
	if got := bucket.Get(id); got != nil {
		return bytes.Clone(got), nil
	}
	if err := bucket.Put(id, rec); err != nil {
		return nil, fmt.Errorf("storing a token: %w", err)
	}
	if err := b.tx.Bucket(bucketTokensByCons).Put(append([]byte(consentID+"\x00"), id...), nil); err != nil {
		return nil, fmt.Errorf("storing a token: %w", err)
	}
	return rec, nil
}

func (b boltTx) valueTokensOf(consentID string, n int) (ids, recs [][]byte, err error) {
	prefix := []byte(consentID + "\x00")
	tokens := b.tx.Bucket(bucketValueTokens)
	c := b.tx.Bucket(bucketTokensByCons).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(ids) < n; k, _ = c.Next() {
		id := bytes.Clone(k[len(prefix):])
		if rec := tokens.Get(id); rec != nil {
			ids, recs = append(ids, id), append(recs, bytes.Clone(rec))
		}
	}
	return ids, recs, nil
}

func (b boltTx) valueToken(id []byte) ([]byte, error) {
	return bytes.Clone(b.tx.Bucket(bucketValueTokens).Get(id)), nil
}

func (b boltTx) spend(scope, key string, now time.Time, per time.Duration) (time.Time, int, error) {
	bucket, k := b.tx.Bucket(bucketBudget), []byte(scope+"\x00"+key)
	start, calls := now, 0
	if v := bucket.Get(k); len(v) == 16 {
		start, calls = time.Unix(0, int64(binary.BigEndian.Uint64(v))), int(binary.BigEndian.Uint64(v[8:]))
	}
	if !now.Before(start.Add(per)) {
		start, calls = now, 0
	}
	calls++
	v := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, uint64(start.UnixNano())), uint64(calls))
	if err := bucket.Put(k, v); err != nil {
		return start, calls, fmt.Errorf("storing a call budget: %w", err)
	}
	return start, calls, nil
}

func (b boltTx) swapDataKey(consentID string, old, updated []byte) (bool, error) {
	bucket := b.tx.Bucket(bucketDataKeys)
	if got := bucket.Get([]byte(consentID)); len(got) == 0 || !bytes.Equal(got, old) {
		return false, nil
	}
	if err := bucket.Put([]byte(consentID), updated); err != nil {
		return false, fmt.Errorf("storing the data key of consent %s: %w", consentID, err)
	}
	return true, nil
}

func (b boltTx) lapsedDataKeys(now time.Time) ([]string, error) {
	var out []string
	err := b.tx.Bucket(bucketDataKeys).ForEach(func(k, v []byte) error {
		if len(v) == 0 {
			return nil
		}
		var c Consent
		if err := b.loadConsent(string(k), &c); err != nil {
			return err
		}
		if c.settle(now); c.Status != Active {
			out = append(out, c.ID)
		}
		return nil
	})
	return out, err
}

func (b boltTx) dataKeyOwners() ([]string, error) {
	var out []string
	err := b.tx.Bucket(bucketDataKeys).ForEach(func(k, v []byte) error {
		if len(v) > 0 {
			out = append(out, string(k))
		}
		return nil
	})
	return out, err
}
