package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestShippedConfigsLoad(t *testing.T) {
	for _, name := range []string{"dev.yaml", "consentgate.yaml"} {
		cfg, err := LoadFS(FS, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := len(cfg.Vendors); got != 5 {
			t.Errorf("%s: %d vendors, want 5", name, got)
		}
		for _, id := range []string{"kb", "airbank", "biometric", "finid", "banqware"} {
			if cfg.Vendor(id) == nil {
				t.Errorf("%s: vendor %s missing", name, id)
			}
		}
	}
}

func TestDefaultsApplied(t *testing.T) {
	cfg, err := LoadFS(FS, "dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	op := cfg.Vendor("airbank").Operations[0]
	if op.Body != BodyJSON || op.MaxRequestBytes != DefaultMaxRequestBytes {
		t.Errorf("operation defaults not applied: body %q max %d", op.Body, op.MaxRequestBytes)
	}
	if cfg.Vendor("biometric").Timeouts.IdleConn.Duration == 0 {
		t.Error("idle_conn default not applied")
	}
}

const goodMain = `node: n1
trust_domain: example.test
data_dir: /tmp/x
listen:
  gateway: 127.0.0.1:8443
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
vendors:
  - v.yaml
`

const goodVendor = `id: acme
base_url: https://api.acme.test
credentials:
  - type: api_key
    secret: vendors/acme#key
    header: apikey
    operations: [acme.get]
operations:
  - id: acme.get
    method: GET
    path: /v1/things/{id}
    fields:
      response:
        name: identity
`

// vaultMain is goodMain with the Vault provider (AppRole).
var vaultMain = strings.Replace(goodMain, "  provider: file\n  file:\n    path: s.yaml\n", `  provider: vault
  vault:
    address: https://vault.test:8200
    auth: approle
    role_id_file: role-id
    secret_id_file: secret-id
    max_stale: 10s
    refresh_interval: 3s
`, 1)

func TestLoadErrorsNameFileLineField(t *testing.T) {
	tests := []struct {
		name         string
		main, vendor string
		want         string
	}{
		{"unknown main key", strings.Replace(goodMain, "node: n1", "node: n1\ncolour: red", 1), goodVendor,
			"main.yaml:2: colour: unknown field"},
		{"misspelt nested key", strings.Replace(goodMain, "  cert_file:", "  certfile:", 1), goodVendor,
			"main.yaml:7: tls.certfile: unknown field"},
		{"bad listen address", strings.Replace(goodMain, "127.0.0.1:8443", "nonsense", 1), goodVendor,
			"main.yaml:5: listen.gateway: \"nonsense\" is not host:port"},
		{"unknown provider", strings.Replace(goodMain, "provider: file", "provider: etcd", 1), goodVendor,
			"main.yaml:11: secrets.provider: \"etcd\" is unknown"},
		{"missing vendor file", strings.Replace(goodMain, "- v.yaml", "- nope.yaml", 1), goodVendor,
			"main.yaml:21: vendors[0]: cannot read vendor profile nope.yaml"},
		{"unknown vendor key", goodMain, strings.Replace(goodVendor, "    method: GET", "    mehtod: GET", 1),
			"v.yaml:10: operations[0].mehtod: unknown field"},
		{"http base url", goodMain, strings.Replace(goodVendor, "https://", "http://", 1),
			"v.yaml:2: base_url: must use https"},
		{"bad secret reference", goodMain, strings.Replace(goodVendor, "vendors/acme#key", "vendors/acme", 1),
			"v.yaml:5: credentials[0].secret: is not a secret reference"},
		// A key pasted where its reference belongs is not repeated in the error.
		{"pasted secret", goodMain, strings.Replace(goodVendor, "vendors/acme#key", "sk_live_9f8e7d6c5b4a", 1),
			"v.yaml:5: credentials[0].secret: is not a secret reference of the form path#key (the value is not shown"},
		{"credential names missing operation", goodMain, strings.Replace(goodVendor, "[acme.get]", "[acme.put]", 1),
			"v.yaml:7: credentials[0].operations[0]: operation \"acme.put\" is not defined"},
		{"bad category", goodMain, strings.Replace(goodVendor, "name: identity", "name: secrets", 1),
			"v.yaml:14: operations[0].fields.response.name: \"secrets\" is not a data category"},
		{"bad duration", goodMain, goodVendor + "timeouts:\n  dial: soon\n",
			"v.yaml:16: timeouts.dial: \"soon\" is not a duration"},
		{"wrong type", goodMain, strings.Replace(goodVendor, "fields:", "max_request_bytes: lots\n    fields:", 1),
			"v.yaml:12: operations[0].max_request_bytes: cannot unmarshal"},
		{"operation id of other vendor", goodMain, strings.Replace(goodVendor, "id: acme.get", "id: other.get", 1),
			"v.yaml:9: operations[0].id: \"other.get\" must start with the vendor id"},
		{"bad path placeholder", goodMain, strings.Replace(goodVendor, "{id}", "{id", 1),
			"v.yaml:11: operations[0].path: segment \"{id\""},
		{"two credential places", goodMain, strings.Replace(goodVendor, "header: apikey", "header: apikey\n    query: k", 1),
			"v.yaml:4: credentials[0]: an api_key goes in exactly one of header, query or body_field"},
		{"negative reserve", goodMain + "audit:\n  reserve_bytes: -5\n", goodVendor,
			"main.yaml:23: audit.reserve_bytes: must be -1 (no reserve), 0 (the default, 256 MiB) or a number of bytes"},
		{"syntax error", goodMain + "  - [unclosed\n", goodVendor,
			"main.yaml:21: did not find expected"},
		{"no policy", strings.Replace(goodMain, "  dir: policies", "  timeout: 10ms", 1), goodVendor,
			"main.yaml:14: policy: needs dir or bundle"},
		{"plain http bundle", strings.Replace(goodMain, "  dir: policies", "  bundle: http://opa.internal/b.tar.gz", 1), goodVendor,
			"main.yaml:15: policy.bundle: \"http://opa.internal/b.tar.gz\": a bundle URL must use https"},
		{"vault max_stale not longer than refresh", strings.Replace(vaultMain, "max_stale: 10s", "max_stale: 2s", 1), goodVendor,
			"main.yaml:17: secrets.vault.max_stale: 2s is not longer than refresh_interval 3s"},
		{"vault unknown auth", strings.Replace(vaultMain, "auth: approle", "auth: ldap", 1), goodVendor,
			"main.yaml:14: secrets.vault.auth: \"ldap\" is unknown: use token, approle or kubernetes"},
		{"vault approle without secret id", strings.Replace(vaultMain, "    secret_id_file: secret-id\n", "", 1), goodVendor,
			"main.yaml:14: secrets.vault.auth: approle needs role_id_file and secret_id_file"},
		{"vault kubernetes without role", strings.Replace(vaultMain, "auth: approle", "auth: kubernetes", 1), goodVendor,
			"main.yaml:12: secrets.vault.role: is required for auth kubernetes"},
		{"vault token without file", strings.Replace(vaultMain, "auth: approle", "auth: token", 1), goodVendor,
			"main.yaml:12: secrets.vault.token_file: is required for auth token"},
		{"vault bad mount", strings.Replace(vaultMain, "    auth: approle", "    mount: /secret/\n    auth: approle", 1), goodVendor,
			"main.yaml:14: secrets.vault.mount: \"/secret/\" is not a mount path"},
		{"vault plain address", strings.Replace(vaultMain, "https://vault.test:8200", "vault.test:8200", 1), goodVendor,
			"main.yaml:13: secrets.vault.address: \"vault.test:8200\" is not an http(s) URL"},
		{"policy queue wait too long", strings.Replace(goodMain, "  dir: policies", "  dir: policies\n  queue_wait: 1m", 1), goodVendor,
			"main.yaml:16: policy.queue_wait: 1m0s: must be between 0 and 30s"},
		{"negative policy concurrency", strings.Replace(goodMain, "  dir: policies", "  dir: policies\n  max_concurrent: -2", 1), goodVendor,
			"main.yaml:16: policy.max_concurrent: -2: must be positive"},
		{"bad source address", goodMain, goodVendor + "egress:\n  source_address: 127.0.0.300\n",
			"v.yaml:16: egress.source_address: \"127.0.0.300\" is not an IP address"},
		{"proxy URL with credentials", goodMain, goodVendor + "egress:\n  proxy:\n    url: http://u:p@proxy:3128\n",
			"v.yaml:17: egress.proxy.url: must not carry credentials"},
		{"proxy URL with credentials and no port", goodMain, goodVendor + "egress:\n  proxy:\n    url: http://u:s3cret@proxy\n",
			"v.yaml:17: egress.proxy.url: must not carry credentials"},
		{"4-in-6 source address", goodMain, goodVendor + "egress:\n  source_address: \"::ffff:127.0.0.2\"\n",
			"v.yaml:16: egress.source_address: \"::ffff:127.0.0.2\" is an IPv4 address in IPv6 form: write it as 127.0.0.2"},
		{"credentials to a remote http proxy", goodMain, goodVendor + "egress:\n  proxy:\n    url: http://proxy.corp:3128\n    username: {secret: egress/proxy#user}\n    password: {secret: egress/proxy#password}\n",
			"v.yaml:17: egress.proxy.url: credentials would cross the network in clear"},
		{"pin with a proxy", goodMain, strings.Replace(goodVendor, "base_url: https://api.acme.test\n", "base_url: https://api.acme.test\nupstream:\n  pin: [10.0.0.1]\n", 1) + "egress:\n  proxy:\n    url: https://proxy.corp:3128\n",
			"v.yaml:4: upstream.pin: is not used with egress.proxy"},
		{"proxy URL without port", goodMain, goodVendor + "egress:\n  proxy:\n    url: http://proxy\n",
			"v.yaml:17: egress.proxy.url: \"http://proxy\" is not http://host:port"},
		{"socks proxy", goodMain, goodVendor + "egress:\n  proxy:\n    url: socks5://proxy:1080\n",
			"v.yaml:17: egress.proxy.url: scheme \"socks5\": use http or https"},
		{"proxy username without password", goodMain, goodVendor + "egress:\n  proxy:\n    url: http://proxy:3128\n    username: {secret: egress/proxy#user}\n",
			"v.yaml:16: egress.proxy: username and password must both be given, or neither"},
		{"token vault key twice", strings.Replace(goodMain, "vendors:", "  token_vault: consentgate/keys#token_vault\n  token_vault_transit: {key: consentgate-tokens}\nvendors:", 1), goodVendor,
			"main.yaml:21: keys.token_vault_transit: give either keys.token_vault or keys.token_vault_transit, not both"},
		{"transit without vault", strings.Replace(goodMain, "vendors:", "  token_vault_transit: {key: consentgate-tokens}\nvendors:", 1), goodVendor,
			"main.yaml:20: keys.token_vault_transit: needs secrets.provider vault"},
		{"audit key in a token and in the secret store", strings.Replace(goodMain, "vendors:", "  audit_signing_pkcs11:\n    module: /usr/lib/softhsm/libsofthsm2.so\n    token_label: audit\n    key_label: checkpoints\n    pin: {secret: hsm/audit#pin}\nvendors:", 1), goodVendor,
			"main.yaml:20: keys.audit_signing_pkcs11: give either keys.audit_signing or keys.audit_signing_pkcs11, not both"},
		{"audit key in a token without a pin", strings.Replace(goodMain, "  audit_signing: consentgate/keys#audit_signing\n", "  audit_signing_pkcs11:\n    module: /usr/lib/softhsm/libsofthsm2.so\n    token_label: audit\n    key_label: checkpoints\n", 1), goodVendor,
			"main.yaml:19: keys.audit_signing_pkcs11.pin: is required"},
		{"pkcs11 beside a key", goodMain, goodVendor + "client_certificate:\n  cert: {file: c.pem}\n  key: {file: k.pem}\n  pkcs11:\n    module: /usr/lib/softhsm/libsofthsm2.so\n    token_label: t\n    key_label: k\n    pin: {secret: hsm/t#pin}\n",
			"v.yaml:18: client_certificate.pkcs11: the key is in the token: give cert and pkcs11, without key or pkcs12"},
		{"pkcs11 module not absolute, no pin", goodMain, goodVendor + "client_certificate:\n  cert: {file: c.pem}\n  pkcs11:\n    module: libsofthsm2.so\n    token_label: t\n    key_id: zz\n",
			"v.yaml:18: client_certificate.pkcs11.module: \"libsofthsm2.so\" is not an absolute path"},
		{"client CRL over http", strings.Replace(goodMain, "  client_ca_file: ca.crt\n", "  client_ca_file: ca.crt\n  client_crl:\n    url: http://ca:9000/1.0/crl\n    issuer_file: intermediate.crt\n", 1), goodVendor,
			"main.yaml:11: tls.client_crl.url: \"http://ca:9000/1.0/crl\" is not an https URL"},
		{"unknown revocation mode", goodMain, strings.Replace(goodVendor, "base_url: https://api.acme.test\n", "base_url: https://api.acme.test\nupstream:\n  revocation: strict\n", 1),
			"v.yaml:4: upstream.revocation: \"strict\" is unknown: use fail-open, fail-closed or off"},
		{"discloses_when on a personal field", goodMain, strings.Replace(goodVendor, "    path: /v1/things/{id}\n", "    path: /v1/things/{id}\n    discloses_when: {field: name, equals: [ok]}\n", 1),
			"v.yaml:12: operations[0].discloses_when.field: \"name\" must be a response field of category metadata (it is \"identity\")"},
		{"requires an undeclared field", goodMain, strings.Replace(goodVendor, "    path: /v1/things/{id}\n", "    path: /v1/things/{id}\n    requires: {name: [other]}\n", 1),
			"v.yaml:12: operations[0].requires.name: is not a request field of the operation"},
		{"unknown certificate type", goodMain, goodVendor + "client_certificate:\n  cert: {file: c.pem}\n  key: {file: k.pem}\n  types: [server, seal]\n",
			"v.yaml:18: client_certificate.types[1]: \"seal\" is unknown: use qualified-seal, qualified-company, qualified-personal, server, commercial"},
		{"unknown request body", goodMain, strings.Replace(goodVendor, "    path: /v1/things/{id}", "    path: /v1/things/{id}\n    request_body: xml", 1),
			"v.yaml:12: operations[0].request_body: \"xml\" is unknown: use json, form, multipart or none"},
		{"body fields on a bodiless operation", goodMain, strings.Replace(goodVendor, "      response:", "      request:\n        iin: national_id\n      response:", 1),
			"v.yaml:13: operations[0].fields.request: declares body fields, but request_body is none"},
		{"unknown undeclared", goodMain, strings.Replace(goodVendor, "    path: /v1/things/{id}", "    path: /v1/things/{id}\n    undeclared: keep", 1),
			"v.yaml:12: operations[0].undeclared: \"keep\" is unknown: use drop or refuse"},
		{"header consentgate owns", goodMain, strings.Replace(goodVendor, "      response:", "      headers:\n        Content-Type: metadata\n      response:", 1),
			"v.yaml:14: operations[0].fields.headers.Content-Type: Content-Type is consentgate's to set or remove"},
		{"header a credential uses", goodMain, strings.Replace(goodVendor, "      response:", "      headers:\n        ApiKey: metadata\n      response:", 1),
			"v.yaml:14: operations[0].fields.headers.ApiKey: is where a credential of this vendor goes"},
		{"bad query name", goodMain, strings.Replace(goodVendor, "      response:", "      query:\n        \"a b\": metadata\n      response:", 1),
			"v.yaml:14: operations[0].fields.query.a b: \"a b\" is not a query parameter name"},
		{"path field no placeholder", goodMain, strings.Replace(goodVendor, "      response:", "      path:\n        iin: national_id\n      response:", 1),
			"v.yaml:14: operations[0].fields.path.iin: \"iin\" is not a placeholder of the path /v1/things/{id}"},
		{"path field category", goodMain, strings.Replace(goodVendor, "      response:", "      path:\n        id: secret\n      response:", 1),
			"v.yaml:14: operations[0].fields.path.id: \"secret\" is not a data category"},
		{"token vault next without the key it replaces", strings.Replace(goodMain, "keys:\n", "keys:\n  token_vault_next: consentgate/keys#next\n", 1), goodVendor,
			"main.yaml:17: keys.token_vault_next: needs keys.token_vault"},
		{"erasure with a personal path field", goodMain, strings.Replace(strings.Replace(goodVendor, "    path: /v1/things/{id}", "    path: /v1/things/{id}\n    erases: thing", 1),
			"      response:", "      path:\n        id: national_id\n      response:", 1),
			"v.yaml:12: operations[0].erases: the path's {id} is national_id, but an erasure runs under a withdrawn consent"},
		{"audit stream over plain http", strings.Replace(goodMain, "vendors:\n", "audit:\n  streams:\n    - {name: splunk, type: http, format: hec, url: 'http://splunk:8088/services/collector'}\nvendors:\n", 1), goodVendor,
			"main.yaml:22: audit.streams[0].url: is not an https URL"},
		{"audit stream URL with a password", strings.Replace(goodMain, "vendors:\n", "audit:\n  streams:\n    - {name: otel, type: otlp, url: 'https://u:hunter2@otel:4318/v1/logs'}\nvendors:\n", 1), goodVendor,
			"main.yaml:22: audit.streams[0].url: holds user info, a query or a fragment"},
		{"audit streams with one name", strings.Replace(goodMain, "vendors:\n", "audit:\n  streams:\n    - {name: siem, type: syslog, address: 'siem:6514'}\n    - {name: siem, type: otlp, url: 'https://otel:4318/v1/logs'}\nvendors:\n", 1), goodVendor,
			"main.yaml:23: audit.streams[1].name: \"siem\" is used twice"},
		{"a token a syslog stream would not send", strings.Replace(goodMain, "vendors:\n", "audit:\n  streams:\n    - {name: siem, type: syslog, address: 'siem:6514', token: 'siem#t'}\nvendors:\n", 1), goodVendor,
			"main.yaml:22: audit.streams[0].token: is for http streams only"},
		{"link retention under a day", strings.Replace(goodMain, "vendors:\n", "audit:\n  link_retention: 1h\nvendors:\n", 1), goodVendor,
			"main.yaml:21: audit.link_retention: 1h0m0s: use at least 24h"},
		{"audit segment too small", strings.Replace(goodMain, "vendors:\n", "audit:\n  segment: {max_bytes: 4096}\nvendors:\n", 1), goodVendor,
			"main.yaml:21: audit.segment.max_bytes: 4096: use at least 65536"},
		{"retention without an archive", strings.Replace(goodMain, "vendors:\n", "audit:\n  retention: {keep_local: 720h, keep_archive: 61320h}\nvendors:\n", 1), goodVendor,
			"main.yaml:21: audit.retention.archive: give exactly one of dir or s3"},
		{"retention with no archive retention", strings.Replace(goodMain, "vendors:\n", "audit:\n  retention: {keep_local: 720h, archive: {dir: /archive}}\nvendors:\n", 1), goodVendor,
			"main.yaml:21: audit.retention.keep_archive: is required"},
		{"archive over plain http", strings.Replace(goodMain, "vendors:\n", "audit:\n  retention:\n    keep_archive: 61320h\n    archive:\n      s3: {endpoint: 'http://s3:9000', bucket: a, access_key: 's3#ak', secret_key: 's3#sk'}\nvendors:\n", 1), goodVendor,
			"main.yaml:24: audit.retention.archive.s3.endpoint: is not an https URL"},
		{"archive key in the file", strings.Replace(goodMain, "vendors:\n", "audit:\n  retention:\n    keep_archive: 61320h\n    archive:\n      s3: {endpoint: 'https://s3:9000', bucket: a, access_key: AKIAEXAMPLE, secret_key: 's3#sk'}\nvendors:\n", 1), goodVendor,
			"main.yaml:24: audit.retention.archive.s3.access_key: is not a secret reference"},
		{"unknown object lock", strings.Replace(goodMain, "vendors:\n", "audit:\n  retention:\n    keep_archive: 61320h\n    archive:\n      s3: {endpoint: 'https://s3:9000', bucket: a, access_key: 's3#ak', secret_key: 's3#sk', object_lock: legal-hold}\nvendors:\n", 1), goodVendor,
			"main.yaml:24: audit.retention.archive.s3.object_lock: \"legal-hold\" is unknown"},
		{"audit stream of no known type", strings.Replace(goodMain, "vendors:\n", "audit:\n  streams:\n    - {name: siem, type: kafka}\nvendors:\n", 1), goodVendor,
			"main.yaml:22: audit.streams[0].type: \"kafka\" is unknown: use syslog, http or otlp"},
		{"a vendor cookie passed to the app", goodMain, strings.Replace(goodVendor, "      response:", "      response_headers:\n        set-cookie: metadata\n      response:", 1),
			"v.yaml:14: operations[0].fields.response_headers.set-cookie: a vendor's cookies never reach an app"},
		{"personal data in a response header", goodMain, strings.Replace(goodVendor, "      response:", "      response_headers:\n        X-Customer-Name: identity\n      response:", 1),
			"v.yaml:14: operations[0].fields.response_headers.X-Customer-Name: is identity, but a header cannot be minimised"},
		{"query category", goodMain, strings.Replace(goodVendor, "      response:", "      query:\n        iin: secret\n      response:", 1),
			"v.yaml:14: operations[0].fields.query.iin: \"secret\" is not a data category"},
		{"ids created, erasure not said", goodMain, strings.Replace(goodVendor, "        name: identity\n", "        name: identity\n    resources:\n      creates: {name: thing}\n", 1),
			"v.yaml:1: erasure: says nothing: name an operation that erases"},
		{"erases a kind nobody creates", goodMain, strings.Replace(goodVendor, "    path: /v1/things/{id}", "    path: /v1/things/{id}\n    erases: thing", 1),
			"v.yaml:12: operations[0].erases: no operation of this vendor creates a \"thing\""},
		{"references a kind nobody creates", goodMain, strings.Replace(goodVendor, "        name: identity\n", "        name: identity\n    resources:\n      references: {\"path:id\": thing}\n", 1),
			"v.yaml:16: operations[0].resources.references.path:id: no operation of this vendor creates a \"thing\""},
		{"callback by source address alone", goodMain, goodVendor + "callback:\n  operation: acme.get\n  app: web\n  forward_url: https://app.test/in\n  allow_sources: [203.0.113.0/24]\n",
			"v.yaml:15: callback: authenticates callbacks by their source address alone"},
		{"report-only flag must be a boolean", goodMain, strings.Replace(goodVendor, "    path: /v1/things/{id}", "    path: /v1/things/{id}\n    enforce: sometimes", 1),
			"v.yaml:12: operations[0].enforce: cannot unmarshal"},
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
			want := dir + string(filepath.Separator) + tt.want
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error\n%v\ndoes not contain\n%s", err, want)
			}
			if strings.Contains(err.Error(), "sk_live_") {
				t.Errorf("the error repeats a pasted secret: %v", err)
			}
		})
	}
}

