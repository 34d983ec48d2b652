package secrets

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/api"
	"golang.org/x/sync/singleflight"
)

// Defaults of VaultOptions.
const (
	DefaultVaultMount    = "secret"
	DefaultVaultRefresh  = 30 * time.Second
	DefaultVaultMaxStale = 5 * time.Minute
	DefaultVaultTimeout  = 10 * time.Second
)

// VaultOptions configure the Vault provider.
type VaultOptions struct {
	// Address is Vault's URL, such as https://vault.internal:8200.
	Address string
	// CAFile is the PEM bundle Vault's certificate must chain to; empty: the
	// system roots.
	CAFile string
	// Mount is the KV v2 mount (default "secret").
	Mount string
	// Auth logs in. It is asked again whenever the token can no longer be
	// renewed or Vault no longer accepts it.
	Auth VaultAuth
	// Refresh is how often each cached secret is re-read (default 30s). A secret
	// with a lease or a custom_metadata ttl shorter than that is re-read at two
	// thirds of it.
	Refresh time.Duration
	// MaxStale is how long after Vault last confirmed a value it is still served
	// while Vault cannot be reached (default 5m). Beyond it Get fails with a
	// StaleError, and the calls that need the value fail closed.
	MaxStale time.Duration
	// Timeout bounds each request to Vault (default 10s).
	Timeout time.Duration
	// Logger gets logins, renewals, refresh failures and recoveries, never a
	// value or a token. Nil discards.
	Logger *slog.Logger
}

// Vault is the production secret provider: KV v2 secrets read with a token it
// obtains and renews itself, kept in a cache that is refreshed in the background.
//
// Get answers from the cache; only the first use of a secret path waits for
// Vault. A rotated secret (a new KV version) replaces the cached one at the next
// refresh and is used from the next call on; calls already holding the old value
// finish with it. While Vault is unreachable cached values keep being served for
// MaxStale after Vault last confirmed them, then Get fails (fail closed) until a
// refresh succeeds again, which happens by itself. A secret Vault says is gone
// (deleted, or no longer readable under the policy) fails at once.
type Vault struct {
	opts   VaultOptions
	client *api.Client
	kv     *api.KVv2
	log    *slog.Logger

	mu      sync.RWMutex
	entries map[string]*vaultEntry
	// first merges concurrent first reads of a path into one Vault request.
	first singleflight.Group

	logins    atomic.Int64
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
	// token is the current login, for revoking it on Close.
	token atomic.Pointer[api.Secret]
}

// vaultEntry is one KV secret path as Vault last answered for it. Entries are
// never modified, only replaced.
type vaultEntry struct {
	values    map[string]string
	version   int
	confirmed time.Time     // when Vault last answered for this path
	ttl       time.Duration // lease or custom_metadata ttl; 0: none
	// err is Vault's definite answer that the secret cannot be had (deleted,
	// denied by policy); Get returns it at once.
	err error
}

var _ Cached = (*Vault)(nil)

// errTokenRejected means Vault no longer accepts the token: log in again.
var errTokenRejected = errors.New("vault no longer accepts the token")

