package configs

import (
	"cmp"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/consentgate/consentgate/tokens"
	"go.yaml.in/yaml/v3"
)

// Config is the gateway configuration: listeners, inbound TLS, the secret provider
// and the vendor profiles. Vendor profile paths are relative to the config file's
// folder; every other relative file path (tls, secrets, a profile's ca_file or
// certificate files) is resolved against DataDir.
type Config struct {
	// Node names this gateway instance in logs and audit records; each replica
	// needs its own (--node and CONSENTGATE_NODE override it, see LoadWithNode).
	Node string `yaml:"node"`
	// TrustDomain is the SPIFFE trust domain of app certificates
	// (spiffe://<trust_domain>/<role>/<name>).
	TrustDomain string `yaml:"trust_domain"`
	// DataDir holds state files (and, in dev, the generated PKI and secrets).
	DataDir string  `yaml:"data_dir"`
	Listen  Listen  `yaml:"listen"`
	TLS     TLS     `yaml:"tls"`
	Secrets Secrets `yaml:"secrets"`
	Policy  Policy  `yaml:"policy"`
	Keys    Keys    `yaml:"keys"`
	Audit   Audit   `yaml:"audit"`
	Tracing Tracing `yaml:"tracing"`
	// StateDB is the bbolt file of the consent registry (default state.db in
	// data_dir); it is separate from the audit log. Only backend bbolt uses it.
	StateDB string `yaml:"state_db"`
	// Consents says where the consent registry is kept: bbolt (default) or a
	// PostgreSQL database that every replica shares.
	Consents Consents `yaml:"consents"`
	// OAuth configures the OAuth2 authorization-code flows consentgate brokers
	// for end users (vendors with an oauth2_authorization_code credential).
	OAuth OAuth `yaml:"oauth"`
	// MovedApps is the apps: section of earlier versions, read only to say
	// where it went: an app is defined once, in the policy data (data.apps),
	// its return URLs (oauth_return_to) beside its vendors and purposes.
	MovedApps any `yaml:"apps" jsonschema:"-"`
	// VendorFiles lists vendor profile files; Vendors holds them once loaded.
	VendorFiles []string  `yaml:"vendors"`
	Vendors     []*Vendor `yaml:"-"`

	// File is the path the configuration was loaded from, for error messages.
	File string `yaml:"-"`
	idx  index
}

// Policy says where the OPA policy comes from: a directory of .rego and data
// files (watched for changes), or an OPA bundle file or URL, optionally signed.
type Policy struct {
	Dir    string `yaml:"dir"`
	Bundle string `yaml:"bundle"`
	// BundleKeyFile is the public key (PEM) or shared secret bundles must be
	// signed with; BundleKeyAlgorithm is its algorithm (default RS256).
	BundleKeyFile      string `yaml:"bundle_key_file"`
	BundleKeyAlgorithm string `yaml:"bundle_key_algorithm"`
	// Timeout bounds one decision (default 50ms); a decision that takes longer
	// is a deny.
	Timeout Duration `yaml:"timeout"`
	// MaxConcurrent is how many decisions OPA evaluates at once (default: one
	// per core); QueueWait bounds a decision's wait for its turn (default
	// 500ms), after which the call gets 503 policy-busy instead of a decision.
	MaxConcurrent int      `yaml:"max_concurrent"`
	QueueWait     Duration `yaml:"queue_wait"`
	// Poll is how often a URL bundle is fetched again (default 1m).
	Poll Duration `yaml:"poll"`
}

// Audit configures the append-only audit log.
type Audit struct {
	// Path is the bbolt file (default audit.db in data_dir).
	Path string `yaml:"path"`
	// Mode is "strict" (default: a record is on disk before the call goes on)
	// or "async" (not compliance-grade: a crash can lose the last records).
	Mode string `yaml:"mode"`
	// BatchSize and MaxDelay bound a group commit (defaults 256 and 1ms).
	BatchSize int      `yaml:"batch_size"`
	MaxDelay  Duration `yaml:"max_delay"`
	// CheckpointEvery and CheckpointInterval say how often a signed checkpoint
	// is written (defaults 1000 records and 10s).
	CheckpointEvery    int      `yaml:"checkpoint_every"`
	CheckpointInterval Duration `yaml:"checkpoint_interval"`
	// ReserveBytes is the free disk space only records of disclosures may
	// use: refusals made before any vendor was called are counted, not
	// recorded, within it (default 256 MiB; -1: no reserve).
	ReserveBytes int64 `yaml:"reserve_bytes"`
	// Streams deliver every record to SIEMs, at least once and in order, from
	// a cursor kept in data_dir (docs/siem.md).
	Streams []AuditStream `yaml:"streams"`
	// Segment seals the log into a segment file (in audit-segments next to
	// it) at a size or an age, so that its history can be archived.
	Segment AuditSegment `yaml:"segment"`
	// Retention archives sealed segments and deletes them here, and later
	// from the archive; without it every segment stays on this node.
	Retention *AuditRetention `yaml:"retention"`
	// LinkRetention, when set, names people in records only through a key of
	// theirs (audit-links.db beside the log), destroyed once no record has
	// named them for this long: their records then cannot be tied to them.
	LinkRetention Duration `yaml:"link_retention"`
}

