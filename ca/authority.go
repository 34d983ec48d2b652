package ca

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/consentgate/consentgate/certs"
	"github.com/smallstep/certificates/authority"
	"github.com/smallstep/certificates/authority/config"
	"github.com/smallstep/certificates/authority/provisioner"
	"github.com/smallstep/certificates/db"
	"github.com/smallstep/cli-utils/token"
	"github.com/smallstep/cli-utils/token/provision"
	"go.step.sm/crypto/jose"
	"go.step.sm/crypto/keyutil"
	"go.step.sm/crypto/x509util"
)

// Provisioner names of the internal CA. The ACME directory of a CA served at
// https://HOST:PORT is https://HOST:PORT/acme/acme/directory.
const (
	// ACMEProvisioner issues the gateway's serving certificates (http-01 or
	// tls-alpn-01 challenges).
	ACMEProvisioner = "acme"
	// AppProvisioner (JWK, password-protected key) issues app, auditor and
	// admin client certificates: `consentgate certs issue` and `step ca
	// certificate --provisioner consentgate-apps` both use it.
	AppProvisioner = "consentgate-apps"
)

// Validity of app certificates: the default when none is asked for, and the
// most the app provisioner signs.
const (
	DefaultAppValidity = 30 * 24 * time.Hour
	MaxAppValidity     = 90 * 24 * time.Hour
)

// Files of an internal CA folder besides the hierarchy.
const (
	authoritySettingsFile = "authority.json"
	authorityDBFile       = "ca.db"
	// DefaultPasswordFile holds the password of the app provisioner's key.
	DefaultPasswordFile = "provisioner-password"
)

// AuthorityOptions configure an embedded step-ca authority.
type Options struct {
	// Dir holds the root and intermediate (ca.crt, intermediate.crt and their
	// keys), the bbolt database and the provisioner settings.
	Dir string
	// Name prefixes the CA certificates' common names when they are created.
	Name string
	// TrustDomain is the SPIFFE trust domain app certificates are issued in.
	// It is recorded when the CA is created; a different one later is refused.
	TrustDomain string
	// Address is where the CA serves (host:port) and DNSNames the names and
	// IPs its own HTTPS certificate carries.
	Address  string
	DNSNames []string
	// PasswordFile holds the password of the app provisioner's key; it is
	// created (random, mode 0600) with the CA. Default Dir/provisioner-password.
	PasswordFile string
	// Logger receives the CA's events; nil discards.
	Logger *slog.Logger
}

// Authority is an embedded smallstep certificate authority: an ACME
// provisioner for serving certificates and a JWK provisioner for app
// certificates, its state in a bbolt database under Dir.
type Authority struct {
	auth *authority.Authority
	h    *certs.Hierarchy
	o    Options
	jwk  *jose.JSONWebKey // the app provisioner's decrypted signing key
	log  *slog.Logger

	mu      sync.Mutex
	tlsCert *tls.Certificate // the CA server's own, renewed by serverCertificate
}

// authoritySettings is what the CA records about itself beside its keys.
type authoritySettings struct {
	TrustDomain string           `json:"trust_domain"`
	Key         *jose.JSONWebKey `json:"provisioner_key"`
	// EncryptedKey is the provisioner's private key as a JWE under the
	// password; the step CLI fetches and decrypts it the same way.
	EncryptedKey string `json:"provisioner_encrypted_key"`
}

