package consent

import "errors"

var (
	// ErrNotFound means no consent has the id, or the caller may not learn that one does
	// (another app's consent).
	ErrNotFound = errors.New("consent not found")
	// ErrForbidden means the caller's role may not do this to any consent.
	ErrForbidden = errors.New("not allowed")
	// ErrInvalid means a request or a seeded consent breaks a rule. The wrapped detail
	// names the rule; it never carries the subject.
	ErrInvalid = errors.New("invalid consent")
	// ErrHook means the change hook (the audit log) failed, so the change was not stored.
	ErrHook = errors.New("consent change could not be recorded")
	// ErrConflict means the id already holds a consent with other content.
	ErrConflict = errors.New("consent id already holds a different consent")
	// ErrLocked means another process has the registry file open.
	ErrLocked = errors.New("consent registry is in use by another process")
	// ErrWrongKey means the subject key is not the one the registry was created with:
	// every lookup by subject would silently find nothing.
	ErrWrongKey = errors.New("subject key differs from the one the consent registry was created with")
	// ErrSchema means the PostgreSQL database holds a consent schema newer than this
	// consentgate knows: a newer gateway has migrated it.
	ErrSchema = errors.New("consent database schema is newer than this consentgate")
	// ErrNotActive means the consent is revoked or expired.
	ErrNotActive = errors.New("consent is not active")
	// ErrUnknownState means no pending OAuth2 authorization has this state: it was
	// never issued, or has been used already.
	ErrUnknownState = errors.New("unknown or already used authorization state")
	// ErrStateExpired means the pending OAuth2 authorization took too long.
	ErrStateExpired = errors.New("authorization state expired")
	// ErrNoTokens means the end user has not authorised the vendor for this consent
	// (or the tokens were removed: revoked, refused by the vendor).
	ErrNoTokens = errors.New("no vendor tokens for this consent")
)