// AuditSegment says when the active audit file is sealed: at MaxBytes
// (default 1 GiB) or when its first record is MaxAge old (default 24h);
// -1 (-1s for the age) turns either off.
type AuditSegment struct {
	MaxBytes int64    `yaml:"max_bytes"`
	MaxAge   Duration `yaml:"max_age"`
}

// AuditRetention keeps sealed segments here for KeepLocal after they were
// sealed, then copies each to the archive, verifies the copy and deletes it
// here; the archive keeps it KeepArchive (under object lock where the store
// has it) and then deletes it. Interval is how often it looks (default 1m).
type AuditRetention struct {
	KeepLocal   Duration     `yaml:"keep_local"`
	KeepArchive Duration     `yaml:"keep_archive"`
	Interval    Duration     `yaml:"interval"`
	Archive     AuditArchive `yaml:"archive"`
}

// AuditArchive is where sealed segments go: a directory (a mounted volume)
// or an S3-compatible bucket; exactly one.
type AuditArchive struct {
	Dir string   `yaml:"dir"`
	S3  *AuditS3 `yaml:"s3"`
}

// AuditS3 is a bucket of an S3-compatible store. The keys are secret
// references; ObjectLock (governance or compliance) locks every object for
// keep_archive, in a bucket created with object lock enabled.
type AuditS3 struct {
	Endpoint   string `yaml:"endpoint"`
	Region     string `yaml:"region"`
	Bucket     string `yaml:"bucket"`
	Prefix     string `yaml:"prefix"`
	AccessKey  string `yaml:"access_key"`
	SecretKey  string `yaml:"secret_key"`
	CAFile     string `yaml:"ca_file"`
	ObjectLock string `yaml:"object_lock"`
}

// AuditStream is one SIEM the audit log is delivered to. Type says how:
// syslog (RFC 5424 over TLS to Address), http (JSON lines, or Splunk HEC
// events with format hec, posted to URL) or otlp (OTLP/HTTP logs posted to
// URL, the collector's .../v1/logs).
type AuditStream struct {
	Name    string `yaml:"name"`
	Type    string `yaml:"type"`
	Address string `yaml:"address"`
	URL     string `yaml:"url"`
	Format  string `yaml:"format"`
	// Token is a secret reference: HEC's token, or a bearer token.
	Token string `yaml:"token"`
	// CAFile verifies the receiver (default: the system roots); CertFile and
	// KeyFile, when set, are the client certificate it asks for.
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Batch is the most records sent at once (default 500).
	Batch int `yaml:"batch"`
}

// Tracing exports OpenTelemetry spans of every exchange (one per pipeline
// stage, with the decision id) over OTLP/HTTP. Off unless Endpoint is set.
type Tracing struct {
	// Endpoint is the collector's OTLP/HTTP base URL, e.g.
	// https://otel-collector:4318 (spans go to <endpoint>/v1/traces).
	Endpoint string `yaml:"endpoint"`
	// CAFile verifies the collector (default: the system roots).
	CAFile string `yaml:"ca_file"`
	// SampleRatio is the share of exchanges traced, 0 < r <= 1 (default 1).
	SampleRatio float64 `yaml:"sample_ratio"`
	// ServiceName is the service.name resource attribute (default consentgate).
	ServiceName string `yaml:"service_name"`
}

// Consents selects the consent registry's store. With bbolt (the embedded
// default) each gateway keeps its own state_db, so consents given to one replica
// are unknown to the others; with postgres every replica reads and writes one
// database. The audit log stays per replica either way.
type Consents struct {
	// Backend is bbolt (default) or postgres.
	Backend  string    `yaml:"backend"`
	Postgres *Postgres `yaml:"postgres"`
	// ErasureInterval is how often the erasure outbox is worked: the vendor
	// calls that erase a withdrawn consent's data. Default 5s.
	ErasureInterval Duration `yaml:"erasure_interval"`
	// ErasureLease is how long one attempt may hold an erasure before it is
	// tried again (by this gateway after a crash, or by a replica). Default 2m.
	ErasureLease Duration `yaml:"erasure_lease"`
}

// Consent registry backends.
const (
	ConsentsBbolt    = "bbolt"
	ConsentsPostgres = "postgres"
)

// Postgres is the shared consent database. Where it is and how it is reached are
// here, for review; the password comes from the secret provider, never this file.
type Postgres struct {
	// PasswordSecret is the secret reference (path#key) of User's password.
	PasswordSecret string `yaml:"password_secret"`
	// Host is a DNS name, an IP address or a unix socket directory (starting with /).
	Host string `yaml:"host"`
	// Port defaults to 5432.
	Port     int    `yaml:"port"`
	Database string `yaml:"database"`
	User     string `yaml:"user"`
	// SSLMode is verify-full (default), verify-ca, require, or disable (only to a
	// loopback host or a unix socket).
	SSLMode string `yaml:"sslmode"`
	// CAFile holds the PEM roots that verify the server (default: the system roots).
	CAFile string `yaml:"ca_file"`
	// MaxConns bounds each replica's connections (default 10).
	MaxConns int `yaml:"max_conns"`
}