// OpenAuthority opens (creating on first use) the internal CA in o.Dir. The
// database is locked while the Authority is open: close it with Close.
func Open(o Options) (*Authority, error) {
	if o.Name == "" {
		o.Name = "consentgate"
	}
	if o.PasswordFile == "" {
		o.PasswordFile = filepath.Join(o.Dir, DefaultPasswordFile)
	}
	if o.Address == "" || len(o.DNSNames) == 0 {
		return nil, errors.New("internal CA: an address and at least one DNS name are required")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h, err := certs.LoadOrCreateHierarchy(o.Dir, o.Name)
	if err != nil {
		return nil, err
	}
	s, password, err := loadOrCreateSettings(o)
	if err != nil {
		return nil, fmt.Errorf("internal CA: %w", err)
	}
	jwk, err := decryptKey(s.EncryptedKey, password)
	if err != nil {
		return nil, fmt.Errorf("internal CA: provisioner key: %w (is %s the password the CA was created with?)", err, o.PasswordFile)
	}
	o.TrustDomain = s.TrustDomain
	cfg := &config.Config{
		Root:             []string{filepath.Join(o.Dir, certs.RootCert)},
		IntermediateCert: filepath.Join(o.Dir, certs.IntermediateCert),
		IntermediateKey:  certs.KeyFile(filepath.Join(o.Dir, certs.IntermediateCert)),
		Address:          o.Address,
		DNSNames:         o.DNSNames,
		CommonName:       o.Name + " CA",
		DB:               &db.Config{Type: "bbolt", DataSource: filepath.Join(o.Dir, authorityDBFile)},
		// A CRL, signed by the intermediate and served at /1.0/crl, made
		// again at each revocation: gateways fetch it and refuse what it lists.
		CRL: &config.CRLConfig{Enabled: true, GenerateOnRevoke: true,
			CacheDuration: &provisioner.Duration{Duration: CRLValidity}},
		AuthorityConfig: &config.AuthConfig{
			Provisioners: provisioner.List{
				&provisioner.ACME{Type: "ACME", Name: ACMEProvisioner,
					Challenges: []provisioner.ACMEChallenge{provisioner.HTTP_01, provisioner.TLS_ALPN_01}},
				&provisioner.JWK{Type: "JWK", Name: AppProvisioner, Key: s.Key, EncryptedKey: s.EncryptedKey,
					Claims: &provisioner.Claims{
						MinTLSDur:     &provisioner.Duration{Duration: 5 * time.Minute},
						MaxTLSDur:     &provisioner.Duration{Duration: MaxAppValidity},
						DefaultTLSDur: &provisioner.Duration{Duration: DefaultAppValidity},
					},
					Options: &provisioner.Options{X509: &provisioner.X509Options{Template: appTemplate(s.TrustDomain)}}},
			},
		},
	}
	auth, err := authority.New(cfg, authority.WithQuietInit())
	if err != nil {
		return nil, fmt.Errorf("starting internal CA in %s: %w", o.Dir, err)
	}
	return &Authority{auth: auth, h: h, o: o, jwk: jwk, log: log}, nil
}

// Close releases the database.
func (a *Authority) Close() error { return a.auth.Shutdown() }

// Root is the certificate every app and gateway trusts.
func (a *Authority) Root() *x509.Certificate { return a.h.Root }

// RootFile is the path of the root certificate (PEM).
func (a *Authority) RootFile() string { return filepath.Join(a.o.Dir, certs.RootCert) }

// TrustDomain is the SPIFFE trust domain of the app certificates it issues.
func (a *Authority) TrustDomain() string { return a.o.TrustDomain }

// Fingerprint is the SHA-256 fingerprint of the root, as `step ca bootstrap
// --fingerprint` wants it.
func (a *Authority) Fingerprint() string { return x509util.Fingerprint(a.h.Root) }

// AppURI is the SPIFFE id of an app certificate: spiffe://<trust domain>/<role>/<name>.
func AppURI(trustDomain, role, name string) string {
	return "spiffe://" + trustDomain + "/" + role + "/" + name
}

// IssueApp issues a client certificate for role and name through the app
// provisioner, exactly as `step ca certificate` would: a one-time token signed
// with the provisioner key, then the provisioner's template and limits. The
// chain is leaf then intermediate. A zero validity means DefaultAppValidity.
func (a *Authority) IssueApp(ctx context.Context, role, name string, validity time.Duration) (*tls.Certificate, error) {
	if validity == 0 {
		validity = DefaultAppValidity
	}
	key, err := keyutil.GenerateDefaultSigner()
	if err != nil {
		return nil, err
	}
	uri := AppURI(a.o.TrustDomain, role, name)
	csr, err := x509util.CreateCertificateRequest(name, []string{uri}, key)
	if err != nil {
		return nil, err
	}
	tok, err := a.token(name, []string{uri})
	if err != nil {
		return nil, err
	}
	p, err := a.auth.LoadProvisionerByName(AppProvisioner)
	if err != nil {
		return nil, err
	}
	ctx = provisioner.NewContextWithMethod(ctx, provisioner.SignMethod)
	opts, err := p.AuthorizeSign(ctx, tok)
	if err != nil {
		return nil, fmt.Errorf("issuing %s: %w", uri, err)
	}
	chain, err := a.auth.SignWithContext(ctx, csr, provisioner.SignOptions{NotAfter: provisioner.NewTimeDuration(time.Now().Add(validity))}, opts...)
	if err != nil {
		return nil, fmt.Errorf("issuing %s: %w", uri, err)
	}
	cert := &tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, c := range chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	a.log.Info("issued app certificate", "id", uri, "serial", chain[0].SerialNumber.String(), "not_after", chain[0].NotAfter)
	return cert, nil
}

// token is a one-time token of the app provisioner, addressed to this CA.
func (a *Authority) token(subject string, sans []string) (string, error) {
	id := make([]byte, 32)
	if _, err := rand.Read(id); err != nil {
		return "", err
	}
	now := time.Now()
	tok, err := provision.New(subject,
		token.WithJWTID(hex.EncodeToString(id)),
		token.WithKid(a.jwk.KeyID),
		token.WithIssuer(AppProvisioner),
		token.WithAudience("https://"+a.o.DNSNames[0]+"/1.0/sign"),
		token.WithValidity(now, now.Add(5*time.Minute)),
		token.WithSANS(sans),
		token.WithSHA(a.Fingerprint()))
	if err != nil {
		return "", err
	}
	return tok.SignedString(a.jwk.Algorithm, a.jwk.Key)
}

// appTemplate is the app provisioner's certificate template. It refuses
// anything but one SPIFFE id of our trust domain with a known role, whose last
// element is the common name, and makes a client-only certificate: an app
// certificate can never serve TLS.
func appTemplate(trustDomain string) string {
	re := "^spiffe://" + regexp.QuoteMeta(trustDomain) + "/(app|auditor|admin)/[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
	return `{{- if ne (len .SANs) 1 }}{{ fail "an app certificate carries exactly one SAN: spiffe://` + trustDomain + `/<role>/<name>" }}{{ end }}
{{- $id := index .SANs 0 }}
{{- if or (ne $id.Type "uri") (not (regexMatch ` + strconv.Quote(re) + ` $id.Value)) }}{{ fail "the SAN must be spiffe://` + trustDomain + `/<app|auditor|admin>/<name>" }}{{ end }}
{{- if ne .Subject.CommonName (base $id.Value) }}{{ fail "the subject must be the name the SPIFFE id ends with" }}{{ end }}
{
	"subject": {"commonName": {{ toJson .Subject.CommonName }}},
	"sans": {{ toJson .SANs }},
	"keyUsage": ["digitalSignature"],
	"extKeyUsage": ["clientAuth"]
}`
}

// loadOrCreateSettings reads Dir/authority.json, or creates it with a new
// provisioner key (and a new password file when there is none).
func loadOrCreateSettings(o Options) (*authoritySettings, []byte, error) {
	file := filepath.Join(o.Dir, authoritySettingsFile)
	data, err := os.ReadFile(file)
	if err == nil {
		var s authoritySettings
		if err := json.Unmarshal(data, &s); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", file, err)
		}
		if o.TrustDomain != "" && o.TrustDomain != s.TrustDomain {
			return nil, nil, fmt.Errorf("%s: the CA issues for trust domain %q, not %q", file, s.TrustDomain, o.TrustDomain)
		}
		password, err := readPassword(o.PasswordFile)
		return &s, password, err
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	if o.TrustDomain == "" {
		return nil, nil, fmt.Errorf("creating the CA in %s needs the trust domain of app certificates", o.Dir)
	}
	password, err := readPassword(o.PasswordFile)
	if errors.Is(err, fs.ErrNotExist) {
		secret := make([]byte, 24)
		if _, err := rand.Read(secret); err != nil {
			return nil, nil, err
		}
		password = []byte(hex.EncodeToString(secret))
		if err := certs.WriteNewFile(o.PasswordFile, append(password, '\n'), 0o600); err != nil {
			return nil, nil, err
		}
	} else if err != nil {
		return nil, nil, err
	}
	pub, jwe, err := jose.GenerateDefaultKeyPair(password)
	if err != nil {
		return nil, nil, err
	}
	enc, err := jwe.CompactSerialize()
	if err != nil {
		return nil, nil, err
	}
	s := &authoritySettings{TrustDomain: o.TrustDomain, Key: pub, EncryptedKey: enc}
	data, err = json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	if err := certs.WriteNewFile(file, data, 0o600); err != nil {
		return nil, nil, err
	}
	return s, password, nil
}

func readPassword(file string) ([]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("provisioner password: %w", err)
	}
	p := strings.TrimRight(string(data), "\r\n")
	if p == "" {
		return nil, fmt.Errorf("provisioner password file %s is empty", file)
	}
	return []byte(p), nil
}

