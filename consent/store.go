package consent

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Layout of the file. consents maps id to the consent's JSON. by_subject maps
// "<subject hmac>/<id>" to nothing, so a subject's consents are one prefix scan away;
// the HMAC is fixed-length hex, so the first "/" always ends it. meta holds the key check.
// oauth_pending maps the hash of an OAuth2 state to its Pending; oauth_tokens maps
// "<consent id>\x00<vendor>" to that vendor's tokens, sealed by the gateway.
var (
	bucketConsents  = []byte("consents")
	bucketBySubject = []byte("by_subject")
	bucketMeta      = []byte("meta")
	bucketPending   = []byte("oauth_pending")
	bucketTokens    = []byte("oauth_tokens")
	keyKeyCheck     = []byte("subject_key_check")
)

// tokensKey is where a consent's tokens at a vendor are stored; ids never hold a
// NUL byte, so the prefix of one consent never matches another's.
func tokensKey(consentID, vendor string) []byte {
	return []byte(consentID + "\x00" + vendor)
}

func subjectKey(subject, id string) []byte {
	return []byte(subject + "/" + id)
}

// loadConsent decodes the stored consent with id into c. An unknown id and another app's
// consent must read alike to the API, so the error names only the id.
func loadConsent(tx *bolt.Tx, id string, c *Consent) error {
	v := tx.Bucket(bucketConsents).Get([]byte(id))
	if v == nil {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err := json.Unmarshal(v, c); err != nil {
		return fmt.Errorf("decoding consent %s: %w", id, err)
	}
	return nil
}

// storeConsent writes c and its index entry. The subject of a consent never changes, so
// rewriting an existing consent leaves the index as it was.
func storeConsent(tx *bolt.Tx, c *Consent) error {
	v, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encoding consent %s: %w", c.ID, err)
	}
	if err := tx.Bucket(bucketConsents).Put([]byte(c.ID), v); err != nil {
		return fmt.Errorf("storing consent %s: %w", c.ID, err)
	}
	if err := tx.Bucket(bucketBySubject).Put(subjectKey(c.Subject, c.ID), nil); err != nil {
		return fmt.Errorf("indexing consent %s: %w", c.ID, err)
	}
	return nil
}