// OpenVault logs in to Vault and starts the background refresh and token
// renewal. It fails if Vault cannot be reached or refuses the login: the gateway
// does not start without its secrets.
func OpenVault(ctx context.Context, o VaultOptions) (*Vault, error) {
	if o.Auth == nil {
		return nil, errNoAuth
	}
	if o.Mount == "" {
		o.Mount = DefaultVaultMount
	}
	if o.Refresh <= 0 {
		o.Refresh = DefaultVaultRefresh
	}
	if o.MaxStale <= 0 {
		o.MaxStale = DefaultVaultMaxStale
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultVaultTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	client, err := newVaultClient(o)
	if err != nil {
		return nil, err
	}
	v := &Vault{opts: o, client: client, kv: client.KVv2(o.Mount), log: o.Logger.With("component", "vault"),
		entries: map[string]*vaultEntry{}, done: make(chan struct{})}
	auth, err := v.login(ctx)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	v.cancel = cancel
	go v.run(runCtx, auth)
	return v, nil
}

// newVaultClient builds the API client from the options alone: VAULT_*
// environment variables do not change where secrets come from or how Vault's
// certificate is checked.
func newVaultClient(o VaultOptions) (*api.Client, error) {
	cfg := api.DefaultConfig()
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("vault ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("vault ca_file %s holds no PEM certificate", o.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	cfg.Error = nil
	cfg.Address = o.Address
	cfg.AgentAddress = ""
	cfg.SRVLookup = false
	cfg.Limiter = nil
	cfg.Timeout = o.Timeout
	// The cache retries on its own schedule; a retrying client would only hold a
	// first read (on the request path) for longer.
	cfg.MaxRetries = 0
	cfg.HttpClient = &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			TLSClientConfig:     tlsCfg,
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   true,
		},
		// The API client handles Vault's redirects (standby nodes) itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	client.ClearToken() // never VAULT_TOKEN from the environment
	client.ClearNamespace()
	client.SetHeaders(nil)
	return client, nil
}

// Get returns the value at ref from the cache, reading the path from Vault the
// first time it is asked for.
func (v *Vault) Get(ctx context.Context, ref Ref) (Secret, error) {
	v.mu.RLock()
	e := v.entries[ref.Path]
	v.mu.RUnlock()
	if e == nil {
		// Calls that arrive while the path is being read wait for that read; the
		// read is bounded by the Vault timeout, not by the first caller leaving.
		ch := v.first.DoChan(ref.Path, func() (any, error) {
			e, err := v.read(context.WithoutCancel(ctx), ref.Path)
			if err == nil {
				// Vault's definite "no" (no such secret, or the policy denies
				// it) is kept too, so a bad reference does not cost every call
				// a Vault round trip; it is read again with the other entries,
				// so a secret created later is found within refresh_interval
				// (or at once on SIGHUP).
				v.store(ref.Path, e)
			}
			return e, err
		})
		select {
		case r := <-ch:
			if r.Err != nil {
				return Secret{}, fmt.Errorf("secret %s: %w", ref, r.Err)
			}
			e = r.Val.(*vaultEntry)
		case <-ctx.Done():
			return Secret{}, fmt.Errorf("secret %s: %w: %w", ref, ErrUnavailable, ctx.Err())
		}
	}
	return v.value(e, ref)
}

// Peek is Get from the cache only (Peeker).
func (v *Vault) Peek(ref Ref) (Secret, error) {
	v.mu.RLock()
	e := v.entries[ref.Path]
	v.mu.RUnlock()
	if e == nil {
		return Secret{}, fmt.Errorf("secret %s: %w", ref, ErrNotRead)
	}
	return v.value(e, ref)
}

// value picks ref's key out of an entry, refusing one that is too old.
func (v *Vault) value(e *vaultEntry, ref Ref) (Secret, error) {
	if e.err != nil {
		return Secret{}, fmt.Errorf("secret %s: %w", ref, e.err)
	}
	if age := time.Since(e.confirmed); age > v.opts.MaxStale {
		return Secret{}, &StaleError{Ref: ref, Age: age, MaxStale: v.opts.MaxStale}
	}
	val, ok := e.values[ref.Key]
	if !ok {
		return Secret{}, fmt.Errorf("%w: %s (no key %q in %s/%s version %d)", ErrNotFound, ref, ref.Key, v.opts.Mount, ref.Path, e.version)
	}
	return Secret{Value: val, Version: strconv.Itoa(e.version), FetchedAt: e.confirmed, TTL: e.ttl}, nil
}

func (v *Vault) store(path string, e *vaultEntry) {
	v.mu.Lock()
	old := v.entries[path]
	v.entries[path] = e
	v.mu.Unlock()
	switch {
	case old != nil && e.err == nil && old.err == nil && old.version != e.version:
		v.log.Info("vault secret rotated: the new version is used from the next call", "path", path, "version", e.version, "previous_version", old.version)
	case e.err != nil && (old == nil || old.err == nil):
		v.log.Warn("vault secret unavailable: calls needing it fail", "path", path, "error", e.err.Error())
	case e.err == nil && old != nil && old.err != nil:
		v.log.Info("vault secret available again", "path", path, "version", e.version)
	}
}

// read asks Vault for one KV path. A nil error with e.err set is Vault's
// definite answer that the secret cannot be had; an error means Vault could not
// be asked (or no longer accepts the token) and nothing is known.
func (v *Vault) read(ctx context.Context, path string) (*vaultEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, v.opts.Timeout)
	defer cancel()
	s, err := v.kv.Get(ctx, path)
	now := time.Now()
	where := v.opts.Mount + "/" + path
	switch {
	case errors.Is(err, api.ErrSecretNotFound):
		return &vaultEntry{confirmed: now, err: fmt.Errorf("%w: vault has no secret at %s", ErrNotFound, where)}, nil
	case statusOf(err) == http.StatusForbidden:
		// Either the token is no longer valid (expired, Vault restarted) or the
		// policy no longer allows the path. Only the second is about the secret.
		if _, lerr := v.client.Auth().Token().LookupSelfWithContext(ctx); lerr != nil {
			if statusOf(lerr) == http.StatusForbidden {
				return nil, fmt.Errorf("%w: %w (%s)", ErrUnavailable, errTokenRejected, where)
			}
			return nil, fmt.Errorf("%w: vault: %s", ErrUnavailable, errText(lerr))
		}
		return &vaultEntry{confirmed: now, err: fmt.Errorf("%w: vault policy denies reading %s", ErrUnavailable, where)}, nil
	case err != nil:
		return nil, fmt.Errorf("%w: reading %s from vault: %s", ErrUnavailable, where, errText(err))
	case s.Data == nil:
		return &vaultEntry{confirmed: now, err: fmt.Errorf("%w: the latest version of %s is deleted", ErrNotFound, where)}, nil
	}
	e := &vaultEntry{values: map[string]string{}, confirmed: now}
	if s.VersionMetadata != nil {
		e.version = s.VersionMetadata.Version
	}
	for k, val := range s.Data {
		switch val := val.(type) {
		case string:
			e.values[k] = val
		case json.Number:
			e.values[k] = val.String()
		default:
			// The value is not named, only its type.
			return &vaultEntry{confirmed: now, err: fmt.Errorf("%w: key %q of %s is a %T, not a string", ErrUnavailable, k, where, val)}, nil
		}
	}
	if s.Raw != nil && s.Raw.LeaseDuration > 0 {
		e.ttl = time.Duration(s.Raw.LeaseDuration) * time.Second
	}
	// KV v2 has no leases; a secret's custom_metadata ttl (a Go duration) asks
	// for it to be re-read at least that often.
	if t, ok := s.CustomMetadata["ttl"].(string); ok {
		if d, err := time.ParseDuration(t); err == nil && d > 0 && (e.ttl == 0 || d < e.ttl) {
			e.ttl = d
		}
	}
	return e, nil
}

