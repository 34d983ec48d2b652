package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/internal/s3dev"
	"github.com/consentgate/consentgate/secrets"
	"go.yaml.in/yaml/v3"
)

// consentgate runs as `consentgate serve`, a child process built once from
// ./cmd/consentgate: its CPU and memory are then its own, read from /proc,
// not mixed with the load generator's as they would be in one process. Its
// configuration is generated: the shipped kb profile and shipped policy,
// pointed at the upstream, file secrets, the audit log in strict or async
// mode on the disk being measured.

// buildConsentgate builds ./cmd/consentgate of the module in the current
// folder into dir.
func buildConsentgate(dir string) (string, error) {
	out := filepath.Join(dir, "consentgate")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./cmd/consentgate")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building consentgate (run the benchmark from the repository root, or pass -consentgate): %w", err)
	}
	return out, nil
}

// gatewayConfig is the generated consentgate.yaml.
const gatewayConfig = `node: bench-1
trust_domain: %[1]s
data_dir: %[2]s
listen:
  gateway: 127.0.0.1:0
  admin: 127.0.0.1:0
tls:
  cert_file: %[3]s
  key_file: %[4]s
  client_ca_file: %[5]s
  min_version: "1.2"
secrets:
  provider: file
  file:
    path: secrets.yaml
policy:
  dir: %[6]s
audit:
  path: audit.db
  mode: %[7]s
keys:
  subject_hmac: consentgate/keys#subject_hmac
  field_hmac: consentgate/keys#field_hmac
  audit_signing: consentgate/keys#audit_signing
  token_vault: consentgate/keys#token_vault
vendors:
  - vendors/kb.yaml
`

// gateway is one running consentgate.
type gateway struct {
	*child
	mode       string
	dir        string
	gatewayURL string
	adminURL   string
	siem       *siemReceiver // consentgate-stream's SIEM; nil otherwise
	store      *s3dev.Server // consentgate-stream's audit archive; nil otherwise
}

// archiveConfig seals the audit log every 32 MiB and archives each segment to
// store as soon as the stream has delivered it.
func archiveConfig(store *s3dev.Server) string {
	return fmt.Sprintf(`  segment:
    max_bytes: 33554432
  retention:
    keep_local: 0s
    keep_archive: 24h
    interval: 1s
    archive:
      s3: {endpoint: %q, bucket: %q, prefix: bench, access_key: "consentgate/archive#access_key", secret_key: "consentgate/archive#secret_key", ca_file: %q, object_lock: governance}
`, store.Endpoint, s3dev.Bucket, store.CAFile)
}

