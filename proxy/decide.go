package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/policy"
)

// Consents is what the gateway needs of the consent registry: one lookup per
// call, never cached, so a revocation stops the very next call.
type Consents interface {
	Get(ctx context.Context, id string) (*consent.Consent, error)
}

var (
	consentIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$`)
	purposeRE   = regexp.MustCompile(`^[a-z][a-z0-9-]{0,63}$`)
)

// decideInput gathers what the policy is asked: the caller, the operation and
// its field categories, the consent the app names, and the fields its body holds.
// An error means the call cannot be decided (400 for the app's mistakes, 503 for
// ours); it never means allow.
// It also returns the decoded JSON body (nil if none), for the audit record.
func (g *Gateway) decideInput(ctx context.Context, r *http.Request, id Identity, v *vendor, op *operation, body []byte) (*policy.Input, any, int, error) {
	in := &policy.Input{
		App:            policy.App{ID: id.Name, Role: id.Role, URI: id.URI},
		Vendor:         v.cfg.ID,
		Operation:      op.cfg.ID,
		Method:         op.cfg.Method,
		Path:           op.cfg.Path,
		Body:           op.cfg.Body,
		Purpose:        r.Header.Get("X-Purpose"),
		ConsentID:      r.Header.Get("X-Consent-Id"),
		RequestFields:  op.cfg.Fields.Request,
		ResponseFields: op.cfg.Fields.Response,
		Now:            g.now(),
	}
	in.QuotaRemaining, in.QuotaKnown = v.quota.snapshot()
	if in.Purpose != "" && !purposeRE.MatchString(in.Purpose) {
		return nil, nil, http.StatusBadRequest, errors.New("X-Purpose must be a purpose name such as kyc-onboarding")
	}
	if in.ConsentID != "" {
		if !consentIDRE.MatchString(in.ConsentID) {
			return nil, nil, http.StatusBadRequest, errors.New("X-Consent-Id is not a consent id")
		}
		c, err := g.consents.Get(ctx, in.ConsentID)
		switch {
		case errors.Is(err, consent.ErrNotFound):
			// The policy says "unknown consent".
		case err != nil:
			return nil, nil, http.StatusServiceUnavailable, fmt.Errorf("consent registry: %w", err)
		default:
			in.Consent = &policy.Consent{ID: c.ID, App: c.App, Subject: c.Subject, Vendors: c.Vendors, Purposes: c.Purposes,
				Categories: c.Categories, Status: c.Status, GrantedAt: c.GrantedAt, ExpiresAt: c.ExpiresAt}
		}
	}
	var doc any
	if isJSON(r.Header.Get("Content-Type")) && len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil || dec.More() {
			return nil, nil, http.StatusBadRequest, errors.New("request body is not valid JSON")
		}
		present := map[string]bool{}
		presentFields(doc, "", present)
		in.Present = sortedSet(present)
	}
	return in, doc, 0, nil
}

func isJSON(contentType string) bool {
	return strings.Contains(strings.ToLower(contentType), "json")
}

// dropRequestFields removes the paths the decision withholds from the vendor.
func dropRequestFields(body []byte, paths []string, now time.Time) ([]byte, error) {
	if len(paths) == 0 || len(bytes.TrimSpace(body)) == 0 {
		return body, nil
	}
	fields := make(map[string]string, len(paths))
	for _, p := range paths {
		fields[p] = policy.ActionDrop
	}
	out, err := newMinimizer(fields, policy.ActionKeep, nil, now).minimize(body)
	if err != nil {
		return nil, err
	}
	return out.body, nil
}

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
