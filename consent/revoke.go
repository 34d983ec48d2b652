package consent

import (
	"context"
	"fmt"
)

// Revoke withdraws the consent with id, as actor (an app or admin name) in role. An app
// may revoke only its own: another app's consent is ErrNotFound, exactly as if it did not
// exist. An admin may revoke any; any other role is ErrForbidden. Revoking a revoked
// consent returns it unchanged and runs no hook. An expired consent can still be
// revoked: the record then shows the withdrawal, not only the lapse.
func (r *Registry) Revoke(ctx context.Context, actor, role, id string) (*Consent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if role != roleApp && role != roleAdmin {
		return nil, fmt.Errorf("%w: role %q may not revoke consents", ErrForbidden, role)
	}
	if actor == "" {
		return nil, fmt.Errorf("%w: revoking needs the actor's name", ErrInvalid)
	}
	now := r.now().UTC()
	var c Consent
	changed := false
	err := r.st.update(ctx, func(tx storeTx) error {
		if err := tx.loadConsent(id, &c); err != nil {
			return err
		}
		if role == roleApp && c.App != actor {
			return fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		if c.Status == Revoked {
			return nil
		}
		c.Status, c.RevokedAt, c.RevokedBy = Revoked, &now, actor
		if err := tx.updateConsent(&c); err != nil {
			return err
		}
		deleted, err := tx.deleteTokens(c.ID)
		if err != nil {
			return err
		}
		// Its value tokens die with it: their values no longer open.
		shredded, err := tx.shredDataKey(c.ID)
		if err != nil {
			return err
		}
		// In the same transaction: a revocation that commits has its erasures.
		erasures, err := r.enqueueErasures(tx, &c, now)
		if err != nil {
			return err
		}
		changed = true
		return r.runHook(ctx, Change{Kind: ChangeRevoked, Consent: c.clone(), Actor: actor, Role: role, TokensDeleted: deleted, DataKeyDestroyed: shredded, Erasures: erasures})
	})
	if err != nil {
		return nil, err
	}
	if changed {
		r.log.Info("consent revoked", "id", c.ID, "app", c.App, "subject_hmac", c.Subject, "actor", actor, "role", role)
	}
	return &c, nil
}

// EraseSubject withdraws every consent of one end user (subject is the raw app
// user id), whichever app holds it, as the admin actor: each revocation
// destroys the consent's token data key and plans its erasures at vendors, as
// Revoke does. It returns the consents it revoked; those already withdrawn are
// left as they are. A failure part way leaves the ones before it revoked, and
// running it again finishes the rest.
func (r *Registry) EraseSubject(ctx context.Context, actor, subject string) ([]Consent, error) {
	all, err := r.BySubject(ctx, "", subject)
	if err != nil {
		return nil, err
	}
	var revoked []Consent
	for _, c := range all {
		if c.Status == Revoked {
			continue
		}
		got, err := r.Revoke(ctx, actor, roleAdmin, c.ID)
		if err != nil {
			return revoked, fmt.Errorf("erasing an end user: revoking consent %s: %w", c.ID, err)
		}
		revoked = append(revoked, *got)
	}
	return revoked, nil
}