// startGateway writes the configuration for mode ("strict", "async", or
// "tokens": strict, with consents whose birth numbers are tokenized) under
// s.dir/consentgate-<mode>, starts bin serve, and waits for its ready line.
// With profileDir set, the process writes its CPU profile there when it stops.
func startGateway(s *stack, bin, mode, profileDir string) (*gateway, error) {
	dir := filepath.Join(s.dir, "consentgate-"+mode)
	if err := os.MkdirAll(filepath.Join(dir, "vendors"), 0o700); err != nil {
		return nil, err
	}
	policies := filepath.Join(s.dir, "policies")
	if err := writeBenchPolicies(policies, "kb"); err != nil {
		return nil, err
	}
	if err := writeKBProfile(filepath.Join(dir, "vendors", "kb.yaml"), s); err != nil {
		return nil, err
	}
	var store *s3dev.Server
	if mode == "stream" {
		// The audit log also seals a segment every 32 MiB (every few seconds
		// at this load) and uploads it at once: calls must not notice.
		var err error
		if store, err = s3dev.Start(context.Background(), filepath.Join(dir, "s3")); err != nil {
			return nil, fmt.Errorf("the archive's S3 store: %w", err)
		}
	}
	if err := writeGatewaySecrets(filepath.Join(dir, "secrets.yaml"), s, store); err != nil {
		return nil, err
	}
	cfgFile := filepath.Join(dir, "consentgate.yaml")
	gw := s.pki.Path(gatewayCert)
	auditMode := mode
	if mode == "tokens" || mode == "stream" {
		auditMode = "strict"
	}
	cfg := fmt.Sprintf(gatewayConfig, benchTrustDomain, dir, gw, certs.KeyFile(gw), s.pki.Path(certs.DevRootCert), policies, auditMode)
	var siem *siemReceiver
	if mode == "stream" {
		var err error
		if siem, err = startSIEM(gw); err != nil {
			return nil, err
		}
		cfg = strings.Replace(cfg, "  mode: strict\n", fmt.Sprintf("  mode: strict\n  streams:\n    - {name: bench-siem, type: http, format: jsonl, url: %q, ca_file: %q}\n",
			siem.url, s.pki.Path(certs.DevRootCert))+archiveConfig(store), 1)
	}
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	// The same checks serve makes, here, so a bad generated file names its line.
	if c, err := configs.Load(cfgFile); err != nil {
		return nil, err
	} else if err := c.CheckFiles(); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "consentgate.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child holds its own descriptor
	// Info level: the canonical line per request is written, as in production
	// (nginx writes its access log likewise).
	cmd := exec.Command(bin, "serve", "--config", cfgFile, "--log-level", "info")
	cmd.Stderr = logFile
	if profileDir != "" {
		cmd.Env = append(os.Environ(), "CONSENTGATE_CPUPROFILE="+filepath.Join(profileDir, "consentgate-"+mode+".pprof"))
	}
	c, err := startChild("consentgate-"+mode, cmd, "ready ", 2*time.Minute)
	if err != nil {
		return nil, fmt.Errorf("%w (see %s)", err, logFile.Name())
	}
	g := &gateway{child: c, mode: mode, dir: dir, siem: siem, store: store}
	for _, kv := range strings.Fields(c.addr) {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "gateway":
			g.gatewayURL = v
		case "admin":
			g.adminURL = v
		}
	}
	if g.gatewayURL == "" || g.adminURL == "" {
		c.stop()
		return nil, fmt.Errorf("consentgate ready line %q names no gateway or admin address", c.addr)
	}
	return g, nil
}

// writeKBProfile writes the shipped kb profile with its base URL pointed at
// the upstream: the TLS name stays api.kb.cz, the vendor CA is the dev
// sandbox CA, and loopback is pinned, as `consentgate dev` does.
func writeKBProfile(file string, s *stack) error {
	raw, err := fs.ReadFile(configs.FS, "vendors/kb.yaml")
	if err != nil {
		return err
	}
	const shipped = "base_url: https://" + kbHost + "\n"
	if !bytes.Contains(raw, []byte(shipped)) || bytes.Contains(raw, []byte("\nupstream:")) {
		return fmt.Errorf("configs/vendors/kb.yaml changed shape: the benchmark expects %q and no upstream section", shipped)
	}
	raw = bytes.Replace(raw, []byte(shipped), []byte("base_url: "+s.upstreamURL+"\n"), 1)
	// The end user's token: a static bearer from the secret store instead of a
	// login per run. Reading a stored, sealed token costs ~18 µs a call
	// (BenchmarkOAuthFreshToken in bench/RESULTS.md), not measured here.
	oauth := regexp.MustCompile(`(?s)  - type: oauth2_authorization_code\n.*?    pkce: true\n`)
	if !oauth.Match(raw) {
		return fmt.Errorf("configs/vendors/kb.yaml changed shape: the benchmark expects its oauth2_authorization_code credential")
	}
	raw = oauth.ReplaceAll(raw, []byte("  - type: bearer\n    secret: vendors/kb#access_token\n"))
	raw = fmt.Appendf(raw, "upstream:\n  server_name: %s\n  ca_file: %s\n  pin: [\"127.0.0.1\"]\n",
		kbHost, s.pki.Path(certs.DevSandboxRootCert))
	return os.WriteFile(file, raw, 0o600)
}

