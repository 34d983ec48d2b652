package configs

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const oauthMain = `node: n1
trust_domain: example.test
data_dir: /tmp/x
listen:
  gateway: 127.0.0.1:8443
  callbacks: 127.0.0.1:8445
tls:
  cert_file: a.crt
  key_file: a.key
  client_ca_file: ca.crt
secrets:
  provider: file
  file:
    path: s.yaml
policy:
  dir: policies
keys:
  subject_hmac: consentgate/keys#subject_hmac
  field_hmac: consentgate/keys#field_hmac
  audit_signing: consentgate/keys#audit_signing
  token_seal: consentgate/keys#token_seal
oauth:
  public_url: https://gw.example.test
vendors:
  - v.yaml
`

const oauthVendor = `id: acme
base_url: https://api.acme.test
credentials:
  - type: oauth2_authorization_code
    authorize_url: https://login.acme.test/authorize
    token_url: /oauth/token
    client_id: vendors/acme#client_id
    client_secret: vendors/acme#client_secret
    scopes: [identity]
    pkce: true
operations:
  - id: acme.get
    method: GET
    path: /v1/things/{id}
`

func TestOAuthConfigGood(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "main.yaml"), oauthMain)
	write(t, filepath.Join(dir, "v.yaml"), oauthVendor)
	cfg, err := Load(filepath.Join(dir, "main.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ac := cfg.Vendor("acme").AuthorizationCode()
	if ac == nil || !ac.PKCE || ac.AuthorizeURL != "https://login.acme.test/authorize" || ac.Scopes[0] != "identity" {
		t.Errorf("credential %+v", ac)
	}
	if cfg.OAuth.StateTTL.Duration != 10*time.Minute {
		t.Errorf("state_ttl default %s", cfg.OAuth.StateTTL)
	}
}

func TestOAuthConfigErrors(t *testing.T) {
	repl := func(s, old, new string) string {
		if !strings.Contains(s, old) {
			panic("test edit does not apply: " + old)
		}
		return strings.Replace(s, old, new, 1)
	}
	tests := []struct {
		name         string
		main, vendor string
		want         string
	}{
		{"no public url", repl(oauthMain, "oauth:\n  public_url: https://gw.example.test\n", ""), oauthVendor,
			"main.yaml:1: oauth.public_url: is required: vendor acme uses oauth2_authorization_code"},
		{"no callbacks listener", repl(oauthMain, "  callbacks: 127.0.0.1:8445\n", ""), oauthVendor,
			"main.yaml:4: listen.callbacks: is required: vendor acme uses oauth2_authorization_code, and end users' browsers come back to the callbacks listener"},
		{"no seal key", repl(oauthMain, "  token_seal: consentgate/keys#token_seal\n", ""), oauthVendor,
			"main.yaml:17: keys.token_seal: is required: vendor acme uses oauth2_authorization_code"},
		{"bad seal key ref", repl(oauthMain, "keys#token_seal", "keys"), oauthVendor,
			"main.yaml:21: keys.token_seal: is not a secret reference"},
		{"previous seal key ref", repl(oauthMain, "  token_seal: consentgate/keys#token_seal\n", "  token_seal: consentgate/keys#token_seal\n  token_seal_previous: consentgate/keys\n"), oauthVendor,
			"main.yaml:22: keys.token_seal_previous: is not a secret reference"},
		{"previous seal key alone", repl(oauthMain, "  token_seal: consentgate/keys#token_seal\n", "  token_seal_previous: consentgate/keys#old\n"), oauthVendor,
			"main.yaml:21: keys.token_seal_previous: needs keys.token_seal"},
		{"public url with a path", repl(oauthMain, "gw.example.test", "gw.example.test/base"), oauthVendor,
			"main.yaml:23: oauth.public_url: \"https://gw.example.test/base\" must be scheme, host and port only"},
		{"public url in clear", repl(oauthMain, "https://gw.example.test", "http://gw.example.test"), oauthVendor,
			"main.yaml:23: oauth.public_url: \"http://gw.example.test\" is not an https URL"},
		{"state ttl too long", repl(oauthMain, "gw.example.test\n", "gw.example.test\n  state_ttl: 2h\n"), oauthVendor,
			"main.yaml:24: oauth.state_ttl: 2h0m0s is outside 10s..1h"},
		{"apps of an earlier version", repl(oauthMain, "vendors:\n", "apps:\n  - id: web\n    oauth_return_to: [https://app.example.test/done/]\nvendors:\n"), oauthVendor,
			"main.yaml:24: apps: apps are defined once, in the policy data: move each app's oauth_return_to to data.yaml, apps.<id>.oauth_return_to"},
		{"login page in clear", oauthMain, repl(oauthVendor, "https://login", "http://login"),
			"v.yaml:5: credentials[0].authorize_url: \"http://login.acme.test/authorize\" is not an https URL"},
		{"token endpoint on another host", oauthMain, repl(oauthVendor, "token_url: /oauth/token", "token_url: https://evil.test/token"),
			"v.yaml:6: credentials[0].token_url: \"https://evil.test/token\" must be on the base URL's host"},
		{"token endpoint not a path", oauthMain, repl(oauthVendor, "token_url: /oauth/token", "token_url: oauth/token"),
			"v.yaml:6: credentials[0].token_url: \"oauth/token\" must be a path starting with /"},
		{"no client secret", oauthMain, repl(oauthVendor, "    client_secret: vendors/acme#client_secret\n", ""),
			"v.yaml:4: credentials[0].client_secret: is not a secret reference"},
		{"scope with a space", oauthMain, repl(oauthVendor, "[identity]", `["a b"]`),
			"v.yaml:9: credentials[0].scopes[0]: \"a b\" is not an OAuth2 scope"},
		{"pkce on an api key", oauthMain, repl(goodVendor, "header: apikey", "header: apikey\n    pkce: true"),
			"v.yaml:4: credentials[0]: authorize_url and pkce only apply to type oauth2_authorization_code"},
		{"two end-user logins", oauthMain, repl(oauthVendor, "operations:", "  - type: oauth2_authorization_code\n    authorize_url: https://x.test/\n    token_url: /t\n    client_id: a#b\n    client_secret: a#c\noperations:"),
			"v.yaml:11: credentials[1]: a vendor has at most one oauth2_authorization_code credential"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "main.yaml"), tt.main)
			write(t, filepath.Join(dir, "v.yaml"), tt.vendor)
			_, err := Load(filepath.Join(dir, "main.yaml"))
			if err == nil {
				t.Fatal("no error")
			}
			if want := dir + string(filepath.Separator) + tt.want; !strings.Contains(err.Error(), want) {
				t.Errorf("error\n%v\ndoes not contain\n%s", err, want)
			}
		})
	}
}

// A configuration without end-user logins needs none of it.
func TestOAuthConfigNotRequiredWithoutLogins(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "main.yaml"), goodMain)
	write(t, filepath.Join(dir, "v.yaml"), goodVendor)
	if _, err := Load(filepath.Join(dir, "main.yaml")); err != nil {
		t.Fatal(err)
	}
}
