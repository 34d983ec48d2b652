package proxy

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/logsink"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/consent"
)

// Secret values of the test vendor; every test that reads an output searches it
// for these.
var testSecrets = map[string]string{
	"api_key":  "hdr-key-7f3a9c1e5b2d4f60",
	"bearer":   "bearer-tok-1b2c3d4e5f6a7b8c",
	"body_key": "body-key-0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7",
	"query":    "query-key-5e4d3c2b1a0f9e8d",
}

// seen is what the echo upstream received.
type seen struct {
	mu   sync.Mutex
	reqs []*http.Request
	body []string
}

func (s *seen) last(t *testing.T) (*http.Request, string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		t.Fatal("upstream saw no request")
	}
	return s.reqs[len(s.reqs)-1], s.body[len(s.body)-1]
}

func (s *seen) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

// echoUpstream answers with everything it received, the way a careless vendor
// echoes credentials in error messages.
func echoUpstream(t testing.TB, s *seen) *httptest.Server {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, r)
		s.body = append(s.body, string(body))
		s.mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/html") {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<html>birth number 9157144238</html>"))
			return
		}
		if strings.HasSuffix(r.URL.Path, "/compressed") {
			w.Header().Set("Content-Encoding", "br")
			w.Write([]byte("not really brotli"))
			return
		}
		w.Header().Set("X-Echo-Key", r.Header.Get("Apikey"))
		w.Header().Set("Set-Cookie", "vendor-session=abc")
		w.Header().Set("X-Customer-Name", "Jana Nováková")
		w.Header().Set("X-Ratelimit-Remaining", "99")
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"header": r.Header, "query": r.URL.RawQuery, "body": string(body), "path": r.URL.Path})
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// testPolicy lets app "web" call anything and see everything, so these tests are
// about the pipeline; the shipped policies are tested through the dev stack.
const testPolicy = `package consentgate

default decision := {"allow": false, "reasons": ["test deny"], "binary": "deny"}

# A request field named photo is never sent, so request minimisation has
# something to withhold.
decision := {"allow": true, "reasons": ["test allow"], "response": {"default": "keep", "fields": {}}, "request": {"drop": [p | some p in input.request.fields; contains(p, "photo")]}, "binary": "allow"} if {
	input.app.id == "web"
	input.consent_id != "deny-me"
}
`

// fakeConsents knows no consent; "broken" stands for a failing registry.
type fakeConsents struct{}

func (fakeConsents) Get(_ context.Context, id string) (*consent.Consent, error) {
	if id == "broken" {
		return nil, errors.New("disk on fire")
	}
	return nil, consent.ErrNotFound
}

func (fakeConsents) Resource(context.Context, string, string, string) (consent.Resource, error) {
	return consent.Resource{}, consent.ErrNotFound
}

func (fakeConsents) BindResource(_ context.Context, res consent.Resource) (consent.Resource, error) {
	return res, nil
}

func (fakeConsents) Spend(context.Context, string, string, int, time.Duration) (bool, time.Time, error) {
	return true, time.Time{}, nil
}

type testEnv struct {
	gatewayURL   string
	callbacksURL string
	forwardAddr  string
	client       *http.Client // app certificate
	ca           *certs.CA
	dir          string
	logs         *logsink.Buffer
	seen         *seen
	trust        *x509.CertPool
	audit        *audit.Log
	srv          *Server
	gw           *Gateway
}

func writeFile(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
}

func writePair(t testing.TB, dir, name string, cert *x509.Certificate, key crypto.Signer) {
	t.Helper()
	keyPEM, err := certs.EncodePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, name+".crt"), certs.EncodeCertificates(cert), 0o644)
	writeFile(t, filepath.Join(dir, name+".key"), keyPEM, 0o600)
}

