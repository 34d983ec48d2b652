package consent

import (
	"cmp"
	"context"
	"fmt"
	"slices"
)

// Get returns the consent with id as of now, whichever app owns it: callers acting for an
// app must compare App themselves. It is on the gateway's hot path, so it is one read
// (a bbolt read transaction, or one PostgreSQL query) and one JSON decode, and nothing
// is cached: a revocation committed before the call, by any gateway sharing the store,
// is always seen. An unknown id is ErrNotFound.
func (r *Registry) Get(ctx context.Context, id string) (*Consent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var c Consent
	if err := r.st.view(ctx, func(tx storeTx) error { return tx.loadConsent(id, &c) }); err != nil {
		return nil, err
	}
	c.settle(r.now())
	return &c, nil
}

// BySubject returns the consents of one end user, oldest grant first. subject is the raw
// app user id, hashed here; app "" means every app's (for admins and auditors). None is
// an empty list, not an error.
func (r *Registry) BySubject(ctx context.Context, app, subject string) ([]Consent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if subject == "" {
		return nil, fmt.Errorf("%w: subject is required", ErrInvalid)
	}
	return r.BySubjectHMAC(ctx, app, r.SubjectHMAC(subject))
}

// BySubjectHMAC is BySubject for a subject already hashed (SubjectHMAC): the
// console holds a person's HMAC between pages, never their id.
func (r *Registry) BySubjectHMAC(ctx context.Context, app, h string) ([]Consent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var all []Consent
	err := r.st.view(ctx, func(tx storeTx) error {
		var err error
		all, err = tx.bySubject(h)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := []Consent{}
	for _, c := range all {
		if app == "" || c.App == app {
			out = append(out, c)
		}
	}
	now := r.now()
	for i := range out {
		out[i].settle(now)
	}
	slices.SortFunc(out, func(a, b Consent) int {
		return cmp.Or(a.GrantedAt.Compare(b.GrantedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}
