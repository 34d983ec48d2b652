package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/minimise"
	"github.com/consentgate/consentgate/secrets"
)

// callbackPrefix starts every callback URL: /callbacks/<vendor>/<path>.
const callbackPrefix = "/callbacks/"

// Callbacks receives vendors' calls to us (banqware's update callbacks), and
// end users' browsers back from vendor logins, on the callbacks listener. A callback is refused unless it comes from the vendor's
// source networks (and carries its client certificate or shared secret, when the
// profile asks for one); it is decided by the policy and minimised like a
// response, recorded in the audit log, and forwarded to the app's internal URL.
type Callbacks struct {
	gw      *Gateway
	refused *refusedCallbacks
}

type callbackVendor struct {
	v       *vendor
	cfg     *configs.Callback
	op      *operation
	sources []netip.Prefix
	clients *x509.CertPool // nil: no client certificate required
	secret  *secrets.Ref
	token   *callbackToken // nil: no URL token
	forward *http.Client
}

// NewCallbacks serves the callback routes of the profiles in service that
// have one (compileCallback): a reload of the profiles applies to the next
// callback.
func NewCallbacks(g *Gateway) (*Callbacks, error) {
	return &Callbacks{gw: g, refused: newRefusedCallbacks()}, nil
}

// compileCallback prepares v's callback route, nil when its profile has none.
func (g *Gateway) compileCallback(v *vendor) (*callbackVendor, error) {
	cb, id := v.cfg.Callback, v.cfg.ID
	if cb == nil {
		return nil, nil
	}
	cv := &callbackVendor{v: v, cfg: cb}
	for _, op := range v.ops {
		if op.cfg.ID == cb.Operation {
			cv.op = op
		}
	}
	for _, s := range cb.AllowSources {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("vendor %s callback.allow_sources: %w", id, err)
		}
		cv.sources = append(cv.sources, p.Masked())
	}
	if cb.ClientCAFile != "" {
		pool, err := certs.LoadPool(g.cfg.ResolvePath(cb.ClientCAFile))
		if err != nil {
			return nil, fmt.Errorf("vendor %s callback.client_ca_file: %w", id, err)
		}
		cv.clients = pool
	}
	if cb.SharedSecret != "" {
		ref, err := parseRef(cb.SharedSecret)
		if err != nil {
			return nil, fmt.Errorf("vendor %s callback.shared_secret: %w", id, err)
		}
		cv.secret = &ref
	}
	cv.token = v.cbToken
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: certs.AEADSuites}
	if cb.ForwardCAFile != "" {
		pool, err := certs.LoadPool(g.cfg.ResolvePath(cb.ForwardCAFile))
		if err != nil {
			return nil, fmt.Errorf("vendor %s callback.forward_ca_file: %w", id, err)
		}
		tlsCfg.RootCAs = pool
	}
	cv.forward = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil, TLSClientConfig: tlsCfg, IdleConnTimeout: 90 * time.Second},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return cv, nil
}

// CallbackTLS is the callbacks listener's TLS: our serving certificate, and a
// client certificate requested but not required, because only some vendors
// have one; profiles that require it are checked per request.
func CallbackTLS(in *InboundTLS) *tls.Config {
	cfg := in.Config().Clone()
	cfg.ClientAuth = tls.RequestClientCert
	cfg.ClientCAs = nil
	cfg.VerifyConnection = nil
	return cfg
}

