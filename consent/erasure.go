package consent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Erasure is one vendor resource to erase because its consent was withdrawn
// (revoked, or expired), kept in a durable outbox in the store: it is written
// in the same transaction as the revocation, so no crash loses it, and it stays
// pending until the vendor has confirmed the erasure.
type Erasure struct {
	ConsentID string    `json:"consent_id"`
	Vendor    string    `json:"vendor"`
	Kind      string    `json:"kind,omitempty"`
	Status    string    `json:"status"`
	Reason    string    `json:"reason,omitempty"` // failed: the last error; unavailable: why
	Attempts  int       `json:"attempts"`
	NextAt    time.Time `json:"next_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Erasure statuses. Unavailable is never stored: it is what a vendor whose
// profile names no erasure call reads as.
const (
	ErasurePending     = "pending"
	ErasureDone        = "done"
	ErasureFailed      = "failed"
	ErasureUnavailable = "unavailable"
)

// storedErasure is an Erasure as the store keeps it, with the vendor's id,
// which the API does not show.
type storedErasure struct {
	Erasure
	ResourceID string `json:"resource_id"`
}

// ErasurePlan is how withdrawn consents are erased at vendors.
type ErasurePlan struct {
	// Erases maps a vendor to the resource kinds an operation of it erases.
	Erases map[string][]string
	// Unavailable maps a vendor to why its data cannot be erased through its API.
	Unavailable map[string]string
	// MaxAttempts is how often an erasure is tried before it is failed. Zero: 12.
	MaxAttempts int
}

// Backoff bounds: the n-th retry waits 2^n seconds, at most maxBackoff.
const (
	defaultMaxAttempts = 12
	maxBackoff         = 10 * time.Minute
)

// plan lists the erasures a withdrawn consent needs: one per bound resource of
// a kind an operation erases.
func (p *ErasurePlan) plan(c *Consent, bound []Resource, now time.Time) []storedErasure {
	var out []storedErasure
	for _, res := range bound {
		if slices.Contains(p.Erases[res.Vendor], res.Kind) {
			out = append(out, storedErasure{Erasure: Erasure{ConsentID: c.ID, Vendor: res.Vendor, Kind: res.Kind,
				Status: ErasurePending, NextAt: now, UpdatedAt: now}, ResourceID: res.ID})
		}
	}
	return out
}

// enqueueErasures writes a withdrawn consent's erasures into the outbox, inside
// the withdrawal's own transaction.
func (r *Registry) enqueueErasures(tx storeTx, c *Consent, now time.Time) (int, error) {
	plan := r.erasure.Load()
	if plan == nil {
		return 0, nil
	}
	bound, err := tx.resourcesOf(c.ID)
	if err != nil {
		return 0, err
	}
	jobs := plan.plan(c, bound, now)
	if len(jobs) == 0 {
		// A marker, so an expired consent with nothing to erase is planned once.
		jobs = []storedErasure{{Erasure: Erasure{ConsentID: c.ID, Status: ErasureDone, UpdatedAt: now}}}
	}
	for i := range jobs {
		if err := tx.putErasure(&jobs[i]); err != nil {
			return 0, err
		}
	}
	return len(jobs), nil
}

// Erasures is a consent's erasure status: its outbox entries, then the vendors
// of the consent whose data cannot be erased through their API.
func (r *Registry) Erasures(ctx context.Context, consentID string) ([]Erasure, error) {
	var stored []storedErasure
	var c Consent
	err := r.st.view(ctx, func(tx storeTx) error {
		if err := tx.loadConsent(consentID, &c); err != nil {
			return err
		}
		var err error
		stored, err = tx.erasuresOf(consentID)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := []Erasure{}
	for _, e := range stored {
		if e.Vendor != "" { // not the nothing-to-erase marker
			out = append(out, e.Erasure)
		}
	}
	if plan := r.erasure.Load(); plan != nil {
		for _, v := range c.Vendors {
			if why, ok := plan.Unavailable[v]; ok {
				out = append(out, Erasure{ConsentID: c.ID, Vendor: v, Status: ErasureUnavailable, Reason: why})
			}
		}
	}
	return out, nil
}

// ErasureJob is a claimed erasure and the binding it erases.
type ErasureJob struct {
	Erasure
	Resource Resource
}

// ClaimErasures takes up to n due erasures for the caller to run, and plans
// those of consents that expired since the last call (whose data keys it
// destroys too, with or without an erasure plan). A claimed erasure is not
// due again until lease has passed: a gateway that dies mid-call leaves it to be
// tried again, by itself after a restart or by another replica.
func (r *Registry) ClaimErasures(ctx context.Context, n int, lease time.Duration) ([]ErasureJob, error) {
	if err := r.shredLapsedKeys(ctx); err != nil {
		// The keys are not handed out either way; erasures must not wait on them.
		r.log.Error("expired consents' data keys not destroyed this time", "error", err.Error())
	}
	plan := r.erasure.Load()
	if plan == nil {
		return nil, nil
	}
	if err := r.planExpired(ctx); err != nil {
		return nil, err
	}
	now := r.now().UTC()
	var jobs []ErasureJob
	err := r.st.update(ctx, func(tx storeTx) error {
		jobs = nil
		claimed, err := tx.claimErasures(now, n, now.Add(lease))
		if err != nil {
			return err
		}
		for _, e := range claimed {
			res, err := tx.resource(e.Vendor, e.Kind, e.ResourceID)
			if err != nil {
				return err
			}
			jobs = append(jobs, ErasureJob{Erasure: e.Erasure, Resource: *res})
		}
		return nil
	})
	return jobs, err
}

// FinishErasure records how a claimed erasure went: done, or failed this time
// (err) and due again after a backoff, until the attempts run out.
func (r *Registry) FinishErasure(ctx context.Context, job ErasureJob, callErr error) error {
	now := r.now().UTC()
	plan := r.erasure.Load()
	return r.st.update(ctx, func(tx storeTx) error {
		e := storedErasure{Erasure: job.Erasure, ResourceID: job.Resource.ID}
		e.Attempts++
		e.UpdatedAt = now
		switch {
		case callErr == nil:
			e.Status, e.Reason, e.NextAt = ErasureDone, "", time.Time{}
		case e.Attempts >= plan.maxAttempts():
			e.Status, e.Reason, e.NextAt = ErasureFailed, callErr.Error(), time.Time{}
		default:
			e.Reason, e.NextAt = callErr.Error(), now.Add(backoff(e.Attempts))
		}
		return tx.saveErasure(&e)
	})
}

func (p *ErasurePlan) maxAttempts() int {
	if p != nil && p.MaxAttempts > 0 {
		return p.MaxAttempts
	}
	return defaultMaxAttempts
}

func backoff(attempts int) time.Duration {
	d := time.Second << min(attempts, 20)
	return min(d, maxBackoff)
}

// planExpired plans the erasures of consents that hold resources, have none
// planned, and have expired (or were revoked before anything was planned).
func (r *Registry) planExpired(ctx context.Context) error {
	var ids []string
	if err := r.st.view(ctx, func(tx storeTx) error {
		var err error
		ids, err = tx.unplannedConsents(r.now())
		return err
	}); err != nil {
		return err
	}
	for _, id := range ids {
		err := r.st.update(ctx, func(tx storeTx) error {
			var c Consent
			if err := tx.loadConsent(id, &c); err != nil {
				return err
			}
			now := r.now().UTC()
			if c.settle(now); c.Status == Active {
				return nil
			}
			if planned, err := tx.erasuresOf(id); err != nil || len(planned) > 0 {
				return err
			}
			n, err := r.enqueueErasures(tx, &c, now)
			if err == nil && n > 0 {
				r.log.Info("consent expired: erasures planned", "id", c.ID, "app", c.App, "erasures", n)
			}
			return err
		})
		if err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("planning the erasures of expired consent %s: %w", id, err)
		}
	}
	return nil
}