func TestLoadGood(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "main.yaml"), goodMain)
	write(t, filepath.Join(dir, "v.yaml"), goodVendor)
	cfg, err := Load(filepath.Join(dir, "main.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Policy.Timeout.Duration != 50*time.Millisecond || cfg.Policy.QueueWait.Duration != 500*time.Millisecond || cfg.StateDB != "state.db" || !cfg.Vendors[0].Operations[0].Enforced() {
		t.Errorf("policy/state defaults: %+v %q", cfg.Policy, cfg.StateDB)
	}
	if cfg.TLS.MinVersion != "1.2" {
		t.Errorf("min_version default = %q, want 1.2", cfg.TLS.MinVersion)
	}
	if got := cfg.ResolvePath("a.crt"); got != "/tmp/x/a.crt" {
		t.Errorf("ResolvePath = %q", got)
	}
}

func TestVaultDefaults(t *testing.T) {
	dir := t.TempDir()
	main := strings.Replace(vaultMain, "auth: approle", "auth: kubernetes\n    role: consentgate", 1)
	main = strings.Replace(main, "    max_stale: 10s\n    refresh_interval: 3s\n", "", 1)
	write(t, filepath.Join(dir, "main.yaml"), main)
	write(t, filepath.Join(dir, "v.yaml"), goodVendor)
	cfg, err := Load(filepath.Join(dir, "main.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Secrets.Vault
	if got.Mount != "secret" || got.RefreshInterval.Duration != 30*time.Second || got.MaxStale.Duration != 5*time.Minute ||
		got.KubernetesTokenFile != "/var/run/secrets/kubernetes.io/serviceaccount/token" {
		t.Errorf("vault defaults not applied: %+v", got)
	}
}

func TestDuplicateRoutesRejected(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "main.yaml"), goodMain)
	write(t, filepath.Join(dir, "v.yaml"), goodVendor+"  - id: acme.other\n    method: GET\n    path: /v1/things/{thing}\n")
	_, err := Load(filepath.Join(dir, "main.yaml"))
	if err == nil || !strings.Contains(err.Error(), "v.yaml:17: operations[1].path: GET /v1/things/{thing} matches the same requests as operation \"acme.get\"") {
		t.Fatalf("err = %v", err)
	}
}

