package consent

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Request is what POST /v1/consents carries (JSON). Subject is the raw app user id; it is
// hashed before anything is stored or logged. Exactly one of ExpiresAt or TTL ("720h").
type Request struct {
	Subject    string     `json:"subject"`
	Vendors    []string   `json:"vendors"`
	Purposes   []string   `json:"purposes"`
	Categories []string   `json:"categories"`
	Evidence   Evidence   `json:"evidence"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	TTL        string     `json:"ttl,omitempty"`
}

// maxSubject bounds the raw user id: it is opaque to us, but not a document.
const maxSubject = 1024

// validateRequest turns a request into the consent app would own, granted now. Error
// details name the rule broken and may quote a vendor, purpose or category the caller
// sent, but never the subject.
func (r *Registry) validateRequest(app string, req Request, now time.Time) (*Consent, error) {
	if app == "" {
		return nil, fmt.Errorf("%w: app is required", ErrInvalid)
	}
	if strings.TrimSpace(req.Subject) == "" {
		return nil, fmt.Errorf("%w: subject is required", ErrInvalid)
	}
	if len(req.Subject) > maxSubject {
		return nil, fmt.Errorf("%w: subject is longer than %d bytes", ErrInvalid, maxSubject)
	}
	c := &Consent{
		App:       app,
		Subject:   r.SubjectHMAC(req.Subject),
		Evidence:  req.Evidence,
		GrantedAt: now,
		Status:    Active,
	}
	if err := r.validateScope(c, req.Vendors, req.Purposes, req.Categories); err != nil {
		return nil, err
	}
	var err error
	if c.ExpiresAt, err = r.expiry(req, now); err != nil {
		return nil, err
	}
	return c, nil
}

// validateScope fills what the consent covers and how it was captured, the part a
// request and a seeded consent share. Lists are sorted and deduplicated so that equal
// consents are stored alike.
func (r *Registry) validateScope(c *Consent, vendors, purposes, categories []string) error {
	var err error
	if c.Vendors, err = allowed("vendors", vendors, *r.vendors.Load()); err != nil {
		return err
	}
	if c.Purposes, err = allowed("purposes", purposes, *r.purposes.Load()); err != nil {
		return err
	}
	if c.Categories, err = allowed("categories", categories, r.categories); err != nil {
		return err
	}
	if strings.TrimSpace(c.Evidence.Text) == "" {
		return fmt.Errorf("%w: evidence.text is required", ErrInvalid)
	}
	// PostgreSQL's jsonb refuses NUL: both backends refuse it here alike.
	if strings.ContainsRune(c.Evidence.Text, 0) || strings.ContainsRune(c.Evidence.Reference, 0) {
		return fmt.Errorf("%w: evidence must not contain NUL characters", ErrInvalid)
	}
	return nil
}

func allowed(field string, values []string, set map[string]bool) ([]string, error) {
	if len(values) == 0 {
		return nil, fmt.Errorf("%w: %s: at least one is required", ErrInvalid, field)
	}
	for _, v := range values {
		if !set[v] {
			return nil, fmt.Errorf("%w: %s: %q is not one this gateway allows", ErrInvalid, field, v)
		}
	}
	out := slices.Clone(values)
	slices.Sort(out)
	return slices.Compact(out), nil
}

// expiry is the request's end of consent. A consent that has already ended or would
// outlast MaxTTL is refused rather than clamped: the app recorded the user agreeing to
// this exact term, and silently storing another would misstate the evidence.
func (r *Registry) expiry(req Request, now time.Time) (time.Time, error) {
	var end time.Time
	switch {
	case req.ExpiresAt != nil && req.TTL != "":
		return end, fmt.Errorf("%w: give expires_at or ttl, not both", ErrInvalid)
	case req.ExpiresAt == nil && req.TTL == "":
		return end, fmt.Errorf("%w: expires_at or ttl is required", ErrInvalid)
	case req.TTL != "":
		d, err := time.ParseDuration(req.TTL)
		if err != nil {
			return end, fmt.Errorf("%w: ttl %q is not a duration such as \"720h\"", ErrInvalid, req.TTL)
		}
		if d <= 0 {
			return end, fmt.Errorf("%w: ttl must be positive", ErrInvalid)
		}
		end = now.Add(d)
	default:
		end = req.ExpiresAt.UTC()
		if !end.After(now) {
			return end, fmt.Errorf("%w: expires_at is not in the future", ErrInvalid)
		}
	}
	if end.Sub(now) > r.maxTTL {
		return end, fmt.Errorf("%w: consent would last longer than the maximum of %s", ErrInvalid, r.maxTTL)
	}
	return end, nil
}