func (cv *callbackVendor) allowed(ip netip.Addr) bool {
	for _, p := range cv.sources {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// verifiedBy checks the peer's certificate chain against pool.
func verifiedBy(cs *tls.ConnectionState, pool *x509.CertPool) bool {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return false
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return err == nil
}

// callbackToken is a vendor's callback URL token (configs.Callback.URLToken):
// the secret consentgate writes into the callback URLs apps register, which
// every callback must carry back.
type callbackToken struct {
	ref    secrets.Ref
	param  string
	fields map[string][]string // operation id → body fields with callback URLs
	// public is the callbacks listener as the vendor reaches it: only URLs
	// under it get the token, so it is never handed to another host.
	public atomic.Pointer[url.URL]
}

func compileCallbackToken(cb *configs.Callback) (*callbackToken, error) {
	if cb == nil || cb.URLToken == nil {
		return nil, nil
	}
	ref, err := parseRef(cb.URLToken.Secret)
	if err != nil {
		return nil, fmt.Errorf("callback.url_token: %w", err)
	}
	t := &callbackToken{ref: ref, param: cb.URLTokenParam, fields: cb.URLTokenFields}
	if err := t.setPublic(cb.PublicURL); err != nil {
		return nil, fmt.Errorf("callback.public_url: %w", err)
	}
	return t, nil
}

func (t *callbackToken) setPublic(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%q is not an https URL", raw)
	}
	t.public.Store(u)
	return nil
}

// ours reports whether u is a callback URL on consentgate's callbacks listener.
func (t *callbackToken) ours(u *url.URL, vendor string) bool {
	pub := t.public.Load()
	return u.Scheme == "https" && strings.EqualFold(u.Host, pub.Host) && u.User == nil &&
		strings.HasPrefix(u.EscapedPath(), strings.TrimSuffix(pub.EscapedPath(), "/")+callbackPrefix+vendor+"/")
}

// SetCallbacksPublicURL says where vendors reach the callbacks listener, for
// the callback URL tokens (dev learns it once the listener is bound).
// Profiles reloaded later get it too.
func (g *Gateway) SetCallbacksPublicURL(raw string) error {
	g.reloading.Lock()
	defer g.reloading.Unlock()
	for _, v := range g.vendorsNow() {
		if v.cbToken != nil {
			if err := v.cbToken.setPublic(raw); err != nil {
				return err
			}
		}
	}
	g.callbacksPublic = raw
	return nil
}

// withCallbackToken writes the token into the callback URLs op's JSON body
// carries, and adds it to what the vendor's answers are scrubbed of: the hub
// echoes the URLs, and the app must not learn the token from them.
func (v *vendor) withCallbackToken(ctx context.Context, p secrets.Provider, op *operation, body []byte, inj *injection) ([]byte, error) {
	t := v.cbToken
	if t == nil {
		return body, nil
	}
	// Every answer of the vendor is scrubbed of it: the vendor echoes the URLs
	// it holds in other operations too (banqware's update shows its callbackUrl).
	tok, err := p.Get(ctx, t.ref)
	if err != nil {
		return nil, fmt.Errorf("callback URL token: %w", err)
	}
	inj.secrets = append(inj.secrets, tok.Value)
	if len(t.fields[op.cfg.ID]) == 0 || len(bytes.TrimSpace(body)) == 0 {
		return body, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: %v", minimise.ErrUnparsable, err)
	}
	for _, path := range t.fields[op.cfg.ID] {
		doc = mapStrings(doc, strings.Split(path, "."), func(s string) string {
			u, err := url.Parse(s)
			if err != nil || !t.ours(u, v.cfg.ID) {
				return s // not consentgate's callbacks listener: no token for it
			}
			q := u.Query()
			q.Set(t.param, tok.Value)
			u.RawQuery = q.Encode()
			return u.String()
		})
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}

// mapStrings applies fn to the strings at a dotted path ([] for arrays) of a
// decoded JSON document.
func mapStrings(v any, path []string, fn func(string) string) any {
	if len(path) == 0 {
		if s, ok := v.(string); ok {
			return fn(s)
		}
		return v
	}
	key, each := strings.CutSuffix(path[0], "[]")
	obj, ok := v.(map[string]any)
	if !ok {
		return v
	}
	child, ok := obj[key]
	if !ok {
		return v
	}
	if !each {
		obj[key] = mapStrings(child, path[1:], fn)
		return obj
	}
	if list, ok := child.([]any); ok {
		for i := range list {
			list[i] = mapStrings(list[i], path[1:], fn)
		}
	}
	return obj
}
