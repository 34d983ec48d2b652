package consent

import "time"

// Consent is one end user's permission, collected by an app, for some vendors to process
// some categories of their data for some purposes, until it expires or is revoked.
type Consent struct {
	ID         string     `json:"id"`
	App        string     `json:"app"`
	Subject    string     `json:"subject"` // HMAC-SHA256 hex of the app's user id
	Vendors    []string   `json:"vendors"`
	Purposes   []string   `json:"purposes"`
	Categories []string   `json:"categories"`
	Evidence   Evidence   `json:"evidence"`
	GrantedAt  time.Time  `json:"granted_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	Status     string     `json:"status"` // Active, Revoked or Expired
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	RevokedBy  string     `json:"revoked_by,omitempty"`
	// Authorizations are the vendors at which the end user authorised this
	// consent through OAuth2, latest per vendor; the tokens themselves are kept
	// apart, sealed, and never answered.
	Authorizations []Authorization `json:"authorizations,omitempty"`
}

// Evidence is how the app captured the consent: the text the user agreed to and the
// app's own reference to that moment (a form submission id, a recording).
type Evidence struct {
	Text      string `json:"text"`
	Reference string `json:"reference,omitempty"`
}

// Statuses. Only Active and Revoked are stored: Expired is what an active consent past
// its expiry reads as, so expiry takes effect to the nanosecond without a sweeper.
const (
	Active  = "active"
	Revoked = "revoked"
	Expired = "expired"
)

// settle reports a stored consent as of now. Revoked wins over expired: a revocation is
// a fact that a later expiry does not erase.
func (c *Consent) settle(now time.Time) {
	if c.Status == Active && !c.ExpiresAt.After(now) {
		c.Status = Expired
	}
}