// Keys are secret references of the keys consentgate itself uses.
type Keys struct {
	// SubjectHMAC hashes end-user ids and searchable identifiers (birth number,
	// IIN, document number) in the consent registry and the audit log, so an
	// auditor can search by them without the log holding them.
	SubjectHMAC string `yaml:"subject_hmac"`
	// AuditSigning is the private key (PKCS#8 PEM, Ed25519 or ECDSA P-256) that
	// signs audit checkpoints and exports.
	AuditSigning string `yaml:"audit_signing"`
	// AuditSigningPKCS11, instead of AuditSigning, is an ECDSA P-256 key in an
	// HSM: checkpoints are signed in the token and the key never leaves it.
	AuditSigningPKCS11 *PKCS11Key `yaml:"audit_signing_pkcs11"`
	// FieldHMAC is the key of the "hash" minimisation action.
	FieldHMAC string `yaml:"field_hmac"`
	// TokenVault is the AES-256 key (32 bytes, hex or base64) that wraps each
	// consent's token data key. Required when a policy tokenizes.
	TokenVault string `yaml:"token_vault"`
	// TokenVaultTransit, instead of TokenVault, wraps the data keys with a key
	// of Vault's transit engine, which never leaves Vault (secrets.provider
	// vault; docs/vault.md has the policy it needs).
	TokenVaultTransit *TransitKey `yaml:"token_vault_transit"`
	// TokenVaultPrevious is the token vault key before the last rotation:
	// data keys wrapped under it are wrapped again under TokenVault (at start,
	// in the background, and whenever one is used). Remove it once the log
	// says every key was rewrapped.
	TokenVaultPrevious string `yaml:"token_vault_previous"`
	// TokenVaultNext is the token vault key a rotation is about to make
	// TokenVault: data keys wrapped under it open, and nothing is wrapped
	// under it or rewrapped from it. Set it on every replica first, so that
	// none fails on a key another has already rewrapped (docs/tokens.md).
	TokenVaultNext string `yaml:"token_vault_next"`
	// TokenSeal is the AES-256 key (32 bytes, hex or base64) that seals end
	// users' OAuth2 tokens and PKCE verifiers in state.db. Required when a
	// vendor uses oauth2_authorization_code.
	TokenSeal string `yaml:"token_seal"`
	// TokenSealPrevious is the seal key before the last rotation: tokens that do
	// not open under TokenSeal are opened with it and sealed again under
	// TokenSeal, so end users need not authorise again. Remove it once every
	// stored token has been used (or after the longest refresh-token lifetime).
	TokenSealPrevious string `yaml:"token_seal_previous"`
}

// OAuth configures the authorization-code flows: an app asks for a vendor login
// URL on the admin listener, the end user's browser comes back to the callbacks
// listener at <public_url>/oauth/<vendor>/callback (the gateway listener takes
// nobody without a client certificate).
type OAuth struct {
	// PublicURL is the callbacks listener as end users' browsers reach it
	// (https://host[:port], no path). The redirect URI registered with each
	// vendor is <public_url>/oauth/<vendor>/callback. Required when a vendor
	// uses oauth2_authorization_code.
	PublicURL string `yaml:"public_url"`
	// StateTTL is how long a started authorization may take to come back
	// (default 10m, at most 1h); later, its state is refused.
	StateTTL Duration `yaml:"state_ttl"`
}

// Listen holds the listener addresses (host:port).
type Listen struct {
	Gateway string `yaml:"gateway"`
	Forward string `yaml:"forward"`
	Admin   string `yaml:"admin"`
	// Callbacks is where vendors call back (banqware's update callbacks): server
	// TLS only, because vendors hold no internal certificate. Optional.
	Callbacks string `yaml:"callbacks"`
	// ReadHeaderTimeout bounds how long a client may take to send its request
	// headers (slowloris); default 10s. ReadTimeout bounds the whole request,
	// body included (default 60s); IdleTimeout a kept-alive connection with no
	// request (default 2m). MaxHeaderBytes bounds request headers (default 64 KiB).
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	ReadTimeout       Duration `yaml:"read_timeout"`
	IdleTimeout       Duration `yaml:"idle_timeout"`
	MaxHeaderBytes    int      `yaml:"max_header_bytes"`
}

// TLS is the inbound TLS of every listener: the gateway's serving certificate and
// the internal CA that app certificates must chain to. The serving certificate
// comes from ACME (the default path: obtained and renewed from the internal CA)
// or, for operators with their own PKI, from CertFile and KeyFile.
type TLS struct {
	ACME         *ACME  `yaml:"acme"`
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string `yaml:"min_version"`
	// ForwardCACertFile and ForwardCAKeyFile are the internal CA the forward
	// proxy mints vendor-host certificates with (apps already trust it). Without
	// them the forward listener answers 501.
	ForwardCACertFile string `yaml:"forward_ca_cert_file"`
	ForwardCAKeyFile  string `yaml:"forward_ca_key_file"`
	// ClientCRL is the internal CA's CRL: a client certificate it lists is
	// refused at the handshake on every listener that takes app certificates.
	ClientCRL *ClientCRL `yaml:"client_crl"`
}