// decryptedKeys remembers provisioner keys this process has decrypted, by
// their ciphertext and password: the KDF is deliberately slow (600,000 PBKDF2
// rounds), and a process that opens the same CA again (dev restarts, tests)
// should pay it once. The Authority holds the same key for its lifetime anyway.
var decryptedKeys sync.Map // sha256(encrypted, password) -> *jose.JSONWebKey

func decryptKey(encrypted string, password []byte) (*jose.JSONWebKey, error) {
	h := sha256.New()
	h.Write([]byte(encrypted))
	h.Write([]byte{0})
	h.Write(password)
	id := string(h.Sum(nil))
	if k, ok := decryptedKeys.Load(id); ok {
		return k.(*jose.JSONWebKey), nil
	}
	jwk, err := decryptKeySlow(encrypted, password)
	if err != nil {
		return nil, err
	}
	decryptedKeys.Store(id, jwk)
	return jwk, nil
}

func decryptKeySlow(encrypted string, password []byte) (*jose.JSONWebKey, error) {
	enc, err := jose.ParseEncrypted(encrypted)
	if err != nil {
		return nil, err
	}
	data, err := enc.Decrypt(password)
	if err != nil {
		return nil, err
	}
	var jwk jose.JSONWebKey
	if err := json.Unmarshal(data, &jwk); err != nil {
		return nil, err
	}
	return &jwk, nil
}