func write(t *testing.T, name, data string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCheckFilesNamesLineAndField(t *testing.T) {
	dir := t.TempDir()
	main := strings.Replace(goodMain, "data_dir: /tmp/x", "data_dir: "+dir, 1)
	write(t, filepath.Join(dir, "main.yaml"), main)
	write(t, filepath.Join(dir, "v.yaml"), goodVendor+"upstream:\n  ca_file: vendor-ca.pem\n")
	if err := os.Mkdir(filepath.Join(dir, "policies"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"a.crt", "a.key", "s.yaml"} {
		write(t, filepath.Join(dir, f), "x")
	}
	cfg, err := Load(filepath.Join(dir, "main.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.CheckFiles()
	if err == nil {
		t.Fatal("missing files not reported")
	}
	for _, want := range []string{
		filepath.Join(dir, "main.yaml") + ":9: tls.client_ca_file: cannot read " + filepath.Join(dir, "ca.crt"),
		filepath.Join(dir, "v.yaml") + ":16: upstream.ca_file: cannot read " + filepath.Join(dir, "vendor-ca.pem"),
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error\n%v\ndoes not contain\n%s", err, want)
		}
	}
	if strings.Contains(err.Error(), filepath.Join(dir, "a.crt")) {
		t.Errorf("a readable file was reported: %v", err)
	}
}

func TestVendorEnforceIsTheOperationsDefault(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "main.yaml"), goodMain)
	write(t, filepath.Join(dir, "v.yaml"), goodVendor+"  - id: acme.strict\n    method: POST\n    path: /v1/things\n    enforce: true\nenforce: false\n")
	cfg, err := Load(filepath.Join(dir, "main.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ops := cfg.Vendors[0].Operations
	if ops[0].Enforced() || !ops[1].Enforced() {
		t.Errorf("enforced: %v %v, want false (vendor default) and true (operation)", ops[0].Enforced(), ops[1].Enforced())
	}
}

func TestServingCertificateConfig(t *testing.T) {
	files := "  cert_file: a.crt\n  key_file: a.key\n"
	tests := []struct {
		name string
		tls  string
		want []string
	}{
		{"neither acme nor files", "", []string{
			"main.yaml:6: tls.cert_file: is required unless tls.acme obtains the serving certificate",
			"main.yaml:6: tls.key_file: is required unless tls.acme"}},
		{"both", files + "  acme:\n    directory: https://ca.internal:9000/acme/acme/directory\n    names: [gw.internal]\n", []string{
			"main.yaml:9: tls.acme: give either acme or cert_file and key_file, not both"}},
		{"bad acme", "  acme:\n    directory: http://ca.internal/acme/acme/directory\n    names: [gw.internal, \"*.bad\"]\n    challenge: dns-01\n    challenge_listen: \":0\"\n    email: nobody\n", []string{
			"main.yaml:8: tls.acme.directory: \"http://ca.internal/acme/acme/directory\" is not an https URL",
			"main.yaml:9: tls.acme.names[1]: \"*.bad\" is not a DNS name or IP address",
			"main.yaml:10: tls.acme.challenge: \"dns-01\" is unknown: use http-01 or tls-alpn-01",
			"main.yaml:11: tls.acme.challenge_listen: \":0\" is not host:port with a fixed port",
			"main.yaml:12: tls.acme.email: \"nobody\" is not an email address"}},
		{"no names", "  acme:\n    directory: https://ca.internal/acme/acme/directory\n", []string{
			"main.yaml:7: tls.acme.names: lists no name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "main.yaml"), strings.Replace(goodMain, files, tt.tls, 1))
			write(t, filepath.Join(dir, "v.yaml"), goodVendor)
			_, err := Load(filepath.Join(dir, "main.yaml"))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if want := dir + string(filepath.Separator) + w; !strings.Contains(err.Error(), want) {
					t.Errorf("error\n%v\ndoes not contain\n%s", err, want)
				}
			}
		})
	}

	dir := t.TempDir()
	write(t, filepath.Join(dir, "main.yaml"), strings.Replace(goodMain, files,
		"  acme:\n    directory: https://ca.internal:9000/acme/acme/directory\n    names: [gw.internal, 10.0.0.7]\n    challenge: tls-alpn-01\n", 1))
	write(t, filepath.Join(dir, "v.yaml"), goodVendor)
	cfg, err := Load(filepath.Join(dir, "main.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.TLS.ACME; a.ChallengeListen != "0.0.0.0:443" || a.Storage != "acme" || a.CARootFile != "ca.crt" {
		t.Errorf("acme defaults: %+v", a)
	}
}
