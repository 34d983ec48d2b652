package consent

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Resource is an id a vendor handed out (a banqware user or consent, a
// Biometric.Vision session, a FinID verification), bound to the consent, end user
// and app it was created for. A call that names the id is let through only for
// that end user and app, and revoking the consent erases it at the vendor.
type Resource struct {
	Vendor    string    `json:"vendor"`
	Kind      string    `json:"kind"`
	ID        string    `json:"id"`
	ConsentID string    `json:"consent_id"`
	Subject   string    `json:"subject"` // HMAC, as in the consent
	App       string    `json:"app"`
	CreatedAt time.Time `json:"created_at"`
	// Imported marks an id created before consentgate was in place, bound by an
	// admin (consentgate resources import).
	Imported bool `json:"imported,omitempty"`
	// Refs are the ids (by kind) the call that created this one named, such as
	// the banqware user a bank consent was created for: erasing it needs them.
	Refs map[string]string `json:"refs,omitempty"`
}

// ErrResourceTaken means the id is already bound to another consent's subject
// or app: a vendor handing out one id twice, or an import that would move it.
var ErrResourceTaken = errors.New("vendor resource is bound to another end user or app")

// maxResourceID bounds an id: vendors' ids are UUIDs and short tokens.
const maxResourceID = 256

// BindResource binds res to its consent. Binding an id again to the same end user
// and app changes nothing; to another, it is ErrResourceTaken. The consent must
// exist (a revoked one still binds: the vendor has created the resource) and,
// when res.App is given, be that app's.
func (r *Registry) BindResource(ctx context.Context, res Resource) (Resource, error) {
	if res.Vendor == "" || res.Kind == "" || res.ID == "" || len(res.ID) > maxResourceID || res.ConsentID == "" {
		return Resource{}, fmt.Errorf("%w: a resource needs a vendor, kind, id (at most %d bytes) and consent", ErrInvalid, maxResourceID)
	}
	if res.CreatedAt.IsZero() {
		res.CreatedAt = r.now().UTC()
	}
	var stored Resource
	err := r.st.update(ctx, func(tx storeTx) error {
		var c Consent
		if err := tx.loadConsent(res.ConsentID, &c); err != nil {
			return err
		}
		if res.App != "" && res.App != c.App {
			// The caller named another app's consent: as if it did not exist.
			return fmt.Errorf("%w: %s", ErrNotFound, res.ConsentID)
		}
		res.Subject, res.App = c.Subject, c.App
		got, err := tx.bindResource(&res)
		if err != nil {
			return err
		}
		if got.Subject != res.Subject || got.App != res.App {
			return fmt.Errorf("%w: %s %s of vendor %s", ErrResourceTaken, res.Kind, res.ID, res.Vendor)
		}
		stored = *got
		return nil
	})
	return stored, err
}

// Resource returns the binding of a vendor's id; ErrNotFound if it has none.
func (r *Registry) Resource(ctx context.Context, vendor, kind, id string) (Resource, error) {
	var res *Resource
	err := r.st.view(ctx, func(tx storeTx) error {
		var err error
		res, err = tx.resource(vendor, kind, id)
		return err
	})
	if err != nil {
		return Resource{}, err
	}
	return *res, nil
}

// Resources returns the vendor resources bound to a consent, oldest first.
func (r *Registry) Resources(ctx context.Context, consentID string) ([]Resource, error) {
	var out []Resource
	err := r.st.view(ctx, func(tx storeTx) error {
		var err error
		out, err = tx.resourcesOf(consentID)
		return err
	})
	return out, err
}
