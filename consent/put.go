package consent

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Put stores a consent with a fixed id, for seeding dev and test consents. c.Subject must
// already be SubjectHMAC of the user id; Status is Active (or "") or Revoked with
// RevokedAt; GrantedAt and ExpiresAt must be fixed values, not derived from the clock,
// or the next seeding differs. Put is idempotent: a consent equal to the stored one is
// nil, and so is a seed whose stored copy has since been revoked (a restart must never
// revive a withdrawn consent); any other difference is ErrConflict. A new consent runs
// the hook as Change{Kind: ChangeCreated, Actor: "seed", Role: "system"}.
func (r *Registry) Put(ctx context.Context, c Consent) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	seed, err := r.validateSeed(c)
	if err != nil {
		return err
	}
	stored := false
	err = r.st.update(ctx, func(tx storeTx) error {
		// Insert first, compare after: two gateways seeding at once both end here,
		// and only one of them inserts.
		inserted, err := tx.insertConsent(seed)
		if err != nil {
			return err
		}
		if !inserted {
			var old Consent
			if err := tx.loadConsent(seed.ID, &old); err != nil {
				return err
			}
			if sameSeed(&old, seed) {
				return nil
			}
			return fmt.Errorf("%w: %s", ErrConflict, seed.ID)
		}
		stored = true
		return r.runHook(ctx, Change{Kind: ChangeCreated, Consent: seed.clone(), Actor: seedActor, Role: roleSystem})
	})
	if err != nil {
		return err
	}
	if stored {
		r.log.Info("consent seeded", "id", seed.ID, "app", seed.App, "subject_hmac", seed.Subject, "status", seed.Status)
	}
	return nil
}

// validateSeed holds a seeded consent to the rules a created one meets, except that it
// may already have expired (to seed one that reads as expired).
func (r *Registry) validateSeed(c Consent) (*Consent, error) {
	if !ValidID(c.ID) {
		return nil, fmt.Errorf("%w: id %q must be 1 to 128 letters, digits, '-', '_', '.' or '~', starting with a letter or digit", ErrInvalid, c.ID)
	}
	if c.App == "" {
		return nil, fmt.Errorf("%w: %s: app is required", ErrInvalid, c.ID)
	}
	// A raw user id here would be stored in the clear: refuse anything that is not
	// shaped like an HMAC, and say so without quoting it.
	if !isHMAC(c.Subject) {
		return nil, fmt.Errorf("%w: %s: subject must be SubjectHMAC of the user id (64 lowercase hex digits)", ErrInvalid, c.ID)
	}
	s := &Consent{
		ID:        c.ID,
		App:       c.App,
		Subject:   c.Subject,
		Evidence:  c.Evidence,
		GrantedAt: c.GrantedAt.UTC(),
		ExpiresAt: c.ExpiresAt.UTC(),
		Status:    c.Status,
		RevokedBy: c.RevokedBy,
	}
	if err := r.validateScope(s, c.Vendors, c.Purposes, c.Categories); err != nil {
		return nil, fmt.Errorf("%s: %w", c.ID, err)
	}
	switch {
	case s.GrantedAt.IsZero():
		return nil, fmt.Errorf("%w: %s: granted_at is required", ErrInvalid, c.ID)
	case !s.ExpiresAt.After(s.GrantedAt):
		return nil, fmt.Errorf("%w: %s: expires_at must be after granted_at", ErrInvalid, c.ID)
	case s.ExpiresAt.Sub(s.GrantedAt) > r.maxTTL:
		return nil, fmt.Errorf("%w: %s: consent would last longer than the maximum of %s", ErrInvalid, c.ID, r.maxTTL)
	}
	switch s.Status {
	case "", Active:
		s.Status = Active
		if c.RevokedAt != nil || c.RevokedBy != "" {
			return nil, fmt.Errorf("%w: %s: an active consent has no revoked_at or revoked_by", ErrInvalid, c.ID)
		}
	case Revoked:
		if c.RevokedAt == nil {
			return nil, fmt.Errorf("%w: %s: a revoked consent needs revoked_at", ErrInvalid, c.ID)
		}
		t := c.RevokedAt.UTC()
		s.RevokedAt = &t
	default:
		return nil, fmt.Errorf("%w: %s: status must be %q or %q (%q is computed on read)", ErrInvalid, c.ID, Active, Revoked, Expired)
	}
	return s, nil
}

// sameSeed reports whether seeding s over the stored old changes nothing that matters.
func sameSeed(old, s *Consent) bool {
	same := old.App == s.App && old.Subject == s.Subject &&
		slices.Equal(old.Vendors, s.Vendors) && slices.Equal(old.Purposes, s.Purposes) &&
		slices.Equal(old.Categories, s.Categories) && old.Evidence == s.Evidence &&
		old.GrantedAt.Equal(s.GrantedAt) && old.ExpiresAt.Equal(s.ExpiresAt)
	if !same {
		return false
	}
	if old.Status == Revoked && s.Status == Active {
		return true
	}
	return old.Status == s.Status && old.RevokedBy == s.RevokedBy &&
		(old.RevokedAt == nil) == (s.RevokedAt == nil) &&
		(old.RevokedAt == nil || old.RevokedAt.Equal(*s.RevokedAt))
}

// ValidID reports whether id can be a consent id: usable as one URL path
// segment as it is.
func ValidID(id string) bool {
	if id == "" || len(id) > 128 || !isAlnum(id[0]) {
		return false
	}
	for i := 0; i < len(id); i++ {
		if b := id[i]; !isAlnum(b) && !strings.ContainsRune("-_.~", rune(b)) {
			return false
		}
	}
	return true
}

func isAlnum(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
}

func isHMAC(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; !('0' <= b && b <= '9' || 'a' <= b && b <= 'f') {
			return false
		}
	}
	return true
}