// EnsureApp keeps an app certificate file current: it issues a new one (chain
// to certFile, key to KeyFile(certFile)) when the file is missing, does not
// chain to this CA, or has less than renewBefore left. It reports whether it
// issued.
func (a *Authority) EnsureApp(ctx context.Context, certFile, role, name string, validity, renewBefore time.Duration) (bool, error) {
	if pair, err := tls.LoadX509KeyPair(certFile, certs.KeyFile(certFile)); err == nil && a.current(pair, role, name, renewBefore) {
		return false, nil
	}
	cert, err := a.IssueApp(ctx, role, name, validity)
	if err != nil {
		return false, err
	}
	if err := certs.WriteKeyPair(certFile, cert); err != nil {
		return false, fmt.Errorf("writing %s: %w", certFile, err)
	}
	return true, nil
}

// current reports whether pair is this CA's certificate for role and name
// with more than renewBefore left.
func (a *Authority) current(pair tls.Certificate, role, name string, renewBefore time.Duration) bool {
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(a.h.Root)
	for _, der := range pair.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	leaf := pair.Leaf
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return false
	}
	return len(leaf.URIs) == 1 && leaf.URIs[0].String() == AppURI(a.o.TrustDomain, role, name) &&
		time.Until(leaf.NotAfter) > renewBefore
}
