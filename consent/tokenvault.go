package consent

import (
	"context"
	"fmt"
	"time"

	"github.com/consentgate/consentgate/tokens"
)

// The Registry is the token vault's store (tokens.Store): data keys and token
// records live beside the consents they are bound to, and a revocation
// destroys the consent's data key in the transaction that revokes it.
var _ tokens.Store = (*Registry)(nil)

// DataKey returns the consent's wrapped data key, storing create's if it has
// none. The key is made outside the transaction (wrapping may ask Vault), and
// the first one stored wins. Only an active consent's key is handed out: a
// consent found expired has its key destroyed there and then, so its tokens
// die with it even though nothing revoked it.
func (r *Registry) DataKey(ctx context.Context, consentID string, create func() ([]byte, error)) ([]byte, error) {
	var wrapped []byte
	var shredded bool
	var c Consent
	err := r.st.view(ctx, func(tx storeTx) (err error) {
		if err := tx.loadConsent(consentID, &c); err != nil {
			return err
		}
		wrapped, shredded, err = tx.dataKey(consentID)
		return err
	})
	switch c.settle(r.now()); {
	case err != nil:
		return nil, err
	case shredded:
		return nil, tokens.ErrShredded
	case c.Status != Active:
		if wrapped != nil {
			r.shredLapsed(ctx, c.ID)
		}
		return nil, fmt.Errorf("%w: consent %s is %s", tokens.ErrShredded, consentID, c.Status)
	case wrapped != nil:
		return wrapped, nil
	}
	made, err := create()
	if err != nil {
		return nil, err
	}
	err = r.st.update(ctx, func(tx storeTx) error {
		var c Consent
		if err := tx.loadConsent(consentID, &c); err != nil {
			return err
		}
		if c.settle(r.now()); c.Status != Active {
			return fmt.Errorf("%w: consent %s is %s", tokens.ErrShredded, consentID, c.Status)
		}
		if err := tx.putDataKey(consentID, made); err != nil {
			return err
		}
		wrapped, shredded, err = tx.dataKey(consentID)
		if err == nil && shredded {
			err = tokens.ErrShredded
		}
		return err
	})
	return wrapped, err
}

// PutToken stores a token record unless its id is taken.
func (r *Registry) PutToken(ctx context.Context, consentID string, id, rec []byte) ([]byte, error) {
	var got []byte
	err := r.st.batch(ctx, func(tx storeTx) (err error) {
		got, err = tx.putValueToken(id, consentID, rec)
		return err
	})
	return got, err
}

// Token returns the record under id, or tokens.ErrUnknown.
func (r *Registry) Token(ctx context.Context, id []byte) ([]byte, error) {
	var got []byte
	err := r.st.view(ctx, func(tx storeTx) (err error) {
		got, err = tx.valueToken(id)
		return err
	})
	if err == nil && got == nil {
		err = tokens.ErrUnknown
	}
	return got, err
}

// shredLapsed destroys the data key of a consent found expired, with its
// record (the hook): no record, no destruction. A failure is logged and
// changes nothing for the caller: the key is not handed out either way, and
// the next look tries again.
func (r *Registry) shredLapsed(ctx context.Context, id string) {
	destroyed := false
	err := r.st.update(ctx, func(tx storeTx) error {
		var c Consent
		if err := tx.loadConsent(id, &c); err != nil {
			return err
		}
		if c.settle(r.now()); c.Status == Active {
			return nil // found expired by a reading this transaction does not bear out
		}
		had, err := tx.shredDataKey(id)
		if err != nil || !had {
			return err
		}
		destroyed = true
		return r.runHook(ctx, Change{Kind: ChangeKeyDestroyed, Consent: c.clone(), Actor: roleSystem, Role: roleSystem, DataKeyDestroyed: true})
	})
	switch {
	case err != nil:
		r.log.Error("could not destroy the data key of an expired consent", "id", id, "error", err.Error())
	case destroyed:
		r.log.Info("data key of an expired consent destroyed: its tokens are void", "id", id)
	}
}

// keySweepEvery is how often shredLapsedKeys looks: the look reads every
// consent that holds a key, and an expired consent's key is never handed out
// meanwhile, so once a minute is soon enough.
const keySweepEvery = time.Minute

// shredLapsedKeys destroys the data keys of consents that expired since the
// last look, so that they do not wait for someone to ask for them. It looks at
// most once per keySweepEvery.
func (r *Registry) shredLapsedKeys(ctx context.Context) error {
	now := r.now()
	last := r.keysSwept.Load()
	if last != 0 && now.Sub(time.Unix(0, last)) < keySweepEvery || !r.keysSwept.CompareAndSwap(last, now.UnixNano()) {
		return nil // not due, or another caller sweeps now
	}
	var ids []string
	if err := r.st.view(ctx, func(tx storeTx) (err error) {
		ids, err = tx.lapsedDataKeys(r.now())
		return err
	}); err != nil {
		return fmt.Errorf("finding the data keys of expired consents: %w", err)
	}
	for _, id := range ids {
		r.shredLapsed(ctx, id)
	}
	return nil
}

// maxListed bounds a listing of one consent's tokens.
const maxListed = 10000

// TokensOf lists a consent's tokens (ids and bindings, never tokens or values),
// at most 10,000.
func (r *Registry) TokensOf(ctx context.Context, consentID string) ([]tokens.Entry, error) {
	var ids, recs [][]byte
	err := r.st.view(ctx, func(tx storeTx) error {
		var c Consent
		if err := tx.loadConsent(consentID, &c); err != nil {
			return err
		}
		var err error
		ids, recs, err = tx.valueTokensOf(consentID, maxListed)
		return err
	})
	if err != nil {
		return nil, err
	}
	return tokens.Entries(ids, recs)
}

// SwapDataKey replaces a consent's wrapped data key (rewrapped under a new
// wrapping key) only if old is what is stored.
func (r *Registry) SwapDataKey(ctx context.Context, consentID string, old, updated []byte) (bool, error) {
	var ok bool
	err := r.st.update(ctx, func(tx storeTx) (err error) {
		ok, err = tx.swapDataKey(consentID, old, updated)
		return err
	})
	return ok, err
}

// DataKeyOwners lists the consents that hold a data key.
func (r *Registry) DataKeyOwners(ctx context.Context) ([]string, error) {
	var out []string
	err := r.st.view(ctx, func(tx storeTx) (err error) {
		out, err = tx.dataKeyOwners()
		return err
	})
	return out, err
}
