package consent

import (
	"context"
	"time"
)

// Spend counts one call of key (an operation) under the consent against a
// budget of calls per window, the window starting at its first call, and
// reports false, and when the window ends, once the budget is spent. The
// budget is the end user's with the consent's app, across all their consents:
// an app that makes a new consent gets no fresh budget. Replicas count
// together.
func (r *Registry) Spend(ctx context.Context, consentID, key string, calls int, per time.Duration) (bool, time.Time, error) {
	now := r.now().UTC()
	var start time.Time
	var used int
	err := r.st.update(ctx, func(tx storeTx) error {
		var c Consent
		if err := tx.loadConsent(consentID, &c); err != nil {
			return err
		}
		var err error
		start, used, err = tx.spend(c.Subject+"/"+c.App, key, now, per)
		return err
	})
	if err != nil {
		return false, time.Time{}, err
	}
	return used <= calls, start.Add(per), nil
}