// ClientCRL is where the internal CA's CRL is read from, and how often.
type ClientCRL struct {
	// URL is the CA's CRL (`consentgate ca serve`: https://CA/1.0/crl), or
	// File a CRL kept current by other means; exactly one.
	URL  string `yaml:"url"`
	File string `yaml:"file"`
	// IssuerFile is the certificate that signs the CRL: the CA's
	// intermediate, which issues app certificates. A CRL it did not sign is
	// refused, and so is a certificate it did not issue.
	IssuerFile string `yaml:"issuer_file"`
	// CAFile verifies the CA server's certificate (default tls.client_ca_file).
	CAFile string `yaml:"ca_file"`
	// Refresh is how often it is read again (default 30s): a revocation
	// reaches every replica within it.
	Refresh Duration `yaml:"refresh"`
	// FailOpen lets app certificates through while no current CRL is held
	// (none fetched yet, or the last one past its NextUpdate). Default false:
	// every app is refused then.
	FailOpen bool `yaml:"fail_open"`
}

// ACME is how the gateway obtains its serving certificates and renews them
// before they expire: from the ACME directory of the internal CA (`consentgate
// ca serve`, or any step-ca), stored under data_dir.
type ACME struct {
	// Directory is the ACME directory URL, e.g.
	// https://ca.internal:9000/acme/acme/directory.
	Directory string `yaml:"directory"`
	// CARootFile verifies the ACME server's certificate (default:
	// tls.client_ca_file, the internal root).
	CARootFile string `yaml:"ca_root_file"`
	// Names are the DNS names and IP addresses apps reach the gateway by.
	Names []string `yaml:"names"`
	// Email is the ACME account contact (optional).
	Email string `yaml:"email"`
	// Challenge is http-01 (default) or tls-alpn-01. ChallengeListen is where
	// its solver listens while a challenge is pending (default 0.0.0.0:80 or
	// 0.0.0.0:443); the CA must reach it there or through a port forward.
	Challenge       string `yaml:"challenge"`
	ChallengeListen string `yaml:"challenge_listen"`
	// Storage is the folder of certificates, keys and the ACME account
	// (default acme, under data_dir). A restart serves from it without the CA.
	Storage string `yaml:"storage"`
}

// Secrets selects and configures the secret provider.
type Secrets struct {
	// Provider is "file" (dev) or "vault".
	Provider string      `yaml:"provider"`
	File     SecretsFile `yaml:"file"`
	Vault    Vault       `yaml:"vault"`
}

// SecretsFile is the dev file store: a YAML file readable by its owner only.
type SecretsFile struct {
	Path string `yaml:"path"`
}

// Vault configures the Vault provider (KV v2).
type Vault struct {
	Address string `yaml:"address"`
	// Mount is the KV v2 mount, default "secret".
	Mount string `yaml:"mount"`
	// Auth is "token", "approle" or "kubernetes".
	Auth string `yaml:"auth"`
	// AuthMount is where the auth method is enabled (default: approle or
	// kubernetes; unused for token).
	AuthMount  string `yaml:"auth_mount"`
	TokenFile  string `yaml:"token_file"`
	RoleIDFile string `yaml:"role_id_file"`
	// SecretIDFile holds the AppRole secret id; it is read, never logged.
	SecretIDFile string `yaml:"secret_id_file"`
	// Role is the Kubernetes auth role.
	Role string `yaml:"role"`
	// KubernetesTokenFile is the service-account token presented at login,
	// default /var/run/secrets/kubernetes.io/serviceaccount/token.
	KubernetesTokenFile string `yaml:"kubernetes_token_file"`
	CAFile              string `yaml:"ca_file"`
	// RefreshInterval is how often cached secrets are re-read (default 30s).
	RefreshInterval Duration `yaml:"refresh_interval"`
	// MaxStale is how long cached secrets are served while Vault cannot be
	// reached (default 5m); after it, calls needing them get 503.
	MaxStale Duration `yaml:"max_stale"`
}

