package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/secrets"
)

// Login is a vendor's oauth2_authorization_code credential, compiled: where the
// end user logs in, where codes and refresh tokens are exchanged, and the client
// id and secret references. Exchanges go through the vendor's own client, so its
// TLS name, client certificate and egress rules apply to them as to every call.
type Login struct {
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

// NewLogin compiles c; client is the vendor's own (its TLS, certificate and
// egress rules apply to token exchanges as to every call).
func NewLogin(vendorID string, c *configs.Credential, base *url.URL, client *http.Client) (*Login, error) {
	idRef, secRef, tokenURL, err := Client(c, base)
	if err != nil {
		return nil, err
	}
	return &Login{vendor: vendorID, cfg: c, tokenURL: tokenURL, client: client, timeout: client.Timeout,
		idRef: idRef, secRef: secRef}, nil
}

// config returns the OAuth2 client configuration with the current client id and
// secret, and the secret itself (to scrub it from anything the vendor returns).
// It is rebuilt when either changes version, so a rotated secret is used for the
// next exchange.
func (a *Login) config(ctx context.Context, p secrets.Provider, redirectURL string) (*oauth2.Config, string, error) {
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
func (a *Login) exchangeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.timeout)
	return context.WithValue(ctx, oauth2.HTTPClient, a.client), cancel
}

// Client is what every OAuth2 grant needs of a credential: the secret
// references of its client id and secret, and its token URL, resolved against
// the vendor's base URL when it is a path.
func Client(c *configs.Credential, base *url.URL) (idRef, secRef secrets.Ref, tokenURL string, err error) {
	if idRef, err = secrets.ParseRef(c.ClientID); err != nil {
		return idRef, secRef, "", fmt.Errorf("secret reference: %w", err)
	}
	if secRef, err = secrets.ParseRef(c.ClientSecret); err != nil {
		return idRef, secRef, "", fmt.Errorf("secret reference: %w", err)
	}
	tokenURL = c.TokenURL
	if strings.HasPrefix(tokenURL, "/") {
		u := *base
		u.Path = strings.TrimSuffix(base.Path, "/") + tokenURL
		u.RawPath = ""
		tokenURL = u.String()
	}
	return idRef, secRef, tokenURL, nil
}

// tokenErrorCodes are the token endpoint's error codes of RFC 6749 §5.2.
var tokenErrorCodes = []string{"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
	"unsupported_grant_type", "invalid_scope"}

// SafeTokenError keeps the status and error code of a failed token request and
// drops the response body, which may echo what was sent.
func SafeTokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			// Only the codes RFC 6749 §5.2 defines: anything else is vendor text,
			// which logs and audit records never carry.
			code := "other"
			if slices.Contains(tokenErrorCodes, re.ErrorCode) {
				code = re.ErrorCode
			}
			return fmt.Errorf("token endpoint answered %d (%s)", re.Response.StatusCode, code)
		}
		return fmt.Errorf("token endpoint answered %d", re.Response.StatusCode)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("token endpoint: %w", ue.Err)
	}
	return err
}
