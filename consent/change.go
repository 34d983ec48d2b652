package consent

import (
	"context"
	"fmt"
)

// Kinds of Change.
const (
	ChangeCreated    = "created"
	ChangeRevoked    = "revoked"
	ChangeAuthorized = "authorized"
	// ChangeKeyDestroyed: an expired consent's token data key was destroyed
	// (a revocation says so in its own change).
	ChangeKeyDestroyed = "data-key-destroyed"
)

// Change is passed to the hook on every create and revoke; the audit log will record it.
type Change struct {
	Kind    string  // ChangeCreated, ChangeRevoked, ChangeAuthorized or ChangeKeyDestroyed
	Consent Consent // as stored after the change; Subject is the HMAC
	Actor   string  // app or admin name; "seed" for Put
	Role    string  // "app" or "admin"; "system" for Put
	// Vendor and Scopes are what an end user authorised (ChangeAuthorized).
	Vendor string
	Scopes []string
	// TokensDeleted names the vendors whose tokens a revocation deleted.
	TokensDeleted []string
	// DataKeyDestroyed: the revocation destroyed the consent's token data key,
	// so every value token of it is void.
	DataKeyDestroyed bool
	// Erasures is how many vendor resources a revocation put in the erasure outbox.
	Erasures int
}

// Roles, as the caller's certificate proves them (the gateway's identity), and the
// actor and role Put reports: no app or admin asked for a seeded consent.
const (
	roleApp     = "app"
	roleAuditor = "auditor"
	roleAdmin   = "admin"
	roleSystem  = "system"
	seedActor   = "seed"
)

// runHook runs inside the write transaction, before commit. It never runs for a write
// that changes nothing (a repeated revoke or seed), so the audit log records changes,
// not calls. The hook's context drops the caller's cancellation: once the change is
// decided, a client hanging up must not cut the audit write off half-way.
func (r *Registry) runHook(ctx context.Context, ch Change) error {
	if r.hook == nil {
		return nil
	}
	if err := r.hook(context.WithoutCancel(ctx), ch); err != nil {
		r.log.Error("consent change not recorded; not stored", "kind", ch.Kind, "id", ch.Consent.ID,
			"app", ch.Consent.App, "actor", ch.Actor, "error", err)
		return fmt.Errorf("%w: %s %s: %w", ErrHook, ch.Kind, ch.Consent.ID, err)
	}
	return nil
}
