package consent

import (
	"context"
	"time"
)

// store is where a Registry keeps its records: a bbolt file (Open) or a PostgreSQL
// database that several gateways share (OpenPostgres). The Registry holds the rules;
// a store only reads and writes, so both backends behave alike by construction.
type store interface {
	// view runs fn with reads that each see every write committed before they began.
	view(ctx context.Context, fn func(storeTx) error) error
	// update runs fn as one transaction: all of its writes commit, or none do (fn
	// returned an error). A consent it reads stays locked until it ends, so that
	// two changes of one consent (even from two gateways) happen one after the other.
	update(ctx context.Context, fn func(storeTx) error) error
	// batch is update for a write that may run twice and may share its commit
	// with concurrent ones (a token record: insert if absent), so that many
	// calls at once cost one fsync. It runs no hook.
	batch(ctx context.Context, fn func(storeTx) error) error
	close() error
}

// storeTx is what a transaction can do. Each method is one step the Registry needs,
// and each keeps its meaning under concurrent gateways: "insert" fails rather than
// overwrites, "take" and "swap" succeed for exactly one caller.
type storeTx interface {
	// loadConsent decodes the stored consent with id into c; ErrNotFound if none.
	loadConsent(id string, c *Consent) error
	// insertConsent stores a new consent; false (and nothing written) if the id is taken.
	insertConsent(c *Consent) (bool, error)
	// updateConsent rewrites a stored consent. Its subject never changes.
	updateConsent(c *Consent) error
	// bySubject returns every app's consents of one subject HMAC, in no order.
	bySubject(subject string) ([]Consent, error)

	// insertPending stores a pending authorization; false if key is in use.
	insertPending(key []byte, p *Pending) (bool, error)
	// sweepPending removes pending authorizations that expired by now.
	sweepPending(now time.Time) error
	// takePending removes and returns the pending authorization under key;
	// ErrUnknownState if there is none.
	takePending(key []byte) (*Pending, error)

	// putTokens stores (or replaces) a consent's sealed tokens at a vendor.
	putTokens(consentID, vendor string, sealed []byte) error
	// tokens returns them; ErrNoTokens if there are none.
	tokens(consentID, vendor string) ([]byte, error)
	// swapTokens replaces them with updated (nil: removes them) only if old is what
	// is stored; false if it is not.
	swapTokens(consentID, vendor string, old, updated []byte) (bool, error)
	// deleteTokens removes every vendor's tokens of a consent and returns the
	// vendors, sorted.
	deleteTokens(consentID string) ([]string, error)

	// bindResource stores res unless its vendor, kind and id are bound already,
	// and returns what is stored after.
	bindResource(res *Resource) (*Resource, error)
	// resource returns the binding of a vendor's id; ErrNotFound if none.
	resource(vendor, kind, id string) (*Resource, error)
	// resourcesOf returns the resources bound to a consent, oldest first.
	resourcesOf(consentID string) ([]Resource, error)

	// putErasure adds an erasure to the outbox unless one for the same
	// resource is there.
	putErasure(e *storedErasure) error
	// saveErasure rewrites an erasure after an attempt.
	saveErasure(e *storedErasure) error
	// erasuresOf returns a consent's erasures, in the order they were planned.
	erasuresOf(consentID string) ([]storedErasure, error)
	// claimErasures returns up to n pending erasures due by now and makes them
	// due again only at until.
	claimErasures(now time.Time, n int, until time.Time) ([]storedErasure, error)
	// unplannedConsents returns the consents that hold resources, have no
	// erasure planned, and are revoked or expired by now.
	unplannedConsents(now time.Time) ([]string, error)

	// keyCheck stores want as the subject key check unless one is stored, and
	// returns what is stored after.
	keyCheck(want []byte) ([]byte, error)

	// dataKey returns a consent's wrapped token data key; nil if it has none,
	// shredded if it was destroyed.
	dataKey(consentID string) (wrapped []byte, shredded bool, err error)
	// putDataKey stores a consent's wrapped data key unless it has one or had one.
	putDataKey(consentID string, wrapped []byte) error
	// shredDataKey destroys a consent's data key for good; whether it had one.
	shredDataKey(consentID string) (bool, error)
	// swapDataKey replaces a consent's wrapped data key with updated only if
	// old is what is stored; false if it is not.
	swapDataKey(consentID string, old, updated []byte) (bool, error)
	// dataKeyOwners lists the consents that hold a data key.
	dataKeyOwners() ([]string, error)
	// lapsedDataKeys lists the consents that hold a data key and are no
	// longer active at now (expired; a revoked one has none left).
	lapsedDataKeys(now time.Time) ([]string, error)
	// putValueToken stores a token record under id unless id is taken, and
	// returns what is stored after.
	putValueToken(id []byte, consentID string, rec []byte) ([]byte, error)
	// valueToken returns the record under id; nil if none.
	valueToken(id []byte) ([]byte, error)
	// valueTokensOf returns the ids and records of a consent's tokens, at most n.
	valueTokensOf(consentID string, n int) (ids, recs [][]byte, err error)

	// spend counts one call of scope and key in its window (a new window when
	// per has passed since the last one began) in one step, so that replicas
	// count together, and returns the window's start and its calls so far.
	spend(scope, key string, now time.Time, per time.Duration) (start time.Time, calls int, err error)
}
