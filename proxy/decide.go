package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"

	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/policy"
)

// Consents is what the gateway needs of the consent registry: one lookup per
// call, never cached, so a revocation stops the very next call.
type Consents interface {
	Get(ctx context.Context, id string) (*consent.Consent, error)
	// Resource and BindResource keep vendor ids with their end user and app.
	Resource(ctx context.Context, vendor, kind, id string) (consent.Resource, error)
	BindResource(ctx context.Context, res consent.Resource) (consent.Resource, error)
}

var (
	consentIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$`)
	purposeRE   = regexp.MustCompile(`^[a-z][a-z0-9-]{0,63}$`)
)

// decideInput gathers what the policy is asked: the caller, the operation and
// its field categories, the consent the app names, and the fields the
// operation may send (request.fields: every declared one, since the body is
// read only once the call is allowed). An error means the call cannot be
// decided (400 for the app's mistakes, 503 for ours); it never means allow.
func (g *Gateway) decideInput(ctx context.Context, r *http.Request, id Identity, v *vendor, op *operation) (*policy.Input, int, error) {
	in := &policy.Input{
		App:            policy.App{ID: id.Name, Role: id.Role, URI: id.URI},
		Vendor:         v.cfg.ID,
		Operation:      op.cfg.ID,
		Method:         op.cfg.Method,
		Path:           op.cfg.Path,
		Body:           op.cfg.Body,
		Erasure:        op.cfg.Erases != "",
		Class:          op.cfg.Class,
		Purpose:        r.Header.Get("X-Purpose"),
		ConsentID:      r.Header.Get("X-Consent-Id"),
		RequestFields:  op.sent,
		ResponseFields: op.cfg.Fields.Response,
		Present:        op.declared,
		Now:            g.now(),
	}
	in.QuotaRemaining, in.QuotaKnown = v.quota.snapshot()
	if in.Purpose != "" && !purposeRE.MatchString(in.Purpose) {
		return nil, http.StatusBadRequest, errors.New("X-Purpose must be a purpose name such as kyc-onboarding")
	}
	if in.ConsentID != "" {
		if !consentIDRE.MatchString(in.ConsentID) {
			return nil, http.StatusBadRequest, errors.New("X-Consent-Id is not a consent id")
		}
		c, err := g.consents.Get(ctx, in.ConsentID)
		switch {
		case errors.Is(err, consent.ErrNotFound):
			// The policy says "unknown consent".
		case err != nil:
			return nil, http.StatusServiceUnavailable, fmt.Errorf("consent registry: %w", err)
		case c.App != id.Name:
			// Another app's consent is decided as an unknown one, so that its
			// answer says nothing of whether, or in what state, it exists.
			return in, 0, errForeignConsent
		default:
			in.Consent = &policy.Consent{ID: c.ID, App: c.App, Subject: c.Subject, Vendors: c.Vendors, Purposes: c.Purposes,
				Categories: c.Categories, Status: c.Status, GrantedAt: c.GrantedAt, ExpiresAt: c.ExpiresAt}
		}
	}
	return in, 0, nil
}

// errForeignConsent comes with a usable input: the call names another app's
// consent, which the input leaves out. The audit record says so; the app's
// answer does not.
var errForeignConsent = errors.New("consent of another app")

// needsHashKey reports whether applying d needs the field HMAC key.
func needsHashKey(d *policy.Decision) bool {
	for _, a := range d.Response.Fields {
		if a == policy.ActionHash {
			return true
		}
	}
	return false
}

func reasonList(d *policy.Decision) string {
	r := append([]string(nil), d.Reasons...)
	sort.Strings(r)
	return strings.Join(r, ", ")
}