// writeGatewaySecrets writes the file secret store: kb's credentials and
// company seal, and consentgate's own keys.
func writeGatewaySecrets(file string, s *stack, store *s3dev.Server) error {
	seal := s.pki.Path(certs.DevKBCert)
	certPEM, err := os.ReadFile(seal)
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(certs.KeyFile(seal))
	if err != nil {
		return err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	all := map[string]map[string]string{
		"vendors/kb": {"api_key": s.apiKey, "access_token": s.token,
			"client_cert": string(certPEM), "client_key": string(keyPEM)},
		"consentgate/keys": {"subject_hmac": randomHex(32), "field_hmac": randomHex(32), "token_vault": randomHex(32),
			"audit_signing": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))},
	}
	if store != nil {
		all["consentgate/archive"] = map[string]string{"access_key": store.AccessKey, "secret_key": store.SecretKey}
	}
	return secrets.WriteFile(file, all)
}

// grantConsents creates, as the onboarding-web app through the admin API, n
// end users' consents the benchmark calls run under, and returns their ids.
func (g *gateway) grantConsents(s *stack, n int) ([]string, error) {
	tr := newTransport(s.appTLS, 8)
	defer tr.CloseIdleConnections()
	ids := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range min(n, 8) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				id, err := g.grantConsent(tr, i)
				if err != nil {
					errs <- err
					return
				}
				ids[i] = id
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return ids, nil
}

func (g *gateway) grantConsent(tr http.RoundTripper, i int) (string, error) {
	body, _ := json.Marshal(map[string]any{
		"subject":    fmt.Sprintf("bench-user-%06d", i+1),
		"vendors":    []string{"kb"},
		"purposes":   []string{"kyc-onboarding"},
		"categories": g.categories(),
		"evidence":   map[string]string{"text": "consent captured by the benchmark", "reference": "bench"},
		"ttl":        "24h",
	})
	req, err := http.NewRequest(http.MethodPost, g.adminURL+"/v1/consents", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return "", fmt.Errorf("granting the consent: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("granting the consent: status %d: %.300s", resp.StatusCode, raw)
	}
	var c struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &c); err != nil || c.ID == "" {
		return "", fmt.Errorf("granting the consent: no id in %.300s", raw)
	}
	return c.ID, nil
}

// target is the KYC call through this gateway, under the consents in turn.
func (g *gateway) target(s *stack, consentIDs []string) *target {
	h := http.Header{}
	h.Set("X-Consent-Id", consentIDs[0])
	h.Set("X-Purpose", "kyc-onboarding")
	return &target{
		name: "consentgate-" + g.mode, url: g.gatewayURL + "/v/kb" + kbPath, header: h, tls: s.appTLS,
		pid: g.pid(), check: checkMinimisedBody, audit: g.auditCounters(s), consents: consentIDs,
		streamLag: g.streamLag(s),
		archived:  g.archived(s),
	}
}

// checkMinimisedBody proves the pipeline ran: a decision id, the birth number
// masked, the fields the profile does not map dropped, the identity kept.
func checkMinimisedBody(resp *http.Response, body []byte) error {
	if resp.Header.Get("X-Consentgate-Decision-Id") == "" {
		return fmt.Errorf("no X-Consentgate-Decision-Id: the policy did not decide")
	}
	for _, leaked := range []string{"9157140410", "marketa.dvorakova@example.cz", "secondaryDocument"} {
		if bytes.Contains(body, []byte(leaked)) {
			return fmt.Errorf("the answer holds %q: minimisation did not apply", leaked)
		}
	}
	for _, kept := range []string{`"givenName":"Markéta"`, `"permanentAddress"`} {
		if !bytes.Contains(body, []byte(kept)) {
			return fmt.Errorf("the answer lacks %s: %.300s", kept, body)
		}
	}
	return nil
}

// auditCounters scrapes the audit log's counters from the admin listener's
// /metrics: records committed and group commits (one fsync each).
func (g *gateway) auditCounters(s *stack) func() (records, commits uint64, err error) {
	tr := newTransport(s.auditorTLS, 1)
	return func() (uint64, uint64, error) {
		req, err := http.NewRequest(http.MethodGet, g.adminURL+"/metrics", nil)
		if err != nil {
			return 0, 0, err
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return 0, 0, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, 0, fmt.Errorf("GET /metrics: %s", resp.Status)
		}
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			return 0, 0, err
		}
		var records, commits float64
		for _, line := range strings.Split(string(raw), "\n") {
			name, value, _ := strings.Cut(line, " ")
			switch name {
			case "consentgate_audit_records_total":
				records, _ = strconv.ParseFloat(value, 64)
			case "consentgate_audit_commits_total":
				commits, _ = strconv.ParseFloat(value, 64)
			}
		}
		return uint64(records), uint64(commits), nil
	}
}

