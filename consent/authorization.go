package consent

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Authorization is the evidence that the end user authorised a vendor to release
// their data under this consent: consentgate records it when it completes the
// vendor's OAuth2 login for the consent.
type Authorization struct {
	Vendor       string    `json:"vendor"`
	AuthorizedAt time.Time `json:"authorized_at"`
	// Scopes are the scopes the vendor granted (or, if it did not say, the ones
	// requested).
	Scopes []string `json:"scopes,omitempty"`
}

// Pending is an OAuth2 authorization an app has started and the end user has
// not completed. It is stored under the hash of the state sent to the vendor.
type Pending struct {
	ConsentID string `json:"consent_id"`
	App       string `json:"app"`
	Vendor    string `json:"vendor"`
	ReturnTo  string `json:"return_to"`
	// Verifier is the PKCE verifier, sealed by the caller; opaque here.
	Verifier  []byte    `json:"verifier,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
}

// BeginAuthorization stores p under key after checking the consent as the app
// that starts it sees it: another app's consent reads as ErrNotFound, exactly as
// if it did not exist; a revoked or expired one is ErrNotActive; one that does
// not name the vendor is ErrInvalid. Pending authorizations past their expiry
// are removed on the way.
func (r *Registry) BeginAuthorization(ctx context.Context, key []byte, p Pending) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(key) == 0 || p.App == "" || p.Vendor == "" || p.ExpiresAt.IsZero() {
		return fmt.Errorf("%w: a pending authorization needs a key, an app, a vendor and an expiry", ErrInvalid)
	}
	now := r.now()
	return r.st.update(ctx, func(tx storeTx) error {
		if _, err := r.authorizable(tx, p.App, p.ConsentID, p.Vendor, now); err != nil {
			return err
		}
		if err := tx.sweepPending(now); err != nil {
			return err
		}
		inserted, err := tx.insertPending(key, &p)
		if err != nil {
			return err
		}
		if !inserted {
			return fmt.Errorf("%w: pending authorization key is already in use", ErrConflict)
		}
		return nil
	})
}

// TakeAuthorization removes the pending authorization under key and returns it:
// a state is good for one try, whatever comes of it, and of gateways taking the
// same state at once exactly one gets it. An unknown key is ErrUnknownState; one
// past its expiry is ErrStateExpired, and is removed too (it is returned with
// that error, so the refusal can name whose authorization expired).
func (r *Registry) TakeAuthorization(ctx context.Context, key []byte) (*Pending, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var p *Pending
	err := r.st.update(ctx, func(tx storeTx) error {
		var err error
		p, err = tx.takePending(key)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !p.ExpiresAt.After(r.now()) {
		return p, ErrStateExpired
	}
	return p, nil
}

// CompleteAuthorization stores the vendor's tokens (sealed by the caller) for the
// consent and records the authorization on it, in one transaction with the hook
// (ChangeAuthorized): evidence the audit log could not record is not kept, and
// neither are the tokens. The consent must still be app's, active and name the
// vendor: a consent revoked while the end user was at the vendor gets no tokens.
func (r *Registry) CompleteAuthorization(ctx context.Context, app, consentID string, a Authorization, tokens []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(tokens) == 0 {
		return fmt.Errorf("%w: no tokens to store", ErrInvalid)
	}
	a.AuthorizedAt = a.AuthorizedAt.UTC()
	a.Scopes = slices.Clone(a.Scopes)
	now := r.now()
	var stored *Consent
	err := r.st.update(ctx, func(tx storeTx) error {
		c, err := r.authorizable(tx, app, consentID, a.Vendor, now)
		if err != nil {
			return err
		}
		c.Authorizations = slices.DeleteFunc(c.Authorizations, func(x Authorization) bool { return x.Vendor == a.Vendor })
		c.Authorizations = append(c.Authorizations, a)
		if err := tx.updateConsent(c); err != nil {
			return err
		}
		if err := tx.putTokens(consentID, a.Vendor, tokens); err != nil {
			return err
		}
		stored = c
		return r.runHook(ctx, Change{Kind: ChangeAuthorized, Consent: c.clone(), Actor: app, Role: roleApp,
			Vendor: a.Vendor, Scopes: slices.Clone(a.Scopes)})
	})
	if err != nil {
		return err
	}
	r.log.Info("consent authorized at vendor", "id", stored.ID, "app", stored.App, "vendor", a.Vendor, "scopes", a.Scopes)
	return nil
}

// authorizable loads the consent an app wants authorised at a vendor, as of now.
func (r *Registry) authorizable(tx storeTx, app, id, vendor string, now time.Time) (*Consent, error) {
	var c Consent
	if err := tx.loadConsent(id, &c); err != nil {
		return nil, err
	}
	if c.App != app {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	c.settle(now)
	if c.Status != Active {
		return nil, fmt.Errorf("%w: consent %s is %s", ErrNotActive, id, c.Status)
	}
	if !slices.Contains(c.Vendors, vendor) {
		return nil, fmt.Errorf("%w: consent %s does not name vendor %s", ErrInvalid, id, vendor)
	}
	return &c, nil
}

// Tokens returns the sealed tokens of a consent at a vendor, or ErrNoTokens.
func (r *Registry) Tokens(ctx context.Context, consentID, vendor string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []byte
	err := r.st.view(ctx, func(tx storeTx) error {
		var err error
		out, err = tx.tokens(consentID, vendor)
		return err
	})
	return out, err
}

// SwapTokens replaces the sealed tokens old with updated (nil: removes them),
// only if old is what is stored. A refresh that raced with a revocation or with
// another refresh (on this gateway or another) changes nothing and gets ErrNoTokens.
func (r *Registry) SwapTokens(ctx context.Context, consentID, vendor string, old, updated []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return r.st.update(ctx, func(tx storeTx) error {
		swapped, err := tx.swapTokens(consentID, vendor, old, updated)
		if err != nil {
			return err
		}
		if !swapped {
			return fmt.Errorf("%w: consent %s at vendor %s (changed meanwhile)", ErrNoTokens, consentID, vendor)
		}
		return nil
	})
}
