package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/oauth"
	"github.com/consentgate/consentgate/secrets"
)

// Credentials an app might send itself. They are removed from every request,
// whatever the vendor, together with the names the vendor's profile injects:
// an app must not be able to choose the credential a call is made with.
var (
	appCredentialHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie",
		"Apikey", "Api-Key", "X-Api-Key", "X-Apikey"}
	appCredentialQuery = []string{"api_key", "apikey", "flow_api_key", "access_token", "client_secret"}
	appCredentialBody  = []string{"api_key", "apikey", "client_secret"}
	// Headers that are for consentgate itself, never for a vendor, and claims
	// about the app's network the vendor has no business seeing. (X-Forwarded-*
	// and Forwarded are removed by the reverse proxy before any hook runs.)
	// Trace context is the app's and consentgate's business: baggage can name
	// a user, and trace ids link calls the vendor should not link.
	gatewayHeaders = []string{"X-Consent-Id", "X-Purpose", "X-Real-Ip", "X-Client-Ip", "True-Client-Ip", "Via",
		"Traceparent", "Tracestate", "Baggage"}
)

// minScrubLen keeps very short values (a misconfigured "1") from redacting
// arbitrary response text; real keys and tokens are far longer.
const minScrubLen = 6

// credential is a configured credential ready to use.
type credential struct {
	cfg   *configs.Credential
	ref   secrets.Ref
	ops   map[string]bool // nil: every operation
	oauth *oauthSource
	login *oauth.Login
}

// stripRules are what is removed from every app request to one vendor.
type stripRules struct {
	headers []string
	query   []string
	body    []string
}

// injection is what consentgate adds to one outbound request.
type injection struct {
	header http.Header
	query  url.Values
	body   map[string]string
	// secrets are the injected values, scrubbed from anything the vendor returns.
	secrets []string
}

func parseRef(s string) (secrets.Ref, error) {
	ref, err := secrets.ParseRef(s)
	if err != nil {
		return secrets.Ref{}, fmt.Errorf("secret reference: %w", err)
	}
	return ref, nil
}

func compileCredentials(v *configs.Vendor, base *url.URL, client *http.Client) ([]*credential, *oauth.Login, stripRules, error) {
	strip := stripRules{
		headers: append(append([]string{}, appCredentialHeaders...), gatewayHeaders...),
		query:   append([]string{}, appCredentialQuery...),
		body:    append([]string{}, appCredentialBody...),
	}
	var out []*credential
	var ac *oauth.Login
	for i := range v.Credentials {
		c := &v.Credentials[i]
		cred := &credential{cfg: c}
		if len(c.Operations) > 0 {
			cred.ops = map[string]bool{}
			for _, id := range c.Operations {
				cred.ops[id] = true
			}
		}
		var err error
		switch c.Type {
		case configs.CredentialAPIKey, configs.CredentialBearer:
			cred.ref, err = parseRef(c.Secret)
		case configs.CredentialOAuth2ClientCredentials:
			cred.oauth, err = newOAuthSource(c, base, client)
		case configs.CredentialOAuth2AuthorizationCode:
			cred.login, err = oauth.NewLogin(v.ID, c, base, client)
			ac = cred.login
		}
		if err != nil {
			return nil, nil, stripRules{}, fmt.Errorf("vendor %s credentials[%d]: %w", v.ID, i, err)
		}
		if c.Header != "" {
			strip.headers = append(strip.headers, c.Header)
		}
		if c.Query != "" {
			strip.query = append(strip.query, c.Query)
		}
		if c.BodyField != "" {
			strip.body = append(strip.body, c.BodyField)
		}
		out = append(out, cred)
	}
	return out, ac, strip, nil
}

