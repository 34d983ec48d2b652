package browser

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/consentgate/consentgate/internal/logsink"
	"github.com/consentgate/consentgate/internal/tier"
)

// Options are what the browser presents and trusts.
type Options struct {
	// Certificate is the client certificate (with its key, and chain if any)
	// the browser presents to a loopback https origin that asks for one; the
	// zero value presents none.
	Certificate tls.Certificate
	// Roots are the CAs the browser trusts for TLS servers, besides the
	// public ones it ships with.
	Roots []*x509.Certificate
}

// The origins that get the certificate without a prompt: loopback only, so a
// test's browser never offers it to anything else. Chromium's content settings
// patterns: ":*" is any port (a test server's is random); its "[*.]" host
// wildcard does not match IP addresses.
var loopback = []string{"https://127.0.0.1:*", "https://[::1]:*", "https://localhost:*"}

const hint = "run deploy/scripts/test-deps.sh (make test-deps)"

// Start runs a headless Chromium for t with o and returns its context for
// chromedp and the helpers here; cleanup closes it. Skipped by go test -short;
// in the full tier a missing Chromium or NSS tool fails t.
func Start(t testing.TB, o Options) context.Context {
	t.Helper()
	tier.Needs(t, "headless Chromium (deploy/scripts/test-deps.sh installs it)")
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("Chromium is not installed (%s): %v", hint, err)
	}
	for _, tool := range []string{"certutil", "pk12util"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("NSS tools are not installed (%s installs libnss3-tools): %v", hint, err)
		}
	}
	// Chromium on Linux keeps certificates and keys in $HOME/.pki/nssdb, so
	// each browser gets a HOME of its own: its NSS db holds only this test's
	// CAs and certificate.
	home := t.TempDir()
	if err := newNSSDB(filepath.Join(home, ".pki", "nssdb"), o); err != nil {
		t.Fatal(err)
	}
	profile := filepath.Join(home, ".config", "chromium")
	if err := writePreferences(profile); err != nil {
		t.Fatal(err)
	}

	out := new(logsink.Buffer)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(profile),
		// XDG_* too, or a developer's own would send the cache there.
		chromedp.Env("HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "XDG_CACHE_HOME="+filepath.Join(home, ".cache")),
		// Chromium refuses to start as root with its sandbox on; as anyone
		// else it keeps it.
		chromedp.Flag("no-sandbox", os.Geteuid() == 0),
		// Light on 2 cores: no GPU, no component downloads.
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1280, 800),
		chromedp.CombinedOutput(out),
	)...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		// Cancel closes the browser gracefully and waits for it to exit, so
		// nothing writes in home while t.TempDir removes it.
		chromedp.Cancel(ctx)
		cancel()
		cancelAlloc()
		if t.Failed() {
			t.Logf("Chromium's output:\n%s", withoutDBus(out.String()))
		}
	})
	// The first run starts the browser: it must not carry a caller's timeout,
	// which would stop the whole browser when it expires.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v\n%s", bin, err, out)
	}
	return ctx
}

// newNSSDB makes an NSS db in dir holding o's roots, trusted for TLS servers,
// and o's client certificate with its key.
func newNSSDB(dir string, o Options) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	db := "sql:" + dir
	if err := run(nil, "certutil", "-N", "-d", db, "--empty-password"); err != nil {
		return err
	}
	for i, ca := range o.Roots {
		// "C,,": a CA trusted to issue TLS server certificates, nothing else.
		if err := run(ca.Raw, "certutil", "-A", "-d", db, "-n", fmt.Sprintf("root-%d", i), "-t", "C,,"); err != nil {
			return err
		}
	}
	if len(o.Certificate.Certificate) == 0 {
		return nil
	}
	// certutil cannot import a private key; pk12util imports both from a
	// PKCS#12 file, which needs a password: a throwaway one.
	leaf, err := x509.ParseCertificate(o.Certificate.Certificate[0])
	if err != nil {
		return fmt.Errorf("client certificate: %w", err)
	}
	var chain []*x509.Certificate
	for _, der := range o.Certificate.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("client certificate chain: %w", err)
		}
		chain = append(chain, c)
	}
	password := rand.Text()
	p12, err := pkcs12.Modern.Encode(o.Certificate.PrivateKey, leaf, chain, password)
	if err != nil {
		return fmt.Errorf("client certificate: %w", err)
	}
	file := filepath.Join(dir, "client.p12")
	if err := os.WriteFile(file, p12, 0o600); err != nil {
		return err
	}
	defer os.Remove(file)
	return run(nil, "pk12util", "-d", db, "-i", file, "-W", password)
}

// writePreferences makes a profile in dir that selects the client certificate
// for loopback origins without asking. Without it Chromium, headless too,
// waits for someone to pick a certificate in a dialog that never shows. It is
// the profile's own setting of what the AutoSelectCertificateForUrls policy
// sets machine-wide, so no file under /etc/chromium is needed.
func writePreferences(dir string) error {
	exceptions := map[string]any{}
	for _, origin := range loopback {
		// An empty filter matches any certificate: the NSS db holds one.
		exceptions[origin+",*"] = map[string]any{"setting": map[string]any{"filters": []any{map[string]any{}}}}
	}
	prefs, err := json.Marshal(map[string]any{"profile": map[string]any{"content_settings": map[string]any{
		"exceptions": map[string]any{"auto_select_certificate": exceptions}}}})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "Default"), 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "Default", "Preferences"), prefs, 0o600)
}

// run runs an NSS tool with stdin, naming it and its output when it fails.
func run(stdin []byte, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, args[0], err, out)
	}
	return nil
}

// withoutDBus leaves out the D-Bus complaints: a test machine has no session
// bus, and Chromium says so many times over.
func withoutDBus(out string) string {
	var b strings.Builder
	for line := range strings.Lines(out) {
		if !strings.Contains(line, "dbus") {
			b.WriteString(line)
		}
	}
	return b.String()
}