// streamLag scrapes consentgate_audit_stream_lag_records; nil without a stream.
func (g *gateway) streamLag(s *stack) func() (float64, error) {
	if g.siem == nil {
		return nil
	}
	return g.metric(s, `consentgate_audit_stream_lag_records{stream="bench-siem"}`)
}

// archived scrapes consentgate_audit_segments_archived_total; nil without an archive.
func (g *gateway) archived(s *stack) func() (float64, error) {
	if g.store == nil {
		return nil
	}
	return g.metric(s, "consentgate_audit_segments_archived_total")
}

// metric reads one sample of the gateway's /metrics, by its name and labels.
func (g *gateway) metric(s *stack, name string) func() (float64, error) {
	tr := newTransport(s.auditorTLS, 1)
	return func() (float64, error) {
		req, err := http.NewRequest(http.MethodGet, g.adminURL+"/metrics", nil)
		if err != nil {
			return 0, err
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			return 0, err
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				return strconv.ParseFloat(v, 64)
			}
		}
		return 0, fmt.Errorf("/metrics has no %s", name)
	}
}

// siemReceiver is consentgate-stream's SIEM: JSON lines over HTTPS on
// loopback, counted and discarded, in the benchmark process as a SIEM would be
// on another machine.
type siemReceiver struct {
	url     string
	srv     *http.Server
	records atomic.Int64
}

func startSIEM(certFile string) (*siemReceiver, error) {
	pair, err := tls.LoadX509KeyPair(certFile, certs.KeyFile(certFile))
	if err != nil {
		return nil, err
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		return nil, err
	}
	r := &siemReceiver{url: "https://" + ln.Addr().String() + "/siem"}
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.records.Add(int64(bytes.Count(body, []byte("\n"))))
		w.WriteHeader(http.StatusNoContent)
	})}
	go r.srv.Serve(ln)
	return r, nil
}

// writeBenchPolicies writes the shipped policies with their data cut to the
// vendors the benchmark configures: the gateway checks a policy against its
// profiles, and refuses one whose data names vendors it has no profile of.
// The rules and purposes are the shipped ones.
func writeBenchPolicies(dir string, vendors ...string) error {
	if err := configs.WritePolicies(dir); err != nil {
		return err
	}
	file := filepath.Join(dir, "data.yaml")
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var data map[string]any
	if err := yaml.Unmarshal(raw, &data); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	keep := func(names []any, ok func(string) bool) []any {
		out := []any{}
		for _, n := range names {
			if s, _ := n.(string); ok(s) {
				out = append(out, s)
			}
		}
		return out
	}
	configured := func(op string) bool {
		return slices.ContainsFunc(vendors, func(v string) bool { return strings.HasPrefix(op, v+".") })
	}
	apps, _ := data["apps"].(map[string]any)
	for _, a := range apps {
		app, _ := a.(map[string]any)
		list, _ := app["vendors"].([]any)
		app["vendors"] = keep(list, func(v string) bool { return slices.Contains(vendors, v) })
		ops, _ := app["tenant_operations"].([]any)
		app["tenant_operations"] = keep(ops, configured)
	}
	free, _ := data["consent_free_operations"].([]any)
	data["consent_free_operations"] = keep(free, configured)
	out, err := yaml.Marshal(data)
	if err != nil {
		return err
	}
	return os.WriteFile(file, out, 0o600)
}

// categories are what the benchmark's consents grant: national_id and
// document only for the tokens target, since kyc-onboarding tokenizes the
// birth number and the document number (durable token writes on every call);
// the other targets measure the call path without the token vault.
func (g *gateway) categories() []string {
	if g.mode == "tokens" {
		return []string{"identity", "address", "document", "national_id"}
	}
	return []string{"identity", "address"}
}

// stop stops the gateway, then its SIEM.
func (g *gateway) stop() error {
	err := g.child.stop()
	if g.siem != nil {
		g.siem.srv.Close()
	}
	if g.store != nil {
		g.store.Close()
	}
	return err
}