// refreshInterval is how long an entry may go before it is re-read.
func (v *Vault) refreshInterval(e *vaultEntry) time.Duration {
	if e.ttl > 0 && e.ttl*2/3 < v.opts.Refresh {
		return max(e.ttl*2/3, 10*time.Millisecond)
	}
	return v.opts.Refresh
}

// refreshDue re-reads every entry whose time has come. It stops at the first
// failure to ask Vault: the others would fail the same way.
func (v *Vault) refreshDue(ctx context.Context, all bool) error {
	now := time.Now()
	var due []string
	v.mu.RLock()
	for path, e := range v.entries {
		if all || now.Sub(e.confirmed) >= v.refreshInterval(e) {
			due = append(due, path)
		}
	}
	v.mu.RUnlock()
	for _, path := range due {
		e, err := v.read(ctx, path)
		if err != nil {
			return err
		}
		v.store(path, e)
	}
	return nil
}

// Reload re-reads every cached secret now. On failure the cached values stay.
func (v *Vault) Reload() error {
	ctx, cancel := context.WithTimeout(context.Background(), 4*v.opts.Timeout)
	defer cancel()
	return v.refreshDue(ctx, true)
}

// CacheAge is how long ago Vault last answered for the oldest cached secret.
func (v *Vault) CacheAge() time.Duration {
	v.mu.RLock()
	defer v.mu.RUnlock()
	var oldest time.Duration
	for _, e := range v.entries {
		oldest = max(oldest, time.Since(e.confirmed))
	}
	return oldest
}

// Fresh fails when some cached secret is older than MaxStale, that is when Get
// refuses it.
func (v *Vault) Fresh() error {
	if age := v.CacheAge(); age > v.opts.MaxStale {
		return fmt.Errorf("%w: vault last confirmed a cached secret %s ago, more than max_stale %s", ErrUnavailable, age.Round(time.Second), v.opts.MaxStale)
	}
	return nil
}

