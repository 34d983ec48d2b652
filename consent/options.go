package consent

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Options configure a Registry. Zero values are documented per field.
type Options struct {
	// SubjectKey is the HMAC key for subjects, at least 32 bytes. It must be the same key
	// on every Open of a file (Open refuses another one: lookups by subject would find
	// nothing), and the audit log should use it too so auditors can correlate records.
	SubjectKey []byte
	// Vendors, Purposes and Categories are the allowed values; a request naming any other
	// is refused. Each list must be non-empty.
	Vendors, Purposes, Categories []string
	// MaxTTL is the longest a consent may last from its grant. Zero: 2 years.
	MaxTTL time.Duration
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// Hook runs inside the write, before it commits: if it returns an error the change is
	// not stored and the API answers 503. (Fail closed: a consent change the audit log
	// could not record must not happen.) It must not call the Registry. Nil: no hook.
	Hook func(context.Context, Change) error
	// Logger receives change and error events; never a raw subject. Nil: discard.
	Logger *slog.Logger
	// Erasure is how a withdrawn consent's resources are erased at vendors: a
	// revocation (or an expiry) puts them in the outbox. Nil: nothing is erased.
	Erasure *ErasurePlan
}

const (
	minSubjectKey = 32
	defaultMaxTTL = 2 * 365 * 24 * time.Hour
)

// newRegistry validates the options and builds a Registry without a store.
func newRegistry(o Options) (*Registry, error) {
	if len(o.SubjectKey) < minSubjectKey {
		return nil, fmt.Errorf("consent registry: subject key has %d bytes, need at least %d", len(o.SubjectKey), minSubjectKey)
	}
	if o.MaxTTL < 0 {
		return nil, fmt.Errorf("consent registry: max TTL %s is negative", o.MaxTTL)
	}
	r := &Registry{
		key:    append([]byte(nil), o.SubjectKey...),
		maxTTL: o.MaxTTL,
		now:    o.Now,
		hook:   o.Hook,
		log:    o.Logger,
	}
	if r.maxTTL == 0 {
		r.maxTTL = defaultMaxTTL
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if err := r.SetVendors(o.Vendors, o.Erasure); err != nil {
		return nil, err
	}
	if err := r.SetPurposes(o.Purposes); err != nil {
		return nil, err
	}
	if r.categories, err = allowedSet("categories", o.Categories); err != nil {
		return nil, err
	}
	return r, nil
}

// allowedSet refuses an empty list: a registry that allows nothing would answer every
// create with "unknown vendor", which hides a wiring mistake behind a client error.
func allowedSet(field string, values []string) (map[string]bool, error) {
	if len(values) == 0 {
		return nil, fmt.Errorf("consent registry: no allowed %s", field)
	}
	set := make(map[string]bool, len(values))
	for _, v := range values {
		if v == "" {
			return nil, fmt.Errorf("consent registry: empty value in allowed %s", field)
		}
		set[v] = true
	}
	return set, nil
}
