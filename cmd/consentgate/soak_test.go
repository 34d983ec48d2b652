package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/audit/archive"
	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/internal/sandbox"
)

// processStats is what the gateway process reports of itself on /metrics, and
// how much of its RSS is mapped files (bbolt maps its databases), from /proc.
type processStats struct {
	at         time.Duration // since the load started
	rss        float64       // process_resident_memory_bytes
	goroutines float64       // go_goroutines
	heap       float64       // go_memstats_heap_inuse_bytes
	rssFile    float64       // RssFile of /proc/PID/status; 0 where there is none
}

func (s processStats) String() string {
	return fmt.Sprintf("RSS %.1f MiB (files %.1f MiB), heap %.1f MiB, %.0f goroutines at %s",
		s.rss/(1<<20), s.rssFile/(1<<20), s.heap/(1<<20), s.goroutines, s.at.Round(time.Second))
}

// rssFile reads RssFile (kB) from /proc/PID/status; 0 when it cannot.
func rssFile(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb * 1024
		}
	}
	return 0
}

func readStats(c *http.Client, adminURL string) (processStats, error) {
	resp, err := c.Get(adminURL + "/metrics")
	if err != nil {
		return processStats{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return processStats{}, fmt.Errorf("/metrics: status %d", resp.StatusCode)
	}
	var s processStats
	found := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		var dst *float64
		switch {
		case !ok:
			continue
		case name == "process_resident_memory_bytes":
			dst = &s.rss
		case name == "go_goroutines":
			dst = &s.goroutines
		case name == "go_memstats_heap_inuse_bytes":
			dst = &s.heap
		default:
			continue
		}
		if *dst, err = strconv.ParseFloat(value, 64); err != nil {
			return processStats{}, fmt.Errorf("%s: %w", name, err)
		}
		found++
	}
	if found != 3 {
		return processStats{}, fmt.Errorf("/metrics lacks process_resident_memory_bytes, go_goroutines or go_memstats_heap_inuse_bytes (%v)", sc.Err())
	}
	return s, nil
}

