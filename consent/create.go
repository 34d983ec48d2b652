package consent

import (
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"
)

// Create stores a new active consent owned by app, granted now, and returns it. Invalid
// requests are ErrInvalid with the reason; a failing hook is ErrHook and nothing is stored.
func (r *Registry) Create(ctx context.Context, app string, req Request) (*Consent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := r.validateRequest(app, req, r.now().UTC())
	if err != nil {
		return nil, err
	}
	c.ID = uuid.NewString()
	err = r.st.update(ctx, func(tx storeTx) error {
		inserted, err := tx.insertConsent(c)
		if err != nil {
			return err
		}
		if !inserted {
			return fmt.Errorf("%w: %s", ErrConflict, c.ID)
		}
		return r.runHook(ctx, Change{Kind: ChangeCreated, Consent: c.clone(), Actor: app, Role: roleApp})
	})
	if err != nil {
		return nil, err
	}
	r.log.Info("consent created", "id", c.ID, "app", c.App, "subject_hmac", c.Subject,
		"vendors", c.Vendors, "purposes", c.Purposes, "categories", c.Categories, "expires_at", c.ExpiresAt)
	return c, nil
}

// clone copies the slices too, so a hook holding its Change cannot alter what the
// caller is handed.
func (c *Consent) clone() Consent {
	d := *c
	d.Vendors = slices.Clone(c.Vendors)
	d.Purposes = slices.Clone(c.Purposes)
	d.Categories = slices.Clone(c.Categories)
	d.Authorizations = slices.Clone(c.Authorizations)
	for i := range d.Authorizations {
		d.Authorizations[i].Scopes = slices.Clone(c.Authorizations[i].Scopes)
	}
	if c.RevokedAt != nil {
		t := *c.RevokedAt
		d.RevokedAt = &t
	}
	return d
}