// Vendor is one vendor profile (configs/vendors/<id>.yaml).
type Vendor struct {
	ID      string `yaml:"id"`
	Name    string `yaml:"name"`
	BaseURL string `yaml:"base_url"`
	// Assumptions records what the vendor's documents leave open and the profile
	// chose (paths, header names), so a reader knows what to confirm.
	Assumptions []string `yaml:"assumptions"`
	Upstream    Upstream `yaml:"upstream"`
	// Egress is how calls leave for the vendor: from a fixed source address,
	// through an HTTP CONNECT proxy, or both. Empty: straight from any address.
	Egress            Egress             `yaml:"egress"`
	Timeouts          Timeouts           `yaml:"timeouts"`
	ClientCertificate *ClientCertificate `yaml:"client_certificate"`
	Credentials       []Credential       `yaml:"credentials"`
	// ErrorFields maps the fields of the vendor's documented error bodies to
	// categories; they are added to every operation's response fields, so that
	// a vendor's error reaches the app without any unmapped field.
	ErrorFields map[string]string `yaml:"error_fields"`
	Operations  []Operation       `yaml:"operations"`
	Quota       Quota             `yaml:"quota"`
	// Enforce false makes every operation of the vendor report-only unless the
	// operation says otherwise. Default true.
	Enforce *bool `yaml:"enforce"`
	// Callback receives the vendor's calls to us (optional).
	Callback *Callback `yaml:"callback"`
	// Erasure says how an end user's data is erased at the vendor when their
	// consent is withdrawn: by the operations with erases, or, when the
	// vendor's documents name no erasure API, not at all, and why.
	Erasure Erasure `yaml:"erasure"`

	File string `yaml:"-"`
	idx  index
}

// Same reports whether v and o configure the same vendor: equal in every
// setting, wherever in which file each is written.
func (v *Vendor) Same(o *Vendor) bool {
	a, b := *v, *o
	a.File, b.File, a.idx, b.idx = "", "", index{}, index{}
	return reflect.DeepEqual(a, b)
}

// Erasure is a vendor's erasure path beyond its erases operations.
type Erasure struct {
	// Unavailable, when set, is why no call erases the end user's data at the
	// vendor (its documents name no erasure API); audit reports show it.
	Unavailable string `yaml:"unavailable"`
}

// Callback is how consentgate receives a vendor's calls: on the callbacks
// listener at /callbacks/<vendor>/<path>, from allowed source addresses only,
// optionally with a client certificate or a shared secret; the body is decided
// and minimised like a response and forwarded to the app that owns it.
type Callback struct {
	// Operation is the id of the profile operation (with callback: true) whose
	// path and fields describe the call.
	Operation string `yaml:"operation"`
	// App is the app the callback is for: the policy decides as for its call.
	App string `yaml:"app"`
	// ForwardURL is the app's internal URL; ForwardCAFile its CA (default: system).
	ForwardURL    string `yaml:"forward_url"`
	ForwardCAFile string `yaml:"forward_ca_file"`
	// AllowSources lists the vendor's source networks (CIDR); others get 403.
	AllowSources []string `yaml:"allow_sources"`
	// SharedSecret (path#key) must arrive in SharedSecretHeader, if set.
	SharedSecret       string `yaml:"shared_secret"`
	SharedSecretHeader string `yaml:"shared_secret_header"`
	// ClientCAFile, if set, requires a vendor client certificate chained to it.
	ClientCAFile string `yaml:"client_ca_file"`
	// URLToken, when set, must arrive as the query parameter URLTokenParam
	// (default consentgate_token) of every callback. consentgate writes it into
	// the callback URLs apps register with the vendor (URLTokenFields), so it
	// authenticates a vendor whose documents offer no other way; the app never
	// sees it. A callback needs one of ClientCAFile, SharedSecret or URLToken.
	URLToken      *Source `yaml:"url_token"`
	URLTokenParam string  `yaml:"url_token_param"`
	// URLTokenFields maps an operation id to the request body fields that
	// carry callback URLs (redirect URLs are not callbacks and stay as sent).
	URLTokenFields map[string][]string `yaml:"url_token_fields"`
	// PublicURL is the callbacks listener as the vendor reaches it: the token
	// is written only into URLs under it, never handed to another host.
	PublicURL string `yaml:"public_url"`
}

// Quota is a vendor's budget as consentgate enforces it, on top of what the
// vendor itself reports in its rate-limit headers. Zero means no limit.
type Quota struct {
	RequestsPerSecond       float64 `yaml:"requests_per_second"`
	Burst                   int     `yaml:"burst"`
	PerAppRequestsPerSecond float64 `yaml:"per_app_requests_per_second"`
	PerAppBurst             int     `yaml:"per_app_burst"`
}

// Upstream is how consentgate trusts the vendor's server.
type Upstream struct {
	// CAFile is a PEM bundle of the vendor's CAs; empty means the system roots.
	CAFile string `yaml:"ca_file"`
	// ServerName overrides the TLS server name (default: the base URL's host).
	ServerName string `yaml:"server_name"`
	// Pin lists internal addresses (loopback, private, link-local, ...) this
	// vendor may resolve to. Without it such addresses are refused: a vendor host
	// that resolves inward is a misconfiguration or a DNS rebinding attack.
	Pin []string `yaml:"pin"`
	// Revocation is what a vendor certificate whose revocation status cannot
	// be had does to the handshake: fail-open (default: it goes on, logged),
	// fail-closed (refused), or off (nothing is checked). A revoked one is
	// refused unless off.
	Revocation string `yaml:"revocation"`
}

// Egress fixes the address the vendor sees calls come from, for vendors that
// allowlist their clients' addresses (banqware does).
type Egress struct {
	// SourceAddress is the local IP address calls are dialled from (to the
	// vendor, or to the proxy); it must be configured on this host.
	SourceAddress string `yaml:"source_address"`
	// Proxy, when set, is the HTTP CONNECT proxy calls leave through.
	Proxy *EgressProxy `yaml:"proxy"`
}