// Close stops the background work and, if the provider obtained its token by
// logging in, revokes it. Later calls do nothing.
func (v *Vault) Close() error {
	v.closeOnce.Do(func() {
		v.cancel()
		<-v.done
		if v.token.Load() == nil || !v.opts.Auth.Revocable() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := v.client.Auth().Token().RevokeSelfWithContext(ctx, ""); err != nil {
			v.closeErr = fmt.Errorf("vault: revoking the token: %s", errText(err))
		}
	})
	return v.closeErr
}

// run keeps the token alive and the cache fresh until ctx ends.
func (v *Vault) run(ctx context.Context, auth *api.Secret) {
	defer close(v.done)
	ren := &renewal{v: v}
	defer ren.stop()
	ren.watch(auth)
	tick := time.NewTicker(min(max(v.opts.Refresh/4, 50*time.Millisecond), time.Second))
	defer tick.Stop()
	needLogin := false
	var rt retry
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-ren.done:
			// Renewal ended: the token reached its max TTL, is not renewable, or
			// could not be renewed in time. Log in again before it expires.
			ren.watcher, ren.done, ren.renewed = nil, nil, nil
			v.log.Info("vault token renewal ended; logging in again", "error", errText(err))
			needLogin = true
		case r := <-ren.renewed:
			if r != nil && r.Secret != nil && r.Secret.Auth != nil {
				v.log.Debug("vault token renewed", "ttl_seconds", r.Secret.Auth.LeaseDuration)
			}
		case <-tick.C:
			if time.Now().Before(rt.at) {
				continue
			}
			needLogin = v.refreshOnce(ctx, ren, &rt, needLogin)
		}
	}
}

// refreshOnce logs in again when it must, then refreshes what is due. It
// returns whether a login is still needed.
func (v *Vault) refreshOnce(ctx context.Context, ren *renewal, rt *retry, needLogin bool) bool {
	if needLogin {
		s, err := v.login(ctx)
		if err != nil {
			v.failed(rt, err)
			return true
		}
		ren.watch(s)
	}
	err := v.refreshDue(ctx, false)
	switch {
	case errors.Is(err, errTokenRejected):
		v.log.Info("vault rejected the token; logging in again")
		return true
	case err != nil:
		v.failed(rt, err)
	default:
		if rt.failing != nil {
			v.log.Info("vault reachable again: cached secrets refreshed")
		}
		*rt = retry{}
	}
	return false
}

// retry is the refresh loop's failure state: what failed, and when to try
// again.
type retry struct {
	failing error
	at      time.Time
	backoff time.Duration
}

// failed notes a failed refresh (logged once until it recovers) and backs off:
// soon enough that recovery is quick, rarely enough to be no load.
func (v *Vault) failed(rt *retry, err error) {
	if rt.failing == nil {
		v.log.Warn("vault refresh failed: serving cached secrets until max_stale", "max_stale", v.opts.MaxStale.String(), "error", errText(err))
	}
	rt.failing = err
	rt.backoff = min(max(2*rt.backoff, 100*time.Millisecond), v.opts.Refresh, 5*time.Second)
	rt.at = time.Now().Add(rt.backoff)
}

// renewal keeps the login token alive with Vault's lifetime watcher.
type renewal struct {
	v       *Vault
	watcher *api.LifetimeWatcher
	done    <-chan error
	renewed <-chan *api.RenewOutput
}

// watch renews s from now on, in place of the token watched before.
func (r *renewal) watch(s *api.Secret) {
	r.stop()
	if s.Auth.LeaseDuration <= 0 {
		return // a token without a TTL never expires
	}
	w, err := r.v.client.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: s})
	if err != nil {
		r.v.log.Error("vault token renewal not started", "error", err.Error())
		return
	}
	go w.Start()
	r.watcher, r.done, r.renewed = w, w.DoneCh(), w.RenewCh()
}

func (r *renewal) stop() {
	if r.watcher != nil {
		r.watcher.Stop()
	}
	r.watcher, r.done, r.renewed = nil, nil, nil
}

// statusOf is the HTTP status of a Vault API error, or 0.
func statusOf(err error) int {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// errText is an error's text for a log or an error, on one line. Vault's errors
// carry the URL, the status and Vault's messages, never a token or a value.
func errText(err error) string {
	if err == nil {
		return ""
	}
	var re *api.ResponseError
	if errors.As(err, &re) {
		return fmt.Sprintf("%s %s: %d %v", re.HTTPMethod, re.URL, re.StatusCode, re.Errors)
	}
	return err.Error()
}
