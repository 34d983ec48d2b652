package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/policy"
	"github.com/consentgate/consentgate/secrets"
)

// Grants is what OAuth2 brokering needs of the consent registry: pending
// authorizations under the hash of their state, and each consent's sealed tokens
// per vendor. *consent.Registry implements it; revoking a consent deletes its
// tokens there, in the same transaction.
type Grants interface {
	BeginAuthorization(ctx context.Context, key []byte, p consent.Pending) error
	TakeAuthorization(ctx context.Context, key []byte) (*consent.Pending, error)
	CompleteAuthorization(ctx context.Context, app, consentID string, a consent.Authorization, tokens []byte) error
	Tokens(ctx context.Context, consentID, vendor string) ([]byte, error)
	SwapTokens(ctx context.Context, consentID, vendor string, old, updated []byte) error
}

var _ Grants = (*consent.Registry)(nil)

// storedTokens is what is sealed in state.db for one consent at one vendor.
type storedTokens struct {
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	IssuedAt     time.Time `json:"issued_at"`
}

// fresh reports whether the access token can still be used at now: it is
// refreshed once less than a minute, or a quarter of its lifetime, is left
// (whichever is shorter), so a call never leaves with a token about to lapse.
func (t *storedTokens) fresh(now time.Time) bool {
	if t.Expiry.IsZero() {
		return true // the vendor gave no lifetime: used until it refuses it
	}
	margin := min(time.Minute, t.Expiry.Sub(t.IssuedAt)/4)
	return t.Expiry.Sub(now) > margin
}

// tokensAAD binds sealed tokens to their consent and vendor: moved to another
// consent's slot, they no longer open.
func tokensAAD(consentID, vendor string) []byte {
	return []byte("consentgate oauth2 tokens v1\x00" + consentID + "\x00" + vendor)
}

// verifierAAD binds a sealed PKCE verifier to its state.
func verifierAAD(stateKey []byte) []byte {
	return append([]byte("consentgate pkce verifier v1\x00"), stateKey...)
}

// sealKeyCache keeps the parsed seal key of one secret version.
type sealKeyCache struct {
	version string
	key     *secrets.SealKey
}

// sealKey returns keys.token_seal, parsed once per version of the secret.
func (b *Broker) sealKey(ctx context.Context) (*secrets.SealKey, error) {
	return b.readSealKey(ctx, "keys.token_seal", b.sealRef, &b.sealCache)
}

// previousSealKey returns keys.token_seal_previous, or nil when none is set.
func (b *Broker) previousSealKey(ctx context.Context) (*secrets.SealKey, error) {
	if b.prevSealRef == (secrets.Ref{}) {
		return nil, nil
	}
	return b.readSealKey(ctx, "keys.token_seal_previous", b.prevSealRef, &b.prevCache)
}

func (b *Broker) readSealKey(ctx context.Context, field string, ref secrets.Ref, cache *atomic.Pointer[sealKeyCache]) (*secrets.SealKey, error) {
	s, err := b.secrets.Get(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	if c := cache.Load(); c != nil && c.version == s.Version {
		return c.key, nil
	}
	k, err := secrets.ParseSealKey(s.Value)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", field, ref, err)
	}
	cache.Store(&sealKeyCache{version: s.Version, key: k})
	return k, nil
}

// openWithPrevious opens what the current key could not, with the key before
// the last rotation. ok is false when there is none or it does not open either.
func (b *Broker) openWithPrevious(ctx context.Context, sealed, aad []byte) (plain []byte, ok bool) {
	old, err := b.previousSealKey(ctx)
	if err != nil {
		b.log.Error("previous token seal key unavailable", logError, err.Error())
		return nil, false
	}
	if old == nil {
		return nil, false
	}
	plain, err = old.Open(sealed, aad)
	return plain, err == nil
}

func (b *Broker) sealTokens(key *secrets.SealKey, consentID, vendor string, t *storedTokens) ([]byte, error) {
	plain, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("encoding tokens: %w", err)
	}
	return key.Seal(plain, tokensAAD(consentID, vendor))
}

// tokenLock serialises refreshes of one consent's tokens at one vendor, so two
// calls never spend the same refresh token (a vendor that rotates refresh tokens
// would refuse the second, and the end user's authorization would be lost).
func (b *Broker) tokenLock(consentID, vendor string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(consentID + "\x00" + vendor))
	return &b.tokenLocks[h.Sum32()%uint32(len(b.tokenLocks))]
}

// Bearer returns an end user's access token at a vendor, and the values to
// scrub from what the vendor answers.
type Bearer func(ctx context.Context, l *Login) (token string, secrets []string, err error)

// BearerFor returns the token source for the consent a call names, or nil when
// the consent is not this app's active one: an end user's tokens are used only
// for the app that started their authorization, whatever a report-only policy
// lets through.
func (b *Broker) BearerFor(app string, c *policy.Consent) Bearer {
	if c == nil || c.App != app || c.Status != consent.Active {
		return nil
	}
	return func(ctx context.Context, ac *Login) (string, []string, error) {
		return b.accessToken(ctx, ac, c.ID)
	}
}