// EgressProxy is an HTTP CONNECT proxy (a NAT gateway's or the company's
// outbound proxy). TLS to the vendor runs inside the tunnel, end to end: the
// proxy sees the vendor's host and port, never the call.
type EgressProxy struct {
	// URL is http://host:port or https://host:port (TLS to the proxy too).
	URL string `yaml:"url"`
	// CAFile verifies an https proxy; empty means the system roots.
	CAFile string `yaml:"ca_file"`
	// Username and Password are sent as Proxy-Authorization Basic with every
	// CONNECT; both or neither. Secrets are read per tunnel, so a rotated
	// password is used from the next connection.
	Username *Source `yaml:"username"`
	Password *Source `yaml:"password"`
}

// DisclosesWhen is a condition on a response: its field (a metadata path)
// holds one of the values.
type DisclosesWhen struct {
	Field  string   `yaml:"field"`
	Equals []string `yaml:"equals"`
}

// Revocation settings of a vendor's certificate (Upstream.Revocation).
const (
	RevocationFailOpen   = "fail-open"
	RevocationFailClosed = "fail-closed"
	RevocationOff        = "off"
)

// Timeouts bound each phase of an upstream call.
type Timeouts struct {
	Dial           Duration `yaml:"dial"`
	TLSHandshake   Duration `yaml:"tls_handshake"`
	ResponseHeader Duration `yaml:"response_header"`
	// Request bounds the whole exchange including the response body.
	Request Duration `yaml:"request"`
	// IdleConn closes kept-alive upstream connections unused for this long.
	IdleConn Duration `yaml:"idle_conn"`
}

// ClientCertificate is the vendor-facing certificate (I.CA, PostSignum, or a
// vendor-issued one). Either Cert and Key, or PKCS12 (with Password).
type ClientCertificate struct {
	Cert     *Source `yaml:"cert"`
	Key      *Source `yaml:"key"`
	PKCS12   *Source `yaml:"pkcs12"`
	Password *Source `yaml:"password"`
	// PKCS11, instead of key, is a private key in an HSM that never leaves it.
	PKCS11 *PKCS11Key `yaml:"pkcs11"`
	// RequireIssuer lists accepted issuer families: "ica", "postsignum".
	RequireIssuer []string `yaml:"require_issuer"`
	// RequireICO refuses a certificate whose subject carries no IČO.
	RequireICO bool `yaml:"require_ico"`
	// Types lists the kinds of certificate the vendor takes: qualified-seal,
	// qualified-company, qualified-personal, server, commercial. Empty takes
	// any whose extended key usage allows client authentication; "server"
	// also takes a TLS server certificate (serverAuth only) as the client's.
	Types []string `yaml:"types"`
}

// PKCS11Key is a private key in a PKCS#11 token (an HSM): the module that
// speaks to the token, the token by label, the key by label or id (hex), and
// the user PIN from the secret store or a file.
type PKCS11Key struct {
	Module     string  `yaml:"module"`
	TokenLabel string  `yaml:"token_label"`
	KeyLabel   string  `yaml:"key_label"`
	KeyID      string  `yaml:"key_id"`
	PIN        *Source `yaml:"pin"`
}

// Source is where a value comes from: exactly one of a secret reference
// ("path#key" in the secret provider) or a file.
type Source struct {
	Secret string `yaml:"secret"`
	File   string `yaml:"file"`
}

// Credential types.
const (
	CredentialAPIKey                  = "api_key"
	CredentialBearer                  = "bearer"
	CredentialOAuth2ClientCredentials = "oauth2_client_credentials"
	// CredentialOAuth2AuthorizationCode is a bearer token the end user grants
	// through the vendor's login page; consentgate brokers the flow, keeps the
	// tokens sealed per consent and refreshes them.
	CredentialOAuth2AuthorizationCode = "oauth2_authorization_code"
)

// Credential is one thing consentgate attaches to a vendor call on the app's
// behalf. The app never holds it; if the app sends it anyway it is removed.
type Credential struct {
	Type string `yaml:"type"`
	// Secret is the reference of the value (api_key, bearer).
	Secret string `yaml:"secret"`
	// Exactly one of Header, Query, BodyField says where an api_key goes.
	Header    string `yaml:"header"`
	Query     string `yaml:"query"`
	BodyField string `yaml:"body_field"`
	// TokenURL, ClientID, ClientSecret and Scopes configure the OAuth2 types;
	// TokenURL may be a path relative to the vendor's base URL.
	TokenURL     string   `yaml:"token_url"`
	ClientID     string   `yaml:"client_id"`
	ClientSecret string   `yaml:"client_secret"`
	Scopes       []string `yaml:"scopes"`
	// AuthorizeURL is the vendor's login page (oauth2_authorization_code), where
	// the end user's browser is sent.
	AuthorizeURL string `yaml:"authorize_url"`
	// PKCE sends an S256 code challenge (RFC 7636) with the authorization and
	// the verifier with the code exchange (oauth2_authorization_code).
	PKCE bool `yaml:"pkce"`
	// Operations limits the credential to these operation ids (default: all).
	Operations []string `yaml:"operations"`
}

