package configs

import (
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

var (
	vendorIDRE     = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	opIDRE         = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[A-Za-z][A-Za-z0-9]*$`)
	secretRE       = regexp.MustCompile(`^[A-Za-z0-9_.\-/]+#[A-Za-z0-9_.\-]+$`)
	tokenRE        = regexp.MustCompile(`^[!#$%&'*+\-.^_` + "`" + `|~0-9A-Za-z]+$`)
	segmentRE      = regexp.MustCompile(`^(\{[A-Za-z][A-Za-z0-9_]*\}|[A-Za-z0-9._~!$&'()*+,;=:@-]+)$`)
	dnsNameRE      = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
	portRE         = regexp.MustCompile(`^[0-9]{1,5}$`)
	resourceKindRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	// A query parameter name: no separator, escape or space.
	queryNameRE = regexp.MustCompile(`^[A-Za-z0-9._~\[\]-]+$`)
	fieldRE     = regexp.MustCompile(`^[A-Za-z0-9_$-]+(\[\])?(\.[A-Za-z0-9_$-]+(\[\])?)*$`)
	// scopeRE is an RFC 6749 scope-token.
	scopeRE = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]+$`)
)

// validator collects FieldErrors for one file; each validate… function checks one rule.
type validator struct {
	file string
	idx  index
	errs Errors
}

func (v *validator) at(field, format string, args ...any) *FieldError {
	return &FieldError{File: v.file, Line: v.idx.line(field), Field: field, Msg: fmt.Sprintf(format, args...)}
}

func (v *validator) fail(field, format string, args ...any) {
	v.errs = append(v.errs, v.at(field, format, args...))
}

func (v *validator) config(c *Config) {
	if c.Node == "" {
		v.fail("node", "is required (or set by --node or %s)", NodeEnv)
	} else if err := CheckNode(c.Node); err != nil {
		v.fail("node", "%v", err)
	}
	if c.TrustDomain == "" {
		v.fail("trust_domain", "is required (the SPIFFE trust domain of app certificates)")
	} else if strings.ContainsAny(c.TrustDomain, "/:@ ") || strings.ToLower(c.TrustDomain) != c.TrustDomain {
		v.fail("trust_domain", "%q is not a valid trust domain (lower-case DNS-style name)", c.TrustDomain)
	}
	if c.DataDir == "" {
		v.fail("data_dir", "is required")
	}
	v.addr("listen.gateway", c.Listen.Gateway, true)
	v.addr("listen.forward", c.Listen.Forward, false)
	v.addr("listen.admin", c.Listen.Admin, false)
	v.addr("listen.callbacks", c.Listen.Callbacks, false)
	if c.Listen.MaxHeaderBytes < 4<<10 || c.Listen.MaxHeaderBytes > 1<<20 {
		v.fail("listen.max_header_bytes", "%d is outside 4096..1048576", c.Listen.MaxHeaderBytes)
	}
	if c.TLS.ClientCAFile == "" {
		v.fail("tls.client_ca_file", "is required (the internal CA app certificates chain to)")
	}
	v.servingCertificate(&c.TLS)
	if (c.TLS.ForwardCACertFile == "") != (c.TLS.ForwardCAKeyFile == "") {
		v.fail("tls.forward_ca_key_file", "forward_ca_cert_file and forward_ca_key_file go together")
	}
	if crl := c.TLS.ClientCRL; crl != nil {
		v.clientCRL(crl)
	}
	switch c.TLS.MinVersion {
	case "1.2", "1.3":
	default:
		v.fail("tls.min_version", "%q is not allowed: use 1.2 or 1.3", c.TLS.MinVersion)
	}
	v.secrets(&c.Secrets)
	v.policy(&c.Policy)
	v.secretRef("keys.subject_hmac", c.Keys.SubjectHMAC)
	v.secretRef("keys.field_hmac", c.Keys.FieldHMAC)
	switch k := c.Keys.AuditSigningPKCS11; {
	case k != nil && c.Keys.AuditSigning != "":
		v.fail("keys.audit_signing_pkcs11", "give either keys.audit_signing or keys.audit_signing_pkcs11, not both")
	case k != nil:
		v.pkcs11("keys.audit_signing_pkcs11", k)
	default:
		v.secretRef("keys.audit_signing", c.Keys.AuditSigning)
	}
	if c.Keys.TokenSeal != "" {
		v.secretRef("keys.token_seal", c.Keys.TokenSeal)
	}
	if c.Keys.TokenVault != "" {
		v.secretRef("keys.token_vault", c.Keys.TokenVault)
	}
	if tk := c.Keys.TokenVaultTransit; tk != nil {
		switch {
		case c.Keys.TokenVault != "":
			v.fail("keys.token_vault_transit", "give either keys.token_vault or keys.token_vault_transit, not both")
		case c.Secrets.Provider != "vault":
			v.fail("keys.token_vault_transit", "needs secrets.provider vault")
		case tk.Key == "":
			v.fail("keys.token_vault_transit.key", "is required: the transit key's name")
		}
	}
	if c.Keys.TokenVaultPrevious != "" {
		v.secretRef("keys.token_vault_previous", c.Keys.TokenVaultPrevious)
		if c.Keys.TokenVault == "" && c.Keys.TokenVaultTransit == nil {
			v.fail("keys.token_vault_previous", "needs keys.token_vault or keys.token_vault_transit: it only opens what the key before it wrapped")
		}
	}
	if c.Keys.TokenVaultNext != "" {
		v.secretRef("keys.token_vault_next", c.Keys.TokenVaultNext)
		if c.Keys.TokenVault == "" {
			v.fail("keys.token_vault_next", "needs keys.token_vault: it is the local key that is to replace it")
		}
	}
	if c.Keys.TokenSealPrevious != "" {
		v.secretRef("keys.token_seal_previous", c.Keys.TokenSealPrevious)
		if c.Keys.TokenSeal == "" {
			v.fail("keys.token_seal_previous", "needs keys.token_seal: it only opens what the key before it sealed")
		}
	}
	v.oauth(&c.OAuth)
	if c.MovedApps != nil {
		v.fail("apps", "apps are defined once, in the policy data: move each app's oauth_return_to to data.yaml, apps.<id>.oauth_return_to, beside its vendors and purposes (docs/policy.md)")
	}
	v.audit(&c.Audit)
	v.tracing(&c.Tracing)
	v.consents(&c.Consents)
	if len(c.VendorFiles) == 0 {
		v.fail("vendors", "lists no vendor profile: the gateway would refuse every call")
	}
}

func (v *validator) clientCRL(c *ClientCRL) {
	const f = "tls.client_crl"
	switch {
	case (c.URL == "") == (c.File == ""):
		v.fail(f, "give exactly one of url or file")
	case c.URL != "":
		if u, err := url.Parse(c.URL); err != nil || u.Scheme != "https" || u.Host == "" {
			v.fail(f+".url", "%q is not an https URL", c.URL)
		}
	}
	if c.IssuerFile == "" {
		v.fail(f+".issuer_file", "is required: the certificate that signs the CRL (the CA's intermediate)")
	}
	if c.Refresh.Duration < time.Second || c.Refresh.Duration > time.Hour {
		v.fail(f+".refresh", "%s: must be between 1s and 1h", c.Refresh.Duration)
	}
}

func (v *validator) consents(c *Consents) {
	switch c.Backend {
	case ConsentsBbolt:
		if c.Postgres != nil {
			v.fail("consents.postgres", "is only used with backend postgres (the backend is bbolt)")
		}
	case ConsentsPostgres:
		if c.Postgres == nil {
			v.fail("consents.postgres", "is required with backend postgres: host, database, user and password_secret")
			return
		}
		v.postgres(c.Postgres)
	default:
		v.fail("consents.backend", "%q is unknown: use bbolt or postgres", c.Backend)
	}
}

func (v *validator) postgres(p *Postgres) {
	const f = "consents.postgres."
	v.secretRef(f+"password_secret", p.PasswordSecret)
	for _, r := range []struct{ field, val string }{{"host", p.Host}, {"database", p.Database}, {"user", p.User}} {
		if r.val == "" {
			v.fail(f+r.field, "is required")
		}
	}
	if p.Port < 1 || p.Port > 65535 {
		v.fail(f+"port", "%d is not a TCP port", p.Port)
	}
	switch p.SSLMode {
	case "verify-full", "verify-ca":
	case "require":
		if p.CAFile != "" {
			v.fail(f+"ca_file", "is not used with sslmode require, which does not verify the server: use verify-full")
		}
	case "disable":
		// Consents, sealed tokens and the password would cross the network in clear.
		if !strings.HasPrefix(p.Host, "/") && !LoopbackHost(p.Host) {
			v.fail(f+"sslmode", "disable is only allowed to a loopback host or a unix socket; %q is neither: use verify-full", p.Host)
		}
		if p.CAFile != "" {
			v.fail(f+"ca_file", "is not used with sslmode disable")
		}
	default:
		v.fail(f+"sslmode", "%q is not verify-full, verify-ca, require or disable", p.SSLMode)
	}
	if p.MaxConns < 1 || p.MaxConns > 1000 {
		v.fail(f+"max_conns", "%d is outside 1..1000", p.MaxConns)
	}
}

func (v *validator) oauth(o *OAuth) {
	if o.PublicURL != "" {
		u, err := url.Parse(o.PublicURL)
		switch {
		case err != nil || u.Scheme != "https" || u.Host == "":
			v.fail("oauth.public_url", "%q is not an https URL such as https://gateway.example.com", o.PublicURL)
		case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			v.fail("oauth.public_url", "%q must be scheme, host and port only: the callback path is /oauth/<vendor>/callback", o.PublicURL)
		}
	}
	if d := o.StateTTL.Duration; d < 10*time.Second || d > time.Hour {
		v.fail("oauth.state_ttl", "%s is outside 10s..1h (the time an end user has to log in at the vendor)", o.StateTTL)
	}
}

// requireOAuth checks what a vendor with an oauth2_authorization_code credential
// needs of the main file.
func (v *validator) requireOAuth(c *Config, vendor string) {
	if c.OAuth.PublicURL == "" {
		v.fail("oauth.public_url", "is required: vendor %s uses oauth2_authorization_code, whose callback is <public_url>/oauth/%s/callback", vendor, vendor)
	}
	if c.Listen.Callbacks == "" {
		v.fail("listen.callbacks", "is required: vendor %s uses oauth2_authorization_code, and end users' browsers come back to the callbacks listener (the gateway listener requires a client certificate)", vendor)
	}
	if c.Keys.TokenSeal == "" {
		v.fail("keys.token_seal", "is required: vendor %s uses oauth2_authorization_code, whose tokens are stored sealed", vendor)
	}
}

// servingCertificate checks that exactly one source of the serving
// certificate is configured: ACME, or a certificate and key file.
func (v *validator) servingCertificate(t *TLS) {
	a := t.ACME
	if a == nil {
		for f, val := range map[string]string{"tls.cert_file": t.CertFile, "tls.key_file": t.KeyFile} {
			if val == "" {
				v.fail(f, "is required unless tls.acme obtains the serving certificate")
			}
		}
		return
	}
	if t.CertFile != "" || t.KeyFile != "" {
		v.fail("tls.acme", "give either acme or cert_file and key_file, not both")
	}
	if u, err := url.Parse(a.Directory); err != nil || u.Scheme != "https" || u.Host == "" {
		v.fail("tls.acme.directory", "%q is not an https URL of an ACME directory", a.Directory)
	}
	if len(a.Names) == 0 {
		v.fail("tls.acme.names", "lists no name: the gateway would have no certificate")
	}
	for i, n := range a.Names {
		if net.ParseIP(n) == nil && !dnsNameRE.MatchString(n) {
			v.fail(fmt.Sprintf("tls.acme.names[%d]", i), "%q is not a DNS name or IP address (no wildcards)", n)
		}
	}
	if a.Email != "" && !strings.Contains(a.Email, "@") {
		v.fail("tls.acme.email", "%q is not an email address", a.Email)
	}
	if a.Challenge != "http-01" && a.Challenge != "tls-alpn-01" {
		v.fail("tls.acme.challenge", "%q is unknown: use http-01 or tls-alpn-01", a.Challenge)
	}
	if _, p, err := net.SplitHostPort(a.ChallengeListen); err != nil || p == "0" || !portRE.MatchString(p) {
		v.fail("tls.acme.challenge_listen", "%q is not host:port with a fixed port", a.ChallengeListen)
	}
}

func (v *validator) policy(p *Policy) {
	switch {
	case p.Dir == "" && p.Bundle == "":
		v.fail("policy", "needs dir or bundle: without a policy every call would be refused")
	case p.Dir != "" && p.Bundle != "":
		v.fail("policy", "give either dir or bundle, not both")
	}
	if p.Bundle != "" && strings.Contains(p.Bundle, "://") && !strings.HasPrefix(p.Bundle, "https://") {
		v.fail("policy.bundle", "%q: a bundle URL must use https", p.Bundle)
	}
	switch p.BundleKeyAlgorithm {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "HS256", "HS384", "HS512":
	default:
		v.fail("policy.bundle_key_algorithm", "%q is not a JWS algorithm OPA supports", p.BundleKeyAlgorithm)
	}
	if p.Timeout.Duration > 5*time.Second {
		v.fail("policy.timeout", "%s is too long for a per-request decision (at most 5s)", p.Timeout)
	}
	if p.MaxConcurrent < 0 {
		v.fail("policy.max_concurrent", "%d: must be positive (leave it out for one per core)", p.MaxConcurrent)
	}
	if p.QueueWait.Duration < 0 || p.QueueWait.Duration > 30*time.Second {
		v.fail("policy.queue_wait", "%s: must be between 0 and 30s", p.QueueWait)
	}
}

func (v *validator) tracing(t *Tracing) {
	if t.Endpoint == "" {
		if t.CAFile != "" || t.SampleRatio != 0 || t.ServiceName != "" {
			v.fail("tracing.endpoint", "is required when tracing is configured (leave the whole section out to turn tracing off)")
		}
		return
	}
	u, err := url.Parse(t.Endpoint)
	switch {
	case err != nil || u.Host == "":
		v.fail("tracing.endpoint", "%q is not a URL such as https://otel-collector:4318", t.Endpoint)
	case u.Scheme == "http" && !LoopbackHost(u.Hostname()):
		// Span attributes name apps, vendors and decisions: not for the open network.
		v.fail("tracing.endpoint", "%q: use https (plain http only to a loopback collector)", t.Endpoint)
	case u.Scheme != "http" && u.Scheme != "https":
		v.fail("tracing.endpoint", "%q: the scheme must be https", t.Endpoint)
	}
	if t.SampleRatio < 0 || t.SampleRatio > 1 {
		v.fail("tracing.sample_ratio", "%v is outside 0..1", t.SampleRatio)
	}
}

func (v *validator) audit(a *Audit) {
	switch a.Mode {
	case "strict", "async":
	default:
		v.fail("audit.mode", "%q is unknown: use strict or async", a.Mode)
	}
	if a.BatchSize < 1 || a.BatchSize > 10000 {
		v.fail("audit.batch_size", "%d is outside 1..10000", a.BatchSize)
	}
	if a.MaxDelay.Duration > time.Second {
		v.fail("audit.max_delay", "%s would hold every call for up to that long", a.MaxDelay)
	}
	if a.CheckpointEvery < 1 {
		v.fail("audit.checkpoint_every", "must be positive")
	}
	if a.ReserveBytes < -1 {
		v.fail("audit.reserve_bytes", "must be -1 (no reserve), 0 (the default, 256 MiB) or a number of bytes")
	}
	names := map[string]bool{}
	for i := range a.Streams {
		v.auditStream(fmt.Sprintf("audit.streams[%d]", i), &a.Streams[i], names)
	}
	if a.Segment.MaxBytes != -1 && a.Segment.MaxBytes < 64<<10 {
		v.fail("audit.segment.max_bytes", "%d: use at least 65536 (64 KiB), or -1 for no size limit", a.Segment.MaxBytes)
	}
	if d := a.Segment.MaxAge.Duration; d >= 0 && d < time.Minute {
		v.fail("audit.segment.max_age", "%s: use at least 1m, or -1s for no age limit", d)
	}
	if a.Retention != nil {
		v.retention(a.Retention)
	}
	if d := a.LinkRetention.Duration; d != 0 && d < 24*time.Hour {
		v.fail("audit.link_retention", "%s: use at least 24h (a key's last use is kept to the day), or leave it out", d)
	}
}

func (v *validator) retention(r *AuditRetention) {
	if r.KeepLocal.Duration < 0 {
		v.fail("audit.retention.keep_local", "must not be negative")
	}
	if r.KeepArchive.Duration <= 0 {
		v.fail("audit.retention.keep_archive", "is required: how long the archive keeps a segment (say 61320h, seven years)")
	}
	if r.Interval.Duration < time.Second {
		v.fail("audit.retention.interval", "%s: use at least 1s", r.Interval)
	}
	switch a := r.Archive; {
	case (a.Dir == "") == (a.S3 == nil):
		v.fail("audit.retention.archive", "give exactly one of dir or s3: segments are deleted here only once a copy is verified there")
	case a.S3 != nil:
		v.archiveS3(a.S3)
	}
}

func (v *validator) archiveS3(s *AuditS3) {
	const f = "audit.retention.archive.s3"
	switch u, err := url.Parse(s.Endpoint); {
	case err != nil || u.Scheme != "https" || u.Host == "" || u.Path != "" && u.Path != "/":
		v.fail(f+".endpoint", "is not an https URL of a store's root: segments leave only over TLS")
	case u.User != nil || u.RawQuery != "":
		v.fail(f+".endpoint", "holds user info or a query: the keys are access_key and secret_key, secret references")
	}
	if s.Bucket == "" {
		v.fail(f+".bucket", "is required")
	}
	v.secretRef(f+".access_key", s.AccessKey)
	v.secretRef(f+".secret_key", s.SecretKey)
	switch s.ObjectLock {
	case "", "governance", "compliance":
	default:
		v.fail(f+".object_lock", "%q is unknown: use governance or compliance, or leave it out", s.ObjectLock)
	}
}

var streamNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func (v *validator) auditStream(f string, s *AuditStream, names map[string]bool) {
	switch {
	case !streamNameRE.MatchString(s.Name):
		v.fail(f+".name", "%q is not a name: lower-case letters, digits and -", s.Name)
	case names[s.Name]:
		v.fail(f+".name", "%q is used twice: each stream keeps its own cursor by name", s.Name)
	}
	names[s.Name] = true
	switch s.Type {
	case "syslog":
		if _, _, err := net.SplitHostPort(s.Address); err != nil {
			v.fail(f+".address", "is required for syslog: host:port of the RFC 5425 (TLS) receiver")
		}
	case "http", "otlp":
		switch u, err := url.Parse(s.URL); {
		case err != nil || u.Scheme != "https" || u.Host == "":
			v.fail(f+".url", "is not an https URL: audit records leave only over TLS")
		case u.User != nil || u.RawQuery != "" || u.Fragment != "":
			v.fail(f+".url", "holds user info, a query or a fragment: put a credential in token, a secret reference, not in the URL")
		}
	default:
		v.fail(f+".type", "%q is unknown: use syslog, http or otlp", s.Type)
	}
	switch {
	case s.Type == "http" && s.Format != "jsonl" && s.Format != "hec":
		v.fail(f+".format", "%q is unknown: use jsonl or hec", s.Format)
	case s.Type != "http" && s.Format != "":
		v.fail(f+".format", "is for http streams only")
	}
	switch {
	case s.Token != "" && s.Type != "http":
		v.fail(f+".token", "is for http streams only: a %s receiver takes a client certificate (cert_file, key_file)", s.Type)
	case s.Token != "":
		v.secretRef(f+".token", s.Token)
	}
	if (s.CertFile == "") != (s.KeyFile == "") {
		v.fail(f+".cert_file", "cert_file and key_file go together")
	}
	if s.Batch < 0 || s.Batch > 10000 {
		v.fail(f+".batch", "%d is outside 1..10000", s.Batch)
	}
}

func (v *validator) addr(field, val string, required bool) {
	if val == "" {
		if required {
			v.fail(field, "is required")
		}
		return
	}
	if _, _, err := net.SplitHostPort(val); err != nil {
		v.fail(field, "%q is not host:port", val)
	}
}

func (v *validator) secrets(s *Secrets) {
	switch s.Provider {
	case "file":
		if s.File.Path == "" {
			v.fail("secrets.file.path", "is required when provider is file")
		}
	case "vault":
		v.vault(&s.Vault)
	case "":
		v.fail("secrets.provider", "is required: file or vault")
	default:
		v.fail("secrets.provider", "%q is unknown: use file or vault", s.Provider)
	}
}

var mountRE = regexp.MustCompile(`^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*$`)

func (v *validator) vault(c *Vault) {
	if u, err := url.Parse(c.Address); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		v.fail("secrets.vault.address", "%q is not an http(s) URL", c.Address)
	}
	if !mountRE.MatchString(c.Mount) {
		v.fail("secrets.vault.mount", "%q is not a mount path such as secret or kv/consentgate", c.Mount)
	}
	if c.AuthMount != "" && !mountRE.MatchString(c.AuthMount) {
		v.fail("secrets.vault.auth_mount", "%q is not a mount path such as approle or kubernetes-prod", c.AuthMount)
	}
	switch c.Auth {
	case "token":
		if c.TokenFile == "" {
			v.fail("secrets.vault.token_file", "is required for auth token")
		}
		if c.AuthMount != "" {
			v.fail("secrets.vault.auth_mount", "is not used with auth token")
		}
	case "approle":
		if c.RoleIDFile == "" || c.SecretIDFile == "" {
			v.fail("secrets.vault.auth", "approle needs role_id_file and secret_id_file")
		}
	case "kubernetes":
		if c.Role == "" {
			v.fail("secrets.vault.role", "is required for auth kubernetes")
		}
	default:
		v.fail("secrets.vault.auth", "%q is unknown: use token, approle or kubernetes", c.Auth)
	}
	switch {
	case c.RefreshInterval.Duration < 0:
		v.fail("secrets.vault.refresh_interval", "must be positive")
	case c.MaxStale.Duration < 0:
		v.fail("secrets.vault.max_stale", "must be positive")
	case c.MaxStale.Duration <= c.RefreshInterval.Duration:
		v.fail("secrets.vault.max_stale", "%s is not longer than refresh_interval %s: cached secrets would go stale between two refreshes", c.MaxStale, c.RefreshInterval)
	}
}

func (v *validator) vendor(vd *Vendor) {
	if !vendorIDRE.MatchString(vd.ID) {
		v.fail("id", "%q is not a vendor id (lower-case letters, digits, dashes)", vd.ID)
	}
	u, err := url.Parse(vd.BaseURL)
	switch {
	case err != nil || u.Host == "":
		v.fail("base_url", "%q is not an absolute URL", vd.BaseURL)
	case u.Scheme != "https":
		v.fail("base_url", "must use https: vendor data never crosses the network in clear")
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		v.fail("base_url", "must not carry a query, fragment or user info")
	}
	if err != nil {
		u = nil
	}
	v.timeouts(&vd.Timeouts)
	v.fields("error_fields", vd.ErrorFields)
	if cb := vd.Callback; cb != nil {
		v.callback(cb, vd)
	}
	if q := vd.Quota; q.RequestsPerSecond < 0 || q.PerAppRequestsPerSecond < 0 || q.Burst < 0 || q.PerAppBurst < 0 {
		v.fail("quota", "rates and bursts must not be negative")
	}
	switch vd.Upstream.Revocation {
	case RevocationFailOpen, RevocationFailClosed, RevocationOff:
	default:
		v.fail("upstream.revocation", "%q is unknown: use fail-open, fail-closed or off", vd.Upstream.Revocation)
	}
	for i, a := range vd.Upstream.Pin {
		if _, err := netip.ParseAddr(a); err != nil {
			v.fail(fmt.Sprintf("upstream.pin[%d]", i), "%q is not an IP address", a)
		}
	}
	if vd.ClientCertificate != nil {
		v.clientCertificate(vd.ClientCertificate)
	}
	v.egress(&vd.Egress, vd.Upstream.Pin)
	ops := map[string]bool{}
	routes := map[string]string{}
	for i := range vd.Operations {
		op := &vd.Operations[i]
		f := fmt.Sprintf("operations[%d]", i)
		v.operation(f, vd.ID, op)
		if ops[op.ID] {
			v.fail(f+".id", "operation %q is defined twice", op.ID)
		}
		ops[op.ID] = true
		key := op.Method + " " + templateShape(op.Path)
		if prev, ok := routes[key]; ok {
			v.fail(f+".path", "%s %s matches the same requests as operation %q", op.Method, op.Path, prev)
		}
		routes[key] = op.ID
	}
	if len(vd.Operations) == 0 {
		v.fail("operations", "lists no operation: every call to this vendor would be refused")
	}
	authCodes := 0
	for i := range vd.Credentials {
		c := &vd.Credentials[i]
		v.credential(fmt.Sprintf("credentials[%d]", i), c, ops, u)
		if c.Type == CredentialOAuth2AuthorizationCode {
			if authCodes++; authCodes > 1 {
				v.fail(fmt.Sprintf("credentials[%d]", i), "a vendor has at most one oauth2_authorization_code credential: an end user authorises one client")
			}
		}
	}
	v.credentialNames(vd)
	v.resources(vd)
	v.erasure(vd)
	if vd.Callback != nil {
		v.callbackURLToken(vd.Callback, vd)
	}
}

func (v *validator) callback(cb *Callback, vd *Vendor) {
	found := false
	for _, op := range vd.Operations {
		if op.ID == cb.Operation {
			found = true
			if !op.Callback {
				v.fail("callback.operation", "operation %q must have callback: true", cb.Operation)
			}
		}
	}
	if !found {
		v.fail("callback.operation", "operation %q is not defined in this profile", cb.Operation)
	}
	if cb.App == "" {
		v.fail("callback.app", "is required: the app the callbacks are for")
	}
	if u, err := url.Parse(cb.ForwardURL); err != nil || u.Scheme != "https" || u.Host == "" {
		v.fail("callback.forward_url", "%q is not an https URL", cb.ForwardURL)
	}
	if len(cb.AllowSources) == 0 {
		v.fail("callback.allow_sources", "lists no source network: every callback would be refused")
	}
	for i, s := range cb.AllowSources {
		if _, err := netip.ParsePrefix(s); err != nil {
			v.fail(fmt.Sprintf("callback.allow_sources[%d]", i), "%q is not a CIDR such as 203.0.113.0/24", s)
		}
	}
	if cb.SharedSecret != "" {
		v.secretRef("callback.shared_secret", cb.SharedSecret)
		if !tokenRE.MatchString(cb.SharedSecretHeader) {
			v.fail("callback.shared_secret_header", "%q is not a header name", cb.SharedSecretHeader)
		}
	}
	if cb.ClientCAFile == "" && cb.SharedSecret == "" && cb.URLToken == nil {
		v.fail("callback", "authenticates callbacks by their source address alone: add client_ca_file, shared_secret or url_token")
	}
}

// callbackURLToken checks where the callback URL token comes from and which
// request fields carry the URLs it is written into.
func (v *validator) callbackURLToken(cb *Callback, vd *Vendor) {
	if cb.URLToken == nil {
		if len(cb.URLTokenFields) > 0 || cb.URLTokenParam != "" {
			v.fail("callback.url_token_fields", "url_token_param and url_token_fields need url_token")
		}
		return
	}
	if cb.URLToken.Secret == "" || cb.URLToken.File != "" {
		v.fail("callback.url_token", "give it as {secret: path#key}: a token in a file would sit next to the configuration")
	} else {
		v.secretRef("callback.url_token.secret", cb.URLToken.Secret)
	}
	if u, err := url.Parse(cb.PublicURL); err != nil || u.Scheme != "https" || u.Host == "" {
		v.fail("callback.public_url", "%q is not an https URL: the token is written only into callback URLs under it", cb.PublicURL)
	}
	if !queryNameRE.MatchString(cb.URLTokenParam) {
		v.fail("callback.url_token_param", "%q is not a query parameter name", cb.URLTokenParam)
	}
	if len(cb.URLTokenFields) == 0 {
		v.fail("callback.url_token_fields", "names no request field carrying a callback URL: the vendor would never learn the token")
	}
	for _, id := range slices.Sorted(maps.Keys(cb.URLTokenFields)) {
		i := slices.IndexFunc(vd.Operations, func(op Operation) bool { return op.ID == id })
		if i < 0 {
			v.fail("callback.url_token_fields."+id, "operation %q is not defined in this profile", id)
			continue
		}
		for _, f := range cb.URLTokenFields[id] {
			if _, ok := vd.Operations[i].Fields.Request[f]; !ok || vd.Operations[i].RequestBody != RequestJSON {
				v.fail("callback.url_token_fields."+id, "%q is not a JSON request field of the operation", f)
			}
		}
	}
}

func (v *validator) timeouts(t *Timeouts) {
	if t.ResponseHeader.Duration > t.Request.Duration {
		v.fail("timeouts.response_header", "%s is longer than timeouts.request %s", t.ResponseHeader, t.Request)
	}
}

func (v *validator) clientCertificate(c *ClientCertificate) {
	const f = "client_certificate"
	pair := c.Cert != nil || c.Key != nil
	switch {
	case c.PKCS11 != nil && (c.Key != nil || c.PKCS12 != nil):
		v.fail(f+".pkcs11", "the key is in the token: give cert and pkcs11, without key or pkcs12")
	case c.PKCS11 != nil && c.Cert == nil:
		v.fail(f+".pkcs11", "needs cert: the certificate of the token's key")
	case c.PKCS11 != nil:
		v.pkcs11(f+".pkcs11", c.PKCS11)
	case pair && c.PKCS12 != nil:
		v.fail(f, "give either cert and key, or pkcs12, not both")
	case pair && (c.Cert == nil || c.Key == nil):
		v.fail(f, "cert and key must both be given")
	case !pair && c.PKCS12 == nil:
		v.fail(f, "needs cert and key, pkcs12, or cert and pkcs11")
	case c.Password != nil && c.PKCS12 == nil:
		v.fail(f+".password", "is only used with pkcs12")
	}
	for name, s := range map[string]*Source{"cert": c.Cert, "key": c.Key, "pkcs12": c.PKCS12, "password": c.Password} {
		if s != nil {
			v.source(f+"."+name, s)
		}
	}
	for i, fam := range c.RequireIssuer {
		if fam != "ica" && fam != "postsignum" {
			v.fail(fmt.Sprintf("%s.require_issuer[%d]", f, i), "%q is unknown: use ica or postsignum", fam)
		}
	}
	for i, t := range c.Types {
		if !slices.Contains(CertificateTypes, t) {
			v.fail(fmt.Sprintf("%s.types[%d]", f, i), "%q is unknown: use %s", t, strings.Join(CertificateTypes, ", "))
		}
	}
}

// CertificateTypes are the kinds of certificate a profile's client_certificate
// types can list: certs.Kinds, named here so that configs needs no TLS code.
var CertificateTypes = []string{"qualified-seal", "qualified-company", "qualified-personal", "server", "commercial"}

func (v *validator) pkcs11(f string, k *PKCS11Key) {
	if !filepath.IsAbs(k.Module) {
		v.fail(f+".module", "%q is not an absolute path to a PKCS#11 library", k.Module)
	}
	if k.TokenLabel == "" {
		v.fail(f+".token_label", "is required")
	}
	if k.KeyLabel == "" && k.KeyID == "" {
		v.fail(f, "name the key by key_label or key_id")
	}
	if _, err := hex.DecodeString(k.KeyID); err != nil {
		v.fail(f+".key_id", "is not hex")
	}
	if k.PIN == nil {
		v.fail(f+".pin", "is required: a secret reference or a file")
	} else {
		v.source(f+".pin", k.PIN)
	}
}

func (v *validator) egress(e *Egress, pin []string) {
	if e.SourceAddress != "" {
		ip, err := netip.ParseAddr(e.SourceAddress)
		switch {
		case err != nil || ip.Zone() != "":
			v.fail("egress.source_address", "%q is not an IP address", e.SourceAddress)
		case ip.Is4In6():
			v.fail("egress.source_address", "%q is an IPv4 address in IPv6 form: write it as %s", e.SourceAddress, ip.Unmap())
		}
	}
	p := e.Proxy
	if p == nil {
		return
	}
	// The URL is not repeated in errors: a mistyped one may carry a password.
	u, err := url.Parse(p.URL)
	switch {
	case err != nil:
		v.fail("egress.proxy.url", "is not http://host:port or https://host:port")
	case u.User != nil:
		v.fail("egress.proxy.url", "must not carry credentials: give username and password as secret references")
	case u.Scheme != "http" && u.Scheme != "https":
		v.fail("egress.proxy.url", "scheme %q: use http or https", u.Scheme)
	case u.Host == "" || u.Port() == "":
		v.fail("egress.proxy.url", "%q is not http://host:port or https://host:port", u.Redacted())
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		v.fail("egress.proxy.url", "must be only scheme, host and port")
	case p.CAFile != "" && u.Scheme != "https":
		v.fail("egress.proxy.ca_file", "is only used with an https proxy")
	case p.Username != nil && u.Scheme == "http" && !loopback(u.Hostname()):
		v.fail("egress.proxy.url", "credentials would cross the network in clear to an http proxy: use https (a proxy on this host may use http)")
	}
	if (p.Username == nil) != (p.Password == nil) {
		v.fail("egress.proxy", "username and password must both be given, or neither")
	}
	if p.Username != nil && p.Password != nil {
		v.source("egress.proxy.username", p.Username)
		v.source("egress.proxy.password", p.Password)
	}
	if len(pin) > 0 {
		v.fail("upstream.pin", "is not used with egress.proxy: the proxy resolves the vendor's name, so restrict destinations there")
	}
}

// loopback reports whether host names this machine.
func loopback(host string) bool {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap().IsLoopback()
	}
	return host == "localhost"
}

func (v *validator) source(field string, s *Source) {
	switch {
	case (s.Secret == "") == (s.File == ""):
		v.fail(field, "give exactly one of secret or file")
	case s.Secret != "":
		v.secretRef(field+".secret", s.Secret)
	}
}

func (v *validator) secretRef(field, ref string) {
	if !secretRE.MatchString(ref) {
		// The value is not repeated: what is here instead of a reference may
		// be the secret itself.
		v.fail(field, "is not a secret reference of the form path#key (the value is not shown: it may be the secret itself)")
	}
}

func (v *validator) disclosesWhen(f string, op *Operation) {
	c := op.DisclosesWhen
	if c == nil {
		return
	}
	if cat := op.Fields.Response[c.Field]; cat != "metadata" {
		v.fail(f+".discloses_when.field", "%q must be a response field of category metadata (it is %q)", c.Field, cat)
	}
	if len(c.Equals) == 0 {
		v.fail(f+".discloses_when.equals", "lists no value: nothing personal would ever pass")
	}
}

func (v *validator) requires(f string, op *Operation) {
	for dep, needs := range op.Requires {
		if _, ok := op.Fields.Request[dep]; !ok {
			v.fail(f+".requires."+dep, "is not a request field of the operation")
		}
		for _, n := range needs {
			if _, ok := op.Fields.Request[n]; !ok {
				v.fail(f+".requires."+dep, "%q is not a request field of the operation", n)
			}
		}
	}
}

func (v *validator) operation(f, vendor string, op *Operation) {
	v.disclosesWhen(f, op)
	if b := op.PerConsent; b != nil && (b.Calls < 1 || b.Per.Duration < time.Second) {
		v.fail(f+".per_consent", "needs calls (at least 1) and per (at least 1s)")
	}
	v.tokens(f, op)
	v.requires(f, op)
	if !opIDRE.MatchString(op.ID) {
		v.fail(f+".id", "%q is not an operation id such as %s.personalData", op.ID, vendor)
	} else if !strings.HasPrefix(op.ID, vendor+".") {
		v.fail(f+".id", "%q must start with the vendor id %q", op.ID, vendor+".")
	}
	switch op.Method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		v.fail(f+".method", "%q is not one of GET, POST, PUT, PATCH, DELETE", op.Method)
	}
	v.pathTemplate(f+".path", op.Path)
	switch op.Body {
	case BodyJSON, BodyBinary:
	default:
		v.fail(f+".body", "%q is unknown: use json or binary", op.Body)
	}
	switch op.Class {
	case ClassSubject, ClassTenant:
	default:
		v.fail(f+".class", "%q is unknown: use subject or tenant", op.Class)
	}
	if op.Class == ClassTenant {
		v.tenantFields(f, op)
	}
	v.requestShape(f, op)
	v.bodyLimits(f+".limits", &op.Limits)
	if op.MaxRequestBytes < 0 {
		v.fail(f+".max_request_bytes", "must be positive")
	}
	v.fields(f+".fields.request", op.Fields.Request)
	v.fields(f+".fields.response", op.Fields.Response)
}

// requestShape checks what an operation declares it sends: the media type of its
// body and the query parameters and headers apps may pass on.
func (v *validator) requestShape(f string, op *Operation) {
	switch op.RequestBody {
	case RequestJSON, RequestForm, RequestMultipart, RequestNone:
	default:
		v.fail(f+".request_body", "%q is unknown: use json, form, multipart or none", op.RequestBody)
	}
	if op.RequestBody == RequestNone && len(op.Fields.Request) > 0 {
		v.fail(f+".fields.request", "declares body fields, but request_body is none")
	}
	switch op.Undeclared {
	case UndeclaredDrop, UndeclaredRefuse:
	default:
		v.fail(f+".undeclared", "%q is unknown: use drop or refuse", op.Undeclared)
	}
	for _, name := range slices.Sorted(maps.Keys(op.Fields.Query)) {
		if !queryNameRE.MatchString(name) {
			v.fail(f+".fields.query."+name, "%q is not a query parameter name", name)
		}
		v.category(f+".fields.query."+name, op.Fields.Query[name])
	}
	for _, name := range slices.Sorted(maps.Keys(op.Fields.Headers)) {
		switch {
		case !tokenRE.MatchString(name):
			v.fail(f+".fields.headers."+name, "%q is not a header name", name)
		case slices.ContainsFunc(ReservedHeaders, func(h string) bool { return strings.EqualFold(h, name) }):
			v.fail(f+".fields.headers."+name, "%s is consentgate's to set or remove, not an app's to send", name)
		}
		v.category(f+".fields.headers."+name, op.Fields.Headers[name])
	}
	for _, name := range slices.Sorted(maps.Keys(op.Fields.ResponseHeaders)) {
		switch {
		case !tokenRE.MatchString(name):
			v.fail(f+".fields.response_headers."+name, "%q is not a header name", name)
		case strings.EqualFold(name, "Set-Cookie") || strings.EqualFold(name, "Set-Cookie2"):
			// The vendor's session belongs to consentgate's connection, never to an app.
			v.fail(f+".fields.response_headers."+name, "a vendor's cookies never reach an app")
		case op.Fields.ResponseHeaders[name] != "metadata":
			v.fail(f+".fields.response_headers."+name, "is %s, but a header cannot be minimised: only metadata passes in one", op.Fields.ResponseHeaders[name])
		}
	}
	for _, name := range slices.Sorted(maps.Keys(op.Fields.Path)) {
		if !strings.Contains(op.Path, "{"+name+"}") {
			v.fail(f+".fields.path."+name, "%q is not a placeholder of the path %s", name, op.Path)
		}
		v.category(f+".fields.path."+name, op.Fields.Path[name])
	}
}

// credentialNames refuses an operation that would let apps send a parameter or
// header the vendor's credentials use, or take a body credential in a body that
// is not JSON.
func (v *validator) credentialNames(vd *Vendor) {
	for i := range vd.Operations {
		op := &vd.Operations[i]
		f := fmt.Sprintf("operations[%d]", i)
		for _, c := range vd.Credentials {
			if c.Operations != nil && !slices.Contains(c.Operations, op.ID) {
				continue
			}
			if _, ok := op.Fields.Query[c.Query]; ok && c.Query != "" {
				v.fail(f+".fields.query."+c.Query, "is where a credential of this vendor goes; apps cannot send it")
			}
			for name := range op.Fields.Headers {
				if c.Header != "" && strings.EqualFold(name, c.Header) {
					v.fail(f+".fields.headers."+name, "is where a credential of this vendor goes; apps cannot send it")
				}
			}
			if c.BodyField != "" && op.RequestBody != RequestJSON {
				v.fail(f+".request_body", "is %s, but a credential goes in the body field %s, which needs json", op.RequestBody, c.BodyField)
			}
		}
	}
}

// resources checks that every resource an operation names is where the
// operation says (a placeholder of its path, a declared query parameter, header
// or field) and is of a kind some operation of the vendor creates.
func (v *validator) resources(vd *Vendor) {
	created := map[string]bool{}
	for _, op := range vd.Operations {
		for _, kind := range op.Resources.Creates {
			created[kind] = true
		}
	}
	for i := range vd.Operations {
		op := &vd.Operations[i]
		f := fmt.Sprintf("operations[%d].resources", i)
		for _, path := range slices.Sorted(maps.Keys(op.Resources.Creates)) {
			if !resourceKindRE.MatchString(op.Resources.Creates[path]) {
				v.fail(f+".creates."+path, "%q is not a resource kind (lower-case letters, digits, dashes)", op.Resources.Creates[path])
			}
			if _, ok := op.Fields.Response[path]; !ok {
				v.fail(f+".creates."+path, "is not a response field of the operation")
			}
		}
		sent := op.SentFields()
		for _, where := range slices.Sorted(maps.Keys(op.Resources.References)) {
			kind := op.Resources.References[where]
			_, declared := sent[where]
			if op.Callback { // the vendor's body is what the operation receives
				_, declared = op.Fields.Response[where]
			}
			if name, ok := strings.CutPrefix(where, "path:"); ok {
				declared = strings.Contains(op.Path, "{"+name+"}")
			}
			switch {
			case !declared:
				v.fail(f+".references."+where, "is neither a placeholder of the path (path:<name>) nor a declared query parameter, header or body field")
			case !created[kind]:
				v.fail(f+".references."+where, "no operation of this vendor creates a %q", kind)
			}
		}
		v.erases(f, vd, op)
		switch op.Resources.Unknown {
		case UnknownRefuse, UnknownAllow:
		default:
			v.fail(f+".unknown", "%q is unknown: use refuse or allow", op.Resources.Unknown)
		}
	}
}

// erasure insists that a vendor that keeps records of end users (its
// operations create ids) says how they are erased: an operation that erases,
// or why there is none.
func (v *validator) erasure(vd *Vendor) {
	erases := slices.ContainsFunc(vd.Operations, func(op Operation) bool { return op.Erases != "" })
	creates := slices.ContainsFunc(vd.Operations, func(op Operation) bool { return len(op.Resources.Creates) > 0 })
	switch {
	case erases && vd.Erasure.Unavailable != "":
		v.fail("erasure.unavailable", "is set, but operations erase; remove one")
	case creates && !erases && vd.Erasure.Unavailable == "":
		v.fail("erasure", "says nothing: name an operation that erases (erases: <kind>) or say why none can (erasure.unavailable)")
	}
}

// erases checks that an erasure operation can be called from what a binding
// holds: the erased id, and the ids its creating call named.
func (v *validator) erases(f string, vd *Vendor, op *Operation) {
	if op.Erases == "" {
		return
	}
	f = strings.TrimSuffix(f, ".resources") + ".erases"
	// It runs under a withdrawn consent, which lets only metadata go: a path
	// that needs personal data could never be called.
	for _, name := range slices.Sorted(maps.Keys(op.Fields.Path)) {
		if op.Fields.Path[name] != "metadata" {
			v.fail(f, "the path's {%s} is %s, but an erasure runs under a withdrawn consent and sends metadata only", name, op.Fields.Path[name])
		}
	}
	var creators []*Operation
	for i := range vd.Operations {
		if slices.Contains(slices.Collect(maps.Values(vd.Operations[i].Resources.Creates)), op.Erases) {
			creators = append(creators, &vd.Operations[i])
		}
	}
	if len(creators) == 0 {
		v.fail(f, "no operation of this vendor creates a %q", op.Erases)
		return
	}
	if op.RequestBody != RequestNone || op.Callback {
		v.fail(f, "an erasure operation is called with the ids in its path or query only (request_body none)")
	}
	if !slices.Contains(slices.Collect(maps.Values(op.Resources.References)), op.Erases) {
		v.fail(f, "the operation must reference the %q it erases (resources.references)", op.Erases)
	}
	for where, kind := range op.Resources.References {
		if kind == op.Erases {
			continue
		}
		for _, c := range creators {
			if !slices.Contains(slices.Collect(maps.Values(c.Resources.References)), kind) {
				v.fail(f, "%s needs the %q, which %s, creating the %q, does not name", where, kind, c.ID, op.Erases)
			}
		}
	}
}

// tenantFields insists that an operation on the tenant carries no end user's
// data: every field it declares is metadata, and it names no end user's ids.
func (v *validator) tenantFields(f string, op *Operation) {
	for _, m := range []map[string]string{op.Fields.Request, op.Fields.Query, op.Fields.Headers, op.Fields.Path, op.Fields.Response} {
		for _, path := range slices.Sorted(maps.Keys(m)) {
			if m[path] != "metadata" {
				v.fail(f+".fields", "%s is %s, but a tenant operation carries metadata only", path, m[path])
			}
		}
	}
	if len(op.Resources.Creates) > 0 || len(op.Resources.References) > 0 || op.Erases != "" {
		v.fail(f+".resources", "a tenant operation creates, names and erases no end user's ids")
	}
}

func (v *validator) bodyLimits(f string, l *BodyLimits) {
	for _, x := range []struct {
		name  string
		v     int
		limit int
	}{{"depth", l.Depth, 1000}, {"keys", l.Keys, 1000000}, {"path_bytes", l.PathBytes, 65536},
		{"array_length", l.ArrayLength, 1000000}} {
		if x.v < 1 || x.v > x.limit {
			v.fail(f+"."+x.name, "%d is outside 1..%d", x.v, x.limit)
		}
	}
}

// ReservedHeaders are headers an operation cannot declare: consentgate sets or
// removes them itself (framing, content coding, credentials, its own headers).
var ReservedHeaders = []string{"Host", "Content-Type", "Content-Length", "Content-Encoding",
	"Transfer-Encoding", "Connection", "Keep-Alive", "Te", "Trailer", "Upgrade", "Proxy-Connection",
	"Accept-Encoding", "Authorization", "Proxy-Authorization", "Cookie", "Forwarded",
	"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Consent-Id", "X-Purpose",
	"Traceparent", "Tracestate", "Baggage"}

func (v *validator) pathTemplate(field, p string) {
	if !strings.HasPrefix(p, "/") {
		v.fail(field, "%q must start with /", p)
		return
	}
	names := map[string]bool{}
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, seg := range segs {
		if seg == "" && i == len(segs)-1 {
			continue // a trailing slash is part of some vendors' paths
		}
		if !segmentRE.MatchString(seg) {
			v.fail(field, "segment %q of %q is not a literal or a {name} placeholder", seg, p)
			return
		}
		if strings.HasPrefix(seg, "{") {
			if names[seg] {
				v.fail(field, "placeholder %s appears twice in %q", seg, p)
			}
			names[seg] = true
		}
	}
}

// templateShape replaces placeholders so two templates that match the same
// requests compare equal.
func templateShape(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") {
			segs[i] = "{}"
		}
	}
	return strings.Join(segs, "/")
}

func (v *validator) fields(f string, m map[string]string) {
	for _, path := range slices.Sorted(maps.Keys(m)) {
		if !fieldRE.MatchString(path) {
			v.fail(f+"."+path, "%q is not a dotted field path (use [] for arrays)", path)
		}
		v.category(f+"."+path, m[path])
	}
}

func (v *validator) category(f, c string) {
	if !slices.Contains(Categories, c) {
		v.fail(f, "%q is not a data category (%s)", c, strings.Join(Categories, ", "))
	}
}

func (v *validator) credential(f string, c *Credential, ops map[string]bool, base *url.URL) {
	switch c.Type {
	case CredentialAPIKey:
		v.secretRef(f+".secret", c.Secret)
		n := 0
		for _, s := range []string{c.Header, c.Query, c.BodyField} {
			if s != "" {
				n++
			}
		}
		if n != 1 {
			v.fail(f, "an api_key goes in exactly one of header, query or body_field")
		}
		if c.Header != "" && !tokenRE.MatchString(c.Header) {
			v.fail(f+".header", "%q is not a valid header name", c.Header)
		}
	case CredentialBearer:
		v.secretRef(f+".secret", c.Secret)
	case CredentialOAuth2ClientCredentials:
		if c.TokenURL == "" {
			v.fail(f+".token_url", "is required")
		} else if u, err := url.Parse(c.TokenURL); err != nil || (u.IsAbs() && u.Scheme != "https") || (!u.IsAbs() && !strings.HasPrefix(c.TokenURL, "/")) {
			v.fail(f+".token_url", "%q must be an https URL or a path starting with /", c.TokenURL)
		}
		v.secretRef(f+".client_id", c.ClientID)
		v.secretRef(f+".client_secret", c.ClientSecret)
	case CredentialOAuth2AuthorizationCode:
		v.authorizationCode(f, c, base)
	default:
		v.fail(f+".type", "%q is unknown: use api_key, bearer, oauth2_client_credentials or oauth2_authorization_code", c.Type)
	}
	if c.Type != CredentialAPIKey && (c.Header != "" || c.Query != "" || c.BodyField != "") {
		v.fail(f, "header, query and body_field only apply to type api_key")
	}
	if c.Type != CredentialOAuth2AuthorizationCode && (c.AuthorizeURL != "" || c.PKCE) {
		v.fail(f, "authorize_url and pkce only apply to type oauth2_authorization_code")
	}
	for i, s := range c.Scopes {
		if !scopeRE.MatchString(s) {
			v.fail(fmt.Sprintf("%s.scopes[%d]", f, i), "%q is not an OAuth2 scope (no spaces, quotes or backslashes)", s)
		}
	}
	for i, id := range c.Operations {
		if !ops[id] {
			v.fail(fmt.Sprintf("%s.operations[%d]", f, i), "operation %q is not defined in this profile", id)
		}
	}
}

// authorizationCode checks an oauth2_authorization_code credential. The token
// endpoint is reached through the vendor's own transport (its TLS name, client
// certificate and egress rules), so it must be on the base URL's host.
func (v *validator) authorizationCode(f string, c *Credential, base *url.URL) {
	if u, err := url.Parse(c.AuthorizeURL); err != nil || u.Scheme != "https" || u.Host == "" {
		v.fail(f+".authorize_url", "%q is not an https URL of the vendor's login page", c.AuthorizeURL)
	} else if u.Fragment != "" || u.User != nil {
		v.fail(f+".authorize_url", "%q must not carry a fragment or user info", c.AuthorizeURL)
	}
	switch u, err := url.Parse(c.TokenURL); {
	case c.TokenURL == "":
		v.fail(f+".token_url", "is required")
	case err != nil || (!u.IsAbs() && !strings.HasPrefix(c.TokenURL, "/")):
		v.fail(f+".token_url", "%q must be a path starting with / or an https URL on the base URL's host", c.TokenURL)
	case u.IsAbs() && (u.Scheme != "https" || base == nil || !strings.EqualFold(u.Host, base.Host)):
		v.fail(f+".token_url", "%q must be on the base URL's host: the exchange uses the vendor's transport", c.TokenURL)
	}
	v.secretRef(f+".client_id", c.ClientID)
	v.secretRef(f+".client_secret", c.ClientSecret)
}

// tokens checks an operation's token formats (for response fields the
// operation declares, of a personal category) and the request fields tokens
// may come back in (likewise).
func (v *validator) tokens(f string, op *Operation) {
	for path, t := range op.Tokens {
		at := fmt.Sprintf("%s.tokens[%s]", f, path)
		switch cat, ok := op.Fields.Response[path]; {
		case !ok:
			v.fail(at, "is not a response field of the operation")
		case cat == "metadata":
			v.fail(at, "is metadata: only personal data is tokenized")
		}
		if t == nil {
			continue
		}
		if err := t.Tokens().Validate(); err != nil {
			v.fail(at, "%v", err)
		}
	}
	sent := op.SentFields()
	for i, name := range op.Reveals {
		if cat, ok := sent[name]; !ok || cat == "metadata" {
			v.fail(fmt.Sprintf("%s.reveals[%d]", f, i), "%q is not a request field of a personal category", name)
		}
	}
}
