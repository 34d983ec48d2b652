package proxy

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/secrets"
)

// authCode is a vendor's oauth2_authorization_code credential, compiled: where the
// end user logs in, where codes and refresh tokens are exchanged, and the client
// id and secret references. Exchanges go through the vendor's own client, so its
// TLS name, client certificate and egress rules apply to them as to every call.
type authCode struct {
	vendor   string
	cfg      *configs.Credential
	tokenURL string
	client   *http.Client
	timeout  time.Duration
	idRef    secrets.Ref
	secRef   secrets.Ref

	mu      sync.Mutex
	version string // of the client id and secret conf was built with
	conf    *oauth2.Config
}

func newAuthCode(vendorID string, c *configs.Credential, base *url.URL, client *http.Client) (*authCode, error) {
	idRef, secRef, tokenURL, err := oauthClient(c, base)
	if err != nil {
		return nil, err
	}
	return &authCode{vendor: vendorID, cfg: c, tokenURL: tokenURL, client: client, timeout: client.Timeout,
		idRef: idRef, secRef: secRef}, nil
}

// config returns the OAuth2 client configuration with the current client id and
// secret, and the secret itself (to scrub it from anything the vendor returns).
// It is rebuilt when either changes version, so a rotated secret is used for the
// next exchange.
func (a *authCode) config(ctx context.Context, p secrets.Provider, redirectURL string) (*oauth2.Config, string, error) {
	id, err := p.Get(ctx, a.idRef)
	if err != nil {
		return nil, "", fmt.Errorf("vendor %s oauth2 client id: %w", a.vendor, err)
	}
	sec, err := p.Get(ctx, a.secRef)
	if err != nil {
		return nil, "", fmt.Errorf("vendor %s oauth2 client secret: %w", a.vendor, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if v := id.Version + "/" + sec.Version + "/" + redirectURL; v != a.version || a.conf == nil {
		a.conf = &oauth2.Config{ClientID: id.Value, ClientSecret: sec.Value, RedirectURL: redirectURL, Scopes: a.cfg.Scopes,
			Endpoint: oauth2.Endpoint{AuthURL: a.cfg.AuthorizeURL, TokenURL: a.tokenURL}}
		a.version = v
	}
	return a.conf, sec.Value, nil
}

// exchangeContext bounds a token request by the vendor's request timeout and
// carries the vendor's client. It does not end when the caller goes away: a code
// is good for one exchange and a refresh may rotate the refresh token, so an
// exchange cut off half-way could lose the end user's authorization.
func (a *authCode) exchangeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.timeout)
	return context.WithValue(ctx, oauth2.HTTPClient, a.client), cancel
}