// The gateway runs alone as its own process (`consentgate serve`, strict audit;
// the sandboxes run in the test process) under a steady rate of calls across all
// five vendors: 10 s in `make test`, 10 min in `make reliability`
// (CONSENTGATE_SOAK_DURATION and CONSENTGATE_SOAK_RATE, calls a second,
// override). No call fails; after the first fifth (warm-up) its goroutines stay
// within 50 and its RSS (and RSS without mapped files) within twice the values
// at the end of warm-up; after a clean stop the audit chain verifies and every
// intent has its outcome.
func TestReliabilitySoak(t *testing.T) {
	length := reliabilityDuration(t, "CONSENTGATE_SOAK_DURATION", 10*time.Second, 10*time.Minute)
	rate := reliabilityCount(t, "CONSENTGATE_SOAK_RATE", 20, 20)
	// Each vendor gets a fifth of the calls; Air Bank's documented limit is 600 a minute.
	if rate > 45 {
		t.Fatalf("CONSENTGATE_SOAK_RATE=%d: above 45 calls a second the Air Bank sandbox rightly answers 429", rate)
	}
	gw, fw, admin := freeAddr(t), freeAddr(t), freeAddr(t)
	dir, file, _ := serveWithSandboxes(t, gw, fw, admin)
	// The log seals a segment every 64 KiB (a few seconds of this load), and the
	// retention policy archives each at once: under load, no call may notice.
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, file, strings.Replace(string(data), "audit:\n", `audit:
  segment:
    max_bytes: 65536
  retention:
    keep_local: 0s
    keep_archive: 24h
    interval: 1s
    archive:
      dir: archive
`, 1))
	cmd := startCommand(t, "serve", "--config", file, "--log-level", "error")
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	client := processClient(t, dir)
	statsClient := processClientAs(t, dir, "secops") // /metrics is for operators
	consentID := soakConsent(t, client, "https://"+admin)
	authorizeAtBanks(t, dir, client, "https://"+admin, consentID)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	jobs := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	answered := map[string]int{}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				vendor, purpose, method, path, reqBody := loadCall(i)
				// Calls in flight when the load stops still count: no context to cancel them.
				status, _, body, err := appCall(context.Background(), client, "https://"+gw+"/v/"+vendor+path, method, reqBody, under(consentID, purpose))
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, vendor+": "+err.Error())
				case status/100 != 2:
					failures = append(failures, fmt.Sprintf("%s: %d %s", vendor, status, body))
				default:
					answered[vendor]++
				}
				mu.Unlock()
			}
		}()
	}
	// A ticker drops ticks while every worker is busy: the rate is a ceiling, and
	// a gateway that slows down shows as fewer calls, not as a queue in the test.
	go func() {
		defer close(jobs)
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				select {
				case jobs <- i:
				case <-ctx.Done():
					return
				}
			}
		}
	}()

	start := time.Now()
	warmUp, every := length/5, max(length/20, time.Second)
	defer func() {
		if !t.Failed() {
			return
		}
		// What the gateway said about its segments, for a failure to explain.
		if m, err := metricsText(statsClient, "https://"+admin); err == nil {
			t.Logf("audit metrics:\n%s", grepLines(m, "consentgate_audit_"))
		}
	}()
	var samples []processStats
	for next := warmUp; next <= length; next += every {
		time.Sleep(time.Until(start.Add(next)))
		s, err := readStats(statsClient, "https://"+admin)
		if err != nil {
			t.Fatalf("reading the gateway's metrics: %v", err)
		}
		s.at, s.rssFile = time.Since(start), rssFile(cmd.Process.Pid)
		t.Logf("sample: %s", s)
		samples = append(samples, s)
	}
	cancel()
	wg.Wait()
	elapsed := time.Since(start)
	metrics, err := metricsText(statsClient, "https://"+admin)
	if err != nil {
		t.Fatal(err)
	}

	// A clean stop, then every intent must have its outcome.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("the gateway did not stop cleanly: %v", err)
	}
	var pem, stderr bytes.Buffer
	if err := run(context.Background(), []string{"audit", "pubkey", "--config", file}, &pem, &stderr); err != nil {
		t.Fatalf("audit pubkey: %v %s", err, stderr.String())
	}
	pub, err := audit.ParsePublicKeyPEM(pem.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	// The whole chain, from record 1: the archived segments, then what is here.
	arch := archive.Dir{Path: filepath.Join(dir, "archive")}
	files, err := archive.Files(context.Background(), arch, filepath.Join(dir, "audit.db"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.VerifyFiles(files, pub, audit.RequireVouched())
	if err != nil {
		t.Fatalf("the audit chain does not verify after the soak: %v", err)
	}
	archived, _ := arch.List(context.Background())
	// A person's records, and the record of processing, come from the archive too.
	pubFile := filepath.Join(t.TempDir(), "audit.pub")
	writeTestFile(t, pubFile, pem.String())
	db := filepath.Join(dir, "audit.db")
	found := func(args ...string) int {
		out, err := runCmd(t, append([]string{"audit", "search", "--config", file, "--db", db, "--pubkey", pubFile, "--subject", "soak-user"}, args...)...)
		if err != nil {
			t.Fatalf("audit search %v: %v\n%s", args, err, tail(out))
		}
		return strings.Count(out, `"subject_hmac":`)
	}
	out, err := runCmd(t, "audit", "report", "--config", file, "--db", db, "--pubkey", pubFile, "--archive", arch.Path)
	if err != nil {
		t.Fatalf("audit report --archive: %v\n%s", err, out)
	}
	kbCalls := reportedCalls(out, "kb")
	// The metric was read before the stop; the policy may have archived more since.
	if n := metricValue(metrics, "consentgate_audit_segments_archived_total"); rep.Start != 1 || len(archived) < 2 || n < 1 || n > float64(len(archived)) {
		t.Errorf("the chain starts at %d with %d segments archived; the gateway says:\n%s", rep.Start, len(archived), grepLines(metrics, "consentgate_audit_segments"))
	}
	if len(rep.Incomplete) != 0 {
		t.Errorf("%d intents without an outcome after a clean stop, e.g. %s", len(rep.Incomplete), rep.Incomplete[0])
	}

	total := 0
	var perVendor []string
	for _, c := range devCalls {
		total += answered[c.vendor]
		perVendor = append(perVendor, fmt.Sprintf("%s %d", c.vendor, answered[c.vendor]))
		if answered[c.vendor] == 0 {
			t.Errorf("no call to %s was answered", c.vendor)
		}
	}
	// Each answered call is an intent and an outcome about the soak's person.
	if here, all := found(), found("--archive", arch.Path); all < 2*total || here >= all {
		t.Errorf("search for the soak's person: %d records with the archive, %d without, %d calls answered", all, here, total)
	}
	if kbCalls != answered["kb"] {
		t.Errorf("the record of processing across the archive counts %d kb calls, %d were answered", kbCalls, answered["kb"])
	}
	base, end := samples[0], samples[len(samples)-1]
	peak := slices.MaxFunc(samples, func(a, b processStats) int { return int(a.rss - b.rss) })
	t.Logf("soak %s at up to %d calls/s: %d calls (%.1f/s; %s), %d failed, %d audit records, %d segments archived",
		length, rate, total, float64(total)/elapsed.Seconds(), strings.Join(perVendor, ", "), len(failures), rep.Records, len(archived))
	t.Logf("after warm-up: %s; end: %s; peak: %s", base, end, peak)
	if len(failures) > 0 {
		t.Errorf("%d of %d calls failed, first: %s", len(failures), total+len(failures), failures[0])
	}
	// RSS also counts the pages of the bbolt files (audit log, consent store)
	// mapped into memory, which grow with the log by design; anonymous memory,
	// RSS without them, is what a leak grows. Both are bounded.
	for _, s := range samples[1:] {
		if s.goroutines > base.goroutines+50 || s.rss > 2*base.rss || s.rss-s.rssFile > 2*(base.rss-base.rssFile) {
			t.Errorf("the gateway grew: %s, after warm-up %s", s, base)
		}
	}
}

// reportedCalls sums the calls to vendor the record of processing counts, by its
// "Transfers by purpose" rows: disclosures, without personal data, denials, other.
func reportedCalls(report, vendor string) int {
	n := 0
	for line := range strings.Lines(report) {
		cells := strings.Split(strings.TrimSpace(line), "|")
		if len(cells) != 10 || strings.TrimSpace(cells[2]) != vendor {
			continue
		}
		for _, c := range cells[5:9] {
			v, _ := strconv.Atoi(strings.TrimSpace(c))
			n += v
		}
	}
	return n
}

// metricsText is the gateway's /metrics page.
func metricsText(c *http.Client, adminURL string) (string, error) {
	resp, err := c.Get(adminURL + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("/metrics: status %d", resp.StatusCode)
	}
	return string(b), err
}

// grepLines are the lines of s that start with prefix.
func grepLines(s, prefix string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.HasPrefix(line, prefix) {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return strings.Join(out, "\n")
}

// metricValue is the value of the unlabelled metric name on a /metrics page (-1: absent).
func metricValue(page, name string) float64 {
	for line := range strings.Lines(page) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// serveWithSandboxes lays out a `consentgate serve` configuration whose vendor
// profiles point at sandboxes running in this test process, pinned to loopback
// and trusted through the sandbox CA as dev does, so that the gateway process
// holds nothing but the gateway.
func serveWithSandboxes(t *testing.T, gw, fw, admin string) (dir, file string, sb *sandbox.Set) {
	t.Helper()
	dir, file, pki := writeServeConfig(t)
	cb := freeAddr(t)
	creds, err := loadOrCreateDevSecrets(context.Background(), filepath.Join(dir, "secrets.yaml"), pki)
	if err != nil {
		t.Fatal(err)
	}
	sb, err = startSandboxes(pki, creds, 0, 0, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	baseURL := regexp.MustCompile(`(?m)^base_url: https://[^/\s]+(\S*)$`)
	authorizeURL := regexp.MustCompile(`(?m)^(\s*authorize_url: )https://[^/\s]+(\S*)$`)
	for _, s := range sb.All() {
		profile := filepath.Join(dir, "vendors", s.Vendor+".yaml")
		data, err := os.ReadFile(profile)
		if err != nil {
			t.Fatal(err)
		}
		if !baseURL.Match(data) {
			t.Fatalf("%s has no base_url line", profile)
		}
		// The dev PKI made here names no vendor host: the sandboxes are localhost.
		data = baseURL.ReplaceAll(data, []byte("base_url: "+s.URL+"${1}\nupstream:\n  ca_file: "+pki.Path(certs.DevSandboxRootCert)+
			"\n  server_name: localhost\n  pin: [127.0.0.1]"))
		// The end user's browser logs in at the sandbox too.
		data = authorizeURL.ReplaceAll(data, []byte("${1}"+s.URL+"${2}"))
		writeTestFile(t, profile, string(data))
	}
	writeTestFile(t, file, `node: soak-1
trust_domain: consentgate.test
data_dir: `+dir+`
listen:
  gateway: `+gw+`
  forward: `+fw+`
  admin: `+admin+`
  callbacks: `+cb+`
tls:
  cert_file: pki/gateway.crt
  key_file: pki/gateway.key
  client_ca_file: pki/ca.crt
secrets:
  provider: file
  file:
    path: secrets.yaml
policy:
  dir: policies
  # Under -race OPA is many times slower than in a real build: the 50 ms
  # default would turn into denials (the in-process tests do the same).
  timeout: 5s
audit:
  path: audit.db
  mode: strict
keys:
  subject_hmac: consentgate/keys#subject_hmac
  field_hmac: consentgate/keys#field_hmac
  audit_signing: consentgate/keys#audit_signing
  token_seal: consentgate/keys#token_seal
  token_vault: consentgate/keys#token_vault
oauth:
  public_url: https://`+cb+`
vendors: [vendors/kb.yaml, vendors/airbank.yaml, vendors/biometric.yaml, vendors/finid.yaml, vendors/banqware.yaml]
`)
	// Air Bank and KB log the end user in and send the browser back to
	// consentgate's callbacks listener, which they know as the vendors' portals would.
	for _, v := range []string{"kb", "airbank"} {
		if err := sb.RegisterRedirectURI(v, "https://"+cb+"/oauth/"+v+"/callback"); err != nil {
			t.Fatal(err)
		}
	}
	return dir, file, sb
}

const soakReturnTo = "http://127.0.0.1/soak/authorized"

// authorizeAtBanks runs the end user's login at Air Bank and KB for consentID,
// as a browser would: start on the admin listener, the bank's login page, the
// gateway's callback, and back to the app's page.
func authorizeAtBanks(t *testing.T, dir string, app *http.Client, adminURL, consentID string) {
	t.Helper()
	roots := x509.NewCertPool()
	for _, f := range []string{"pki/ca.crt", "pki/" + certs.DevSandboxRootCert} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		roots.AppendCertsFromPEM(data)
	}
	browser := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}},
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if req.URL.String() == soakReturnTo {
				return http.ErrUseLastResponse
			}
			return nil
		}}
	for _, v := range []string{"kb", "airbank"} {
		q := url.Values{"consent_id": {consentID}, "return_to": {soakReturnTo}}
		status, _, body, err := appCall(context.Background(), app, adminURL+"/v1/oauth/"+v+"/start?"+q.Encode(), "GET", "", nil)
		var start struct {
			AuthorizeURL string `json:"authorize_url"`
		}
		if err != nil || status != http.StatusOK || json.Unmarshal(body, &start) != nil {
			t.Fatalf("%s start: %d %v %s", v, status, err, body)
		}
		resp, err := browser.Get(start.AuthorizeURL)
		if err != nil {
			t.Fatalf("%s login: %v", v, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s login ended with %d", v, resp.StatusCode)
		}
	}
}

// soakConsent registers, through the admin API, a consent covering every vendor,
// category and purpose of the load, and returns its id.
func soakConsent(t *testing.T, c *http.Client, adminURL string) string {
	t.Helper()
	var vendors, purposes []string
	for i := range devCalls {
		vendor, purpose, _, _, _ := loadCall(i)
		vendors, purposes = append(vendors, vendor), append(purposes, purpose)
	}
	slices.Sort(purposes)
	body, _ := json.Marshal(map[string]any{"subject": "soak-user", "vendors": vendors, "purposes": slices.Compact(purposes),
		"categories": slices.DeleteFunc(slices.Clone(configs.Categories), func(c string) bool { return c == "metadata" }),
		"evidence":   map[string]string{"text": "reliability soak"}, "ttl": "24h"})
	status, _, answer, err := appCall(context.Background(), c, adminURL+"/v1/consents", "POST", string(body), nil)
	if err != nil || status != http.StatusCreated {
		t.Fatalf("creating the soak consent: %d %s %v", status, answer, err)
	}
	var created struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(answer, &created); err != nil || created.ID == "" {
		t.Fatalf("consent answer %s: %v", answer, err)
	}
	return created.ID
}