// Body kinds of an operation's response.
const (
	BodyJSON   = "json"
	BodyBinary = "binary"
)

// Media types an operation's request body is read as (request_body).
const (
	RequestJSON      = "json"
	RequestForm      = "form"
	RequestMultipart = "multipart"
	RequestNone      = "none"
)

// What happens to an undeclared query parameter, header or body field.
const (
	UndeclaredDrop   = "drop"
	UndeclaredRefuse = "refuse"
)

// Operation is one vendor resource consentgate lets apps call.
type Operation struct {
	ID     string `yaml:"id"`
	Method string `yaml:"method"`
	// DisclosesWhen, when set, lets personal fields of the response through
	// only when the response says the outcome allows it (FinID discloses the
	// person only on a succeeded verification): otherwise only metadata
	// passes, whatever the vendor sent and the policy allowed.
	DisclosesWhen *DisclosesWhen `yaml:"discloses_when"`
	// Requires names request fields that are sent only with all of the
	// fields listed for them: minimisation must not make a request the
	// vendor forbids (Biometric.Vision's skip_input is valid only with both
	// e-document values).
	Requires map[string][]string `yaml:"requires"`
	// Path is a template relative to the base URL's path; {name} matches one segment.
	Path string `yaml:"path"`
	// Body is the response body kind: "json" (default) or "binary".
	Body string `yaml:"body"`
	// RequestBody is the media type the app's request body is read as,
	// whatever its Content-Type claims: json, form, multipart or none.
	// Default: json for POST, PUT and PATCH, none for GET and DELETE.
	RequestBody string `yaml:"request_body"`
	// Undeclared says what becomes of a query parameter, header or body field
	// the operation does not declare: drop (default) or refuse the call.
	Undeclared string `yaml:"undeclared"`
	// MaxRequestBytes bounds the request body (default 1 MiB).
	MaxRequestBytes int64 `yaml:"max_request_bytes"`
	// Enforce false makes the route report-only: a policy deny is logged as
	// would_deny and the call goes through unminimised. Default true.
	Enforce *bool `yaml:"enforce"`
	// Class is "subject" (default: the call is about an end user, under their
	// consent) or "tenant" (it acts on the company's account at the vendor,
	// such as banqware's registered URLs: only apps granted the operation by
	// name may call it, and each call is recorded as an admin action).
	Class string `yaml:"class"`
	// Callback marks an operation the vendor calls (see Vendor.Callback): apps
	// cannot call it through the gateway.
	Callback bool   `yaml:"callback"`
	Fields   Fields `yaml:"fields"`
	// Resources are the vendor ids the operation creates and names: each stays
	// with the end user and app it was created for.
	Resources Resources `yaml:"resources"`
	// Limits bound the structure of a JSON request body; a body past them is
	// refused (400) before anything walks it.
	Limits BodyLimits `yaml:"limits"`
	// Tokens gives response fields' token formats, for a decision that
	// tokenizes their category (default: opaque).
	Tokens map[string]*TokenFormat `yaml:"tokens"`
	// Reveals lists the request fields (body paths, query:<name>,
	// header:<name>) in which an app may send a token back: where the decision
	// reveals them, the token's value goes to the vendor instead.
	Reveals []string `yaml:"reveals"`
	// PerConsent bounds how often one app may call the operation for one end
	// user, across their consents: a verify mode answers whether a guess is
	// right, so without a bound an app could recover the data one guess at a
	// time.
	PerConsent *CallBudget `yaml:"per_consent"`
	// Erases names the kind of resource the operation deletes at the vendor,
	// with what was acquired through it: when a consent is withdrawn, it is
	// called for every such resource bound to the consent.
	Erases string `yaml:"erases"`
}

// TransitKey is a key of Vault's transit engine: its mount (default transit)
// and name. It must be of type aes256-gcm96.
type TransitKey struct {
	Mount string `yaml:"mount"`
	Key   string `yaml:"key"`
}

// TokenFormat is what a field's tokens look like (tokens.Format): opaque
// (prefix and random characters, the default) or preserve (the value's length
// and character classes, keep_prefix and keep_suffix characters kept, check
// digits valid: iban or luhn). Deterministic tokens are the same for the
// same consent, field and value, so an app can join records on them.
type TokenFormat struct {
	Format        string `yaml:"format"`
	Prefix        string `yaml:"prefix"`
	Length        int    `yaml:"length"`
	KeepPrefix    int    `yaml:"keep_prefix"`
	KeepSuffix    int    `yaml:"keep_suffix"`
	Check         string `yaml:"check"`
	Deterministic bool   `yaml:"deterministic"`
}

// CallBudget is a number of calls per window, counted from the first call of
// the window and kept in the consent registry per end user and app (so every
// replica counts together).
type CallBudget struct {
	Calls int      `yaml:"calls"`
	Per   Duration `yaml:"per"`
}

