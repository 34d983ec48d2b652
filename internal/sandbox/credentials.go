package sandbox

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
)

// Credentials are the secrets the sandboxes expect; consentgate holds the same values in its
// secret store. None of them is ever written to a log or echoed in a response.
type Credentials struct {
	KBAPIKey            string // kb: header (name configurable, default "apikey")
	KBClientID          string // kb: OAuth2 authorization code (login page, token endpoint)
	KBClientSecret      string
	AirbankAPIKey       string // airbank: header "apikey"
	AirbankClientID     string // airbank: OAuth2 authorization code
	AirbankClientSecret string
	BiometricFlowAPIKey string // biometric: body field api_key / query flow_api_key; 47+ chars
	FinIDClientID       string // finid: OAuth2 client credentials
	FinIDClientSecret   string
}

// biometricKeyMinLen is the shortest flow API key Biometric.Vision issues; a shorter key would
// let a test pass against the sandbox with a value the real vendor never accepts.
const biometricKeyMinLen = 47

// NewCredentials returns fresh random credentials: URL-safe, so they survive headers, form
// bodies and query strings unescaped, and the biometric key as long as the vendor's.
func NewCredentials() (Credentials, error) {
	var c Credentials
	for _, f := range []struct {
		dst   *string
		bytes int
	}{
		{&c.KBAPIKey, 32},
		{&c.KBClientID, 16},
		{&c.KBClientSecret, 32},
		{&c.AirbankAPIKey, 32},
		{&c.AirbankClientID, 16},
		{&c.AirbankClientSecret, 32},
		{&c.BiometricFlowAPIKey, 48}, // 64 characters
		{&c.FinIDClientID, 16},
		{&c.FinIDClientSecret, 32},
	} {
		s, err := randomSecret(f.bytes)
		if err != nil {
			return Credentials{}, fmt.Errorf("generating sandbox credentials: %w", err)
		}
		*f.dst = s
	}
	return c, nil
}

func (c Credentials) validate() error {
	for _, f := range []struct{ name, value string }{
		{"KBAPIKey", c.KBAPIKey},
		{"KBClientID", c.KBClientID},
		{"KBClientSecret", c.KBClientSecret},
		{"AirbankAPIKey", c.AirbankAPIKey},
		{"AirbankClientID", c.AirbankClientID},
		{"AirbankClientSecret", c.AirbankClientSecret},
		{"BiometricFlowAPIKey", c.BiometricFlowAPIKey},
		{"FinIDClientID", c.FinIDClientID},
		{"FinIDClientSecret", c.FinIDClientSecret},
	} {
		// An empty expected secret would make a request without the credential look correct.
		if f.value == "" {
			return fmt.Errorf("sandbox credentials: %s is empty", f.name)
		}
	}
	if n := len(c.BiometricFlowAPIKey); n < biometricKeyMinLen {
		return fmt.Errorf("sandbox credentials: BiometricFlowAPIKey has %d characters, Biometric.Vision keys have at least %d", n, biometricKeyMinLen)
	}
	return nil
}

func randomSecret(bytes int) (string, error) {
	b := make([]byte, bytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// secretEqual compares in constant time so the sandbox does not teach timing attacks by example.
func secretEqual(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// bearerToken returns the token of an "Authorization: Bearer" header; the scheme is
// case-insensitive (RFC 7235), anything else counts as no token.
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