// newTestEnv starts a gateway on loopback with the echo vendor and its
// variants; opts adjust its Options.
func newTestEnv(t testing.TB, opts ...func(*Options)) *testEnv {
	t.Helper()
	b := newTestGateway(t)
	dir := b.dir
	s := &seen{}
	up := echoUpstream(t, s)
	writeFile(t, filepath.Join(dir, "upstream.crt"), certs.EncodeCertificates(up.Certificate()), 0o644)
	b.secrets = fmt.Sprintf(`vendors/echo:
  api_key: %s
  bearer: %s
  body_key: %s
  query: %s
  cb_secret: callback-secret-0123456789
`, testSecrets["api_key"], testSecrets["bearer"], testSecrets["body_key"], testSecrets["query"])
	b.listen = `  forward: 127.0.0.1:0
  admin: 127.0.0.1:0
  callbacks: 127.0.0.1:0
  read_header_timeout: 1s
  read_timeout: 3s
`
	b.opts = opts
	b.vendor(t, "echo.yaml", `id: echo
base_url: `+up.URL+`/base
upstream:
  ca_file: `+filepath.Join(dir, "upstream.crt")+`
  pin: [127.0.0.1]
credentials:
  - type: api_key
    secret: vendors/echo#api_key
    header: apikey
  - type: bearer
    secret: vendors/echo#bearer
  - type: api_key
    secret: vendors/echo#body_key
    body_field: api_key
    operations: [echo.create]
  - type: api_key
    secret: vendors/echo#query
    query: flow_api_key
    operations: [echo.result]
callback:
  operation: echo.status
  app: web
  forward_url: `+up.URL+`/app-inbox
  forward_ca_file: `+filepath.Join(dir, "upstream.crt")+`
  allow_sources: [127.0.0.1/32]
  shared_secret: vendors/echo#cb_secret
  shared_secret_header: X-Callback-Token
operations:
  - id: echo.status
    method: POST
    path: /status
    callback: true
  - id: echo.thing
    method: GET
    path: /things/{id}
    fields:
      query: {x: metadata}
      # Passed, so the test sees an echoed secret scrubbed from a header.
      response_headers: {X-Echo-Key: metadata}
  - id: echo.create
    method: POST
    path: /sessions/
    max_request_bytes: 200
    fields:
      request: {metadata.n: metadata}
  - id: echo.result
    method: GET
    path: /results/
    fields:
      query: {session_id: metadata}
  - id: echo.verify
    method: POST
    path: /verify
    fields:
      request: {iin: national_id, phone: contact, photo: biometric, "meta.tags[]": metadata, meta.n: metadata}
      query: {lang: metadata, photo: biometric}
      headers: {X-Note: metadata, X-Document-Number: document}
  - id: echo.person
    method: GET
    path: /persons/{iin}/checks/{check}
    fields:
      path: {iin: national_id}
  - id: echo.photoPath
    method: GET
    path: /photos/{photo}
    fields:
      path: {photo: biometric}
  - id: echo.form
    method: POST
    path: /form
    request_body: form
    fields:
      request: {iin: national_id, photo: biometric, lang: metadata}
  - id: echo.upload
    method: POST
    path: /upload
    request_body: multipart
    fields:
      request: {iin: national_id, photo: biometric, doc: document}
  - id: echo.strict
    method: POST
    path: /strict
    undeclared: refuse
    fields:
      request: {iin: national_id}
  - id: echo.compressed
    method: GET
    path: /compressed
  - id: echo.html
    method: GET
    path: /html
  - id: echo.reportOnly
    method: GET
    path: /report-only
    enforce: false
`)
	b.vendor(t, "nosecret.yaml", `id: nosecret
base_url: `+up.URL+`
upstream:
  ca_file: `+filepath.Join(dir, "upstream.crt")+`
  pin: [127.0.0.1]
credentials:
  - type: api_key
    secret: vendors/nosecret#missing
    header: apikey
operations:
  - id: nosecret.get
    method: GET
    path: /x
`)
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	downAddr := closed.Addr().String()
	closed.Close()
	b.vendor(t, "down.yaml", `id: down
base_url: https://`+downAddr+`
upstream:
  pin: [127.0.0.1]
credentials:
  - type: api_key
    secret: vendors/echo#query
    query: flow_api_key
operations:
  - id: down.get
    method: GET
    path: /x
`)
	// The same upstream, but not pinned: its loopback address must be refused.
	b.vendor(t, "inward.yaml", `id: inward
base_url: `+strings.Replace(up.URL, "127.0.0.1", "localhost", 1)+`
upstream:
  ca_file: `+filepath.Join(dir, "upstream.crt")+`
  server_name: 127.0.0.1
operations:
  - id: inward.get
    method: GET
    path: /things/{id}
`)
	// Callbacks only from a network the test does not call from.
	b.vendor(t, "walled.yaml", `id: walled
base_url: `+up.URL+`
upstream:
  pin: [127.0.0.1]
callback:
  operation: walled.status
  app: web
  forward_url: `+up.URL+`/app-inbox
  allow_sources: [10.0.0.0/8]
  shared_secret: vendors/echo#cb_secret
  shared_secret_header: X-Callback-Token
operations:
  - id: walled.status
    method: POST
    path: /status
    callback: true
`)
	g := b.build(t, nil)
	cbs, err := NewCallbacks(g.gw)
	if err != nil {
		t.Fatal(err)
	}
	srv := g.serve(t, NewForward(g.gw, b.ca), http.NotFoundHandler(), cbs)
	env := &testEnv{gatewayURL: "https://" + srv.Addr(ListenGateway), callbacksURL: "https://" + srv.Addr(ListenCallbacks), forwardAddr: srv.Addr(ListenForward),
		ca: b.ca, dir: dir, logs: g.logs, seen: s, trust: g.trust, audit: g.audit, srv: srv, gw: g.gw}
	env.client = env.clientWith(t, b.ca, "spiffe://test.local/app/web", time.Hour)
	return env
}

// clientWith is an HTTP client presenting a certificate from ca with the given
// SPIFFE id ("" for none) and validity (negative: already expired).
func (e *testEnv) clientWith(t testing.TB, ca *certs.CA, spiffe string, validity time.Duration) *http.Client {
	t.Helper()
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: "client"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(validity)
	if spiffe != "" {
		u, err := url.Parse(spiffe)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = []*url.URL{u}
	}
	cert, key, err := ca.Issue(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs:      e.trust,
		Certificates: []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}},
	}}}
}