// BodyLimits bound a JSON request body. Zero values take the defaults: depth
// 32, 10,000 object keys, field paths of 512 bytes, arrays of 10,000 elements.
type BodyLimits struct {
	Depth       int `yaml:"depth"`
	Keys        int `yaml:"keys"`
	PathBytes   int `yaml:"path_bytes"`
	ArrayLength int `yaml:"array_length"`
}

// Resources declares an operation's vendor ids by kind (user, consent,
// session: names the profile chooses).
type Resources struct {
	// Creates maps a response field path to the kind of the id it holds.
	Creates map[string]string `yaml:"creates"`
	// References maps where the request names an id (path:<placeholder>,
	// query:<name>, header:<name> or a body field) to its kind.
	References map[string]string `yaml:"references"`
	// Unknown is what becomes of a referenced id consentgate never bound:
	// refuse (default) or allow.
	Unknown string `yaml:"unknown"`
}

// Operation classes.
const (
	ClassSubject = "subject"
	ClassTenant  = "tenant"
)

// What becomes of a referenced id consentgate never bound.
const (
	UnknownRefuse = "refuse"
	UnknownAllow  = "allow"
)

// PathField names a path placeholder among an operation's request fields and
// resource references.
func PathField(name string) string { return "path:" + name }

// Enforced reports whether policy denials are enforced on this operation.
func (o *Operation) Enforced() bool { return o.Enforce == nil || *o.Enforce }

// Fields maps what an operation sends and receives to data categories: body
// fields as dotted paths (`[]` for arrays), query parameters and headers by
// name, path placeholders by name (a placeholder not listed carries an id, not
// personal data).
type Fields struct {
	Request  map[string]string `yaml:"request"`
	Query    map[string]string `yaml:"query"`
	Headers  map[string]string `yaml:"headers"`
	Path     map[string]string `yaml:"path"`
	Response map[string]string `yaml:"response"`
	// ResponseHeaders are the vendor's answer headers that reach the app
	// besides the standard ones (content type, caching, dates, Retry-After,
	// rate limits): ids and statuses only, so every one is metadata.
	ResponseHeaders map[string]string `yaml:"response_headers"`
}

// Categories are the data categories policies speak in.
var Categories = []string{"identity", "contact", "address", "document", "pep",
	"biometric", "account", "card", "national_id", "verification", "metadata"}

// Duration is a time.Duration written as "5s", "250ms".
type Duration struct{ time.Duration }

// UnmarshalYAML parses a Go duration string; the error carries the line.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration such as 5s or 250ms", n.Line, n.Value)
	}
	d.Duration = v
	return nil
}

// MarshalYAML writes the duration back in its string form.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// QueryField and HeaderField name a query parameter and a header among an
// operation's request fields (body fields are dotted paths, which hold no
// colon), so policies and audit records speak of all three alike.
func QueryField(name string) string  { return "query:" + name }
func HeaderField(name string) string { return "header:" + strings.ToLower(name) }

// SentFields maps everything the operation declares it sends to a category:
// body paths, query parameters (QueryField), headers (HeaderField) and path
// placeholders (PathField).
func (o *Operation) SentFields() map[string]string {
	m := make(map[string]string, len(o.Fields.Request)+len(o.Fields.Query)+len(o.Fields.Headers)+len(o.Fields.Path))
	maps.Copy(m, o.Fields.Request)
	for name, c := range o.Fields.Path {
		m[PathField(name)] = c
	}
	for name, c := range o.Fields.Query {
		m[QueryField(name)] = c
	}
	for name, c := range o.Fields.Headers {
		m[HeaderField(name)] = c
	}
	return m
}

// IdentifierField says whether a field holds an identifier: a national id
// (birth number, IIN) or a document number. Auditors search the log by their
// values, and a tokenize:identifiers action tokenizes them.
func IdentifierField(path, category string) bool {
	if category == "national_id" {
		return true
	}
	if category != "document" {
		return false
	}
	last := path[strings.LastIndex(path, ".")+1:]
	return strings.Contains(strings.ToLower(last), "number")
}

// Identifiers are the operation's response fields that hold identifiers
// (IdentifierField), and those it gives a token format (tokens:), which a
// profile names where a field's name does not tell: passportNo. Sorted.
func (o *Operation) Identifiers() []string {
	var out []string
	for path, category := range o.Fields.Response {
		if _, formatted := o.Tokens[path]; formatted || IdentifierField(path, category) {
			out = append(out, path)
		}
	}
	slices.Sort(out)
	return out
}

// Tokens is the format as package tokens reads it; nil is opaque.
func (t *TokenFormat) Tokens() tokens.Format {
	if t == nil {
		return tokens.Format{Kind: tokens.KindOpaque}
	}
	return tokens.Format{Kind: cmp.Or(t.Format, tokens.KindOpaque), Prefix: t.Prefix, Length: t.Length,
		KeepPrefix: t.KeepPrefix, KeepSuffix: t.KeepSuffix, Check: t.Check}
}
