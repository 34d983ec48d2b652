package consent

import (
	"context"
	"time"
)

// Spend counts one call of key (an operation) under the consent against a
// budget of calls per window, the window starting at its first call. It
// reports false, and when the window ends, once the budget is spent. The
// consent is locked while the count changes, so replicas count together.
func (r *Registry) Spend(ctx context.Context, consentID, key string, calls int, per time.Duration) (bool, time.Time, error) {
	now := r.now().UTC()
	ok, until := false, time.Time{}
	err := r.st.update(ctx, func(tx storeTx) error {
		var c Consent
		if err := tx.loadConsent(consentID, &c); err != nil {
			return err
		}
		start, used, err := tx.budget(consentID, key)
		if err != nil {
			return err
		}
		if start.IsZero() || !now.Before(start.Add(per)) {
			start, used = now, 0
		}
		until = start.Add(per)
		if used >= calls {
			return nil
		}
		ok = true
		return tx.putBudget(consentID, key, start, used+1)
	})
	return ok, until, err
}