// credentialsFor resolves every credential op needs; user supplies the end
// user's tokens (nil when the call names no usable consent). Any failure means
// the vendor is not called: a call without its credential would be refused
// anyway, and one with a stale credential is worse.
func (v *vendor) credentialsFor(ctx context.Context, op *operation, p secrets.Provider, user oauth.Bearer) (*injection, error) {
	inj := &injection{header: http.Header{}, query: url.Values{}, body: map[string]string{}}
	for _, c := range v.creds {
		if c.ops != nil && !c.ops[op.cfg.ID] {
			continue
		}
		switch c.cfg.Type {
		case configs.CredentialOAuth2ClientCredentials:
			tok, secret, err := c.oauth.token(ctx, p)
			if err != nil {
				return nil, err
			}
			inj.header.Set("Authorization", "Bearer "+tok)
			inj.secrets = append(inj.secrets, tok, secret)
		case configs.CredentialOAuth2AuthorizationCode:
			if user == nil {
				return nil, fmt.Errorf("%w: the call names no consent of this app", oauth.ErrNotAuthorized)
			}
			tok, extra, err := user(ctx, c.login)
			if err != nil {
				return nil, err
			}
			inj.header.Set("Authorization", "Bearer "+tok)
			inj.secrets = append(inj.secrets, extra...)
		default:
			s, err := p.Get(ctx, c.ref)
			if err != nil {
				return nil, fmt.Errorf("vendor %s credential %s: %w", v.cfg.ID, c.ref, err)
			}
			switch {
			case c.cfg.Type == configs.CredentialBearer:
				inj.header.Set("Authorization", "Bearer "+s.Value)
			case c.cfg.Header != "":
				inj.header.Set(c.cfg.Header, s.Value)
			case c.cfg.Query != "":
				inj.query.Set(c.cfg.Query, s.Value)
			case c.cfg.BodyField != "":
				inj.body[c.cfg.BodyField] = s.Value
			}
			inj.secrets = append(inj.secrets, s.Value)
		}
	}
	return inj, nil
}

// rewriteBody removes app-sent credential fields from a JSON object body and sets
// the injected ones. A body that is not JSON is passed on untouched unless a field
// must be injected into it, which is an error the app can fix.
func rewriteBody(body []byte, contentType string, drop []string, set map[string]string) ([]byte, error) {
	isJSON := strings.Contains(strings.ToLower(contentType), "json")
	if len(set) == 0 && (!isJSON || len(bytes.TrimSpace(body)) == 0) {
		return body, nil
	}
	obj := map[string]any{}
	if len(bytes.TrimSpace(body)) > 0 {
		if !isJSON {
			return nil, errors.New("this operation needs a JSON body (Content-Type: application/json)")
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&obj); err != nil {
			return nil, errors.New("request body is not a JSON object")
		}
		if dec.More() {
			return nil, errors.New("request body holds more than one JSON value")
		}
	}
	for k := range obj {
		for _, f := range drop {
			if strings.EqualFold(k, f) {
				delete(obj, k)
			}
		}
	}
	for f, val := range set {
		obj[f] = val
	}
	return json.Marshal(obj)
}

// oauthSource is a client-credentials token source rebuilt whenever the client id
// or secret changes version, so a rotated secret is used for the next token.
type oauthSource struct {
	cfg      *configs.Credential
	tokenURL string
	client   *http.Client
	idRef    secrets.Ref
	secRef   secrets.Ref

	mu      sync.Mutex
	version string
	ts      oauth2.TokenSource
}

func newOAuthSource(c *configs.Credential, base *url.URL, client *http.Client) (*oauthSource, error) {
	idRef, secRef, tokenURL, err := oauth.Client(c, base)
	if err != nil {
		return nil, err
	}
	return &oauthSource{cfg: c, tokenURL: tokenURL, client: client, idRef: idRef, secRef: secRef}, nil
}

func (o *oauthSource) token(ctx context.Context, p secrets.Provider) (token, clientSecret string, err error) {
	id, err := p.Get(ctx, o.idRef)
	if err != nil {
		return "", "", fmt.Errorf("oauth2 client id: %w", err)
	}
	sec, err := p.Get(ctx, o.secRef)
	if err != nil {
		return "", "", fmt.Errorf("oauth2 client secret: %w", err)
	}
	o.mu.Lock()
	if v := id.Version + "/" + sec.Version; v != o.version || o.ts == nil {
		cc := &clientcredentials.Config{ClientID: id.Value, ClientSecret: sec.Value, TokenURL: o.tokenURL, Scopes: o.cfg.Scopes}
		// The token source outlives this request; it gets its own context that
		// carries the vendor's client (mTLS, CA pool, timeouts).
		o.ts = cc.TokenSource(context.WithValue(context.Background(), oauth2.HTTPClient, o.client))
		o.version = v
	}
	ts := o.ts
	o.mu.Unlock()
	tok, err := ts.Token()
	if err != nil {
		return "", "", fmt.Errorf("oauth2 token request: %w", oauth.SafeTokenError(err))
	}
	return tok.AccessToken, sec.Value, nil
}