// openTokens reads and opens the consent's sealed tokens at vendor.
func (b *Broker) openTokens(ctx context.Context, consentID, vendor string) ([]byte, *secrets.SealKey, storedTokens, error) {
	var t storedTokens
	sealed, err := b.grants.Tokens(ctx, consentID, vendor)
	if errors.Is(err, consent.ErrNoTokens) {
		return nil, nil, t, fmt.Errorf("%w: no tokens for consent %s at vendor %s", ErrNotAuthorized, consentID, vendor)
	}
	if err != nil {
		return nil, nil, t, fmt.Errorf("reading tokens of consent %s: %w", consentID, err)
	}
	key, err := b.sealKey(ctx)
	if err != nil {
		return nil, nil, t, err
	}
	aad := tokensAAD(consentID, vendor)
	plain, err := key.Open(sealed, aad)
	resealUnderCurrent := false
	if err != nil {
		if p, ok := b.openWithPrevious(ctx, sealed, aad); ok {
			plain, err, resealUnderCurrent = p, nil, true
		}
	}
	if err != nil {
		b.log.Error("stored vendor tokens do not open: the end user must authorise again", logVendor, vendor,
			logConsentID, consentID, logError, err.Error())
		return nil, nil, t, fmt.Errorf("%w: stored tokens of consent %s at vendor %s do not open", ErrNotAuthorized, consentID, vendor)
	}
	if err := json.Unmarshal(plain, &t); err != nil {
		return nil, nil, t, fmt.Errorf("%w: stored tokens of consent %s are unreadable", ErrNotAuthorized, consentID)
	}
	if resealUnderCurrent {
		// Sealed under the key before the rotation: sealed again under the
		// current one, so the previous key can be retired. Another call may do
		// the same at once; the store keeps one of the two.
		resealed, err := key.Seal(plain, aad)
		if err == nil {
			err = b.grants.SwapTokens(ctx, consentID, vendor, sealed, resealed)
		}
		if err != nil {
			b.log.Warn("vendor tokens opened with the previous seal key were not sealed again", logVendor, vendor,
				logConsentID, consentID, logError, err.Error())
		} else {
			sealed = resealed
			b.log.Info("vendor tokens sealed again under the current seal key", logVendor, vendor, logConsentID, consentID)
		}
	}
	return sealed, key, t, nil
}

// accessToken opens the consent's tokens at the vendor, refreshing them first if
// they are about to expire; the refreshed tokens are stored sealed before use.
// ErrNotAuthorized means there are none the vendor would accept: never
// authorised, revoked, refused at refresh, or sealed under another key.
func (b *Broker) accessToken(ctx context.Context, ac *Login, consentID string) (string, []string, error) {
	vendor := ac.vendor
	// Most calls find a fresh token: no lock for them, so a slow refresh of
	// one consent never holds up another that shares its lock stripe.
	if _, _, t, err := b.openTokens(ctx, consentID, vendor); err != nil {
		return "", nil, err
	} else if t.fresh(b.now()) {
		return t.AccessToken, []string{t.AccessToken, t.RefreshToken}, nil
	}
	mu := b.tokenLock(consentID, vendor)
	mu.Lock()
	defer mu.Unlock()
	// Read again under the lock: another call may have refreshed meanwhile.
	sealed, key, t, err := b.openTokens(ctx, consentID, vendor)
	if err != nil {
		return "", nil, err
	}
	now := b.now()
	if t.fresh(now) {
		return t.AccessToken, []string{t.AccessToken, t.RefreshToken}, nil
	}
	if t.RefreshToken == "" {
		return "", nil, fmt.Errorf("%w: the access token of consent %s at vendor %s has expired and there is no refresh token", ErrNotAuthorized, consentID, vendor)
	}
	conf, clientSecret, err := ac.config(ctx, b.secrets, b.RedirectURL(vendor))
	if err != nil {
		return "", nil, err
	}
	xctx, cancel := ac.exchangeContext(ctx)
	defer cancel()
	tok, err := conf.TokenSource(xctx, &oauth2.Token{RefreshToken: t.RefreshToken}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			// The vendor has withdrawn the grant: these tokens are of no more use.
			if derr := b.grants.SwapTokens(context.WithoutCancel(ctx), consentID, vendor, sealed, nil); derr != nil && !errors.Is(derr, consent.ErrNoTokens) {
				b.log.Error("removing refused vendor tokens", logVendor, vendor, logConsentID, consentID, logError, derr.Error())
			}
			return "", nil, fmt.Errorf("%w: vendor %s refused the refresh token of consent %s", ErrNotAuthorized, vendor, consentID)
		}
		return "", nil, fmt.Errorf("vendor %s refresh: %w", vendor, SafeTokenError(err))
	}
	next := &storedTokens{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, TokenType: tok.TokenType,
		Expiry: tok.Expiry, IssuedAt: now}
	resealed, err := b.sealTokens(key, consentID, vendor, next)
	if err != nil {
		return "", nil, err
	}
	// The refresh token may be spent now: store its successor even if the app
	// has hung up, or the end user would have to authorise again.
	if err := b.grants.SwapTokens(context.WithoutCancel(ctx), consentID, vendor, sealed, resealed); err != nil {
		// Revoked while the refresh was under way: the new tokens are dropped
		// and the call is not made with them.
		if errors.Is(err, consent.ErrNoTokens) {
			return "", nil, fmt.Errorf("%w: consent %s changed during the refresh", ErrNotAuthorized, consentID)
		}
		return "", nil, fmt.Errorf("storing refreshed tokens of consent %s: %w", consentID, err)
	}
	b.log.Info("vendor tokens refreshed", logVendor, vendor, logConsentID, consentID)
	return next.AccessToken, []string{next.AccessToken, next.RefreshToken, t.RefreshToken, clientSecret}, nil
}
