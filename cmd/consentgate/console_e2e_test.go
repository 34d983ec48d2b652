package main

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/internal/browser"
)

// The console is on the admin listener, behind its mTLS: an auditor's
// certificate opens it, an app's does not.
func TestDevConsoleOnTheAdminListener(t *testing.T) {
	e := startTestDev(t, t.TempDir())
	resp, body := call(t, e.clientFor(t, "auditor"), "GET", e.adminURL()+"/console/integrity", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") ||
		!strings.Contains(string(body), "Verify the whole log now") {
		t.Errorf("an auditor: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Security-Policy"), body)
	}
	if resp, _ := call(t, e.app, "GET", e.adminURL()+"/console/", "", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("an app: %d", resp.StatusCode)
	}
}

// consoleBrowser is a real headless Chromium presenting the dev PKI's
// certificate of name (auditor, secops) and trusting the dev root.
func (e *devEnv) consoleBrowser(t *testing.T, name string) context.Context {
	t.Helper()
	file := e.pki.Path(certs.AppCert(name))
	pair, err := tls.LoadX509KeyPair(file, certs.KeyFile(file))
	if err != nil {
		t.Fatal(err)
	}
	roots, err := os.ReadFile(e.pki.Path(certs.DevRootCert))
	if err != nil {
		t.Fatal(err)
	}
	chain, err := certs.ParseCertificates(roots)
	if err != nil {
		t.Fatal(err)
	}
	return browser.Start(t, browser.Options{Certificate: pair, Roots: chain})
}

// page opens path on the console and returns its text; anything but 200 fails.
func (e *devEnv) page(t *testing.T, ctx context.Context, path string) string {
	t.Helper()
	status, err := browser.Open(ctx, e.adminURL()+path)
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET %s: %d %v", path, status, err)
	}
	return text(t, ctx)
}

func text(t *testing.T, ctx context.Context) string {
	t.Helper()
	s, err := browser.Text(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func submit(t *testing.T, ctx context.Context, form string, fields map[string]string) string {
	t.Helper()
	status, err := browser.Submit(ctx, form, fields)
	if err != nil || status != http.StatusOK {
		t.Fatalf("submitting %s: %d %v\n%s", form, status, err, text(t, ctx))
	}
	return text(t, ctx)
}

func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	u, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// shot writes a screenshot of the page to docs/console/NAME.png when the test
// runs with -update (make docs): what the docs show is what the browser saw.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if !*update {
		return
	}
	if err := browser.Screenshot(ctx, filepath.Join("..", "..", "docs", "console", name+".png")); err != nil {
		t.Fatal(err)
	}
}

// The console in a real browser, with each role's certificate: an auditor
// filters the timeline, opens a record, looks a person up and prints their
// access report, and cannot revoke; an admin revokes a consent (after a
// confirmation), and the next vendor call under it is refused; a policy dry
// run shows which recorded decisions a candidate would change.
func TestDevConsoleInABrowser(t *testing.T) {
	dir := t.TempDir()
	e := startTestDev(t, dir)
	const person = "console-user-1"
	id := e.createConsent(t, e.app, `{"subject":"`+person+`","vendors":["airbank"],"purposes":["kyc-onboarding"],"categories":["identity"],"evidence":{"text":"checkbox"},"ttl":"24h"}`)
	e.authorize(t, "airbank", id)
	const personal = "/v/airbank/openapi/glClientIdentity/v1/personalData"
	if resp, b := call(t, e.app, "GET", e.gatewayURL()+personal, "", under(id, "kyc-onboarding")); resp.StatusCode != http.StatusOK {
		t.Fatalf("the call under the consent: %d %s", resp.StatusCode, b)
	}
	if resp, _ := call(t, e.app, "GET", e.gatewayURL()+personal, "", under(id, "aml-screening")); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a call for another purpose: %d", resp.StatusCode)
	}

	// An app's certificate opens no console page.
	if status, err := browser.Open(e.consoleBrowser(t, "onboarding-web"), e.adminURL()+"/console/"); err != nil || status != http.StatusForbidden {
		t.Errorf("an app's browser: %d %v", status, err)
	}

	auditor := e.consoleBrowser(t, "auditor")
	home := e.page(t, auditor, "/console/")
	if !strings.Contains(home, "auditor (auditor)") {
		t.Errorf("the home page does not name the auditor:\n%s", home)
	}
	shot(t, auditor, "home")

	// The timeline, filtered to denials at Air Bank: the denied call, not the allowed one.
	e.page(t, auditor, "/console/timeline")
	shot(t, auditor, "timeline")
	got := submit(t, auditor, "form.filters", map[string]string{"vendor": "airbank", "outcome": "denied"})
	if !strings.Contains(got, "denied (policy-denied)") || strings.Contains(got, "\tforwarded") {
		t.Errorf("the filtered timeline:\n%s", got)
	}
	u, _ := url.Parse(location(t, auditor))
	if u.Query().Get("vendor") != "airbank" || u.Query().Get("outcome") != "denied" {
		t.Errorf("the filter is not in the page's address: %s", u)
	}
	// The first record of the page: its decision, policy revision, consent and place in the chain.
	link, err := chromedp.Run(auditor, chromedp.AttributeValue(chromedp.CSS("table.records tbody a"), "href"))
	if err != nil {
		t.Fatal(err)
	}
	rec := e.page(t, auditor, link.Value)
	for _, want := range []string{"Decision", "deny", "Policy revision", "Consent", id, "Place in the chain", "Previous hash", "Vouched for by", "refusal", "policy-denied"} {
		if !strings.Contains(rec, want) {
			t.Errorf("the record page lacks %q:\n%s", want, rec)
		}
	}
	shot(t, auditor, "record")

	// A person, by a POSTed id: their consent, and never the id in an address or the page.
	e.page(t, auditor, "/console/person")
	got = submit(t, auditor, "form.lookup", map[string]string{"subject": person})
	if !strings.Contains(got, id) || !strings.Contains(got, "active") || !strings.Contains(got, "Authorised at\nairbank on ") ||
		strings.Contains(got, person) || strings.Contains(location(t, auditor), person) {
		t.Errorf("the person page:\n%s\n(at %s)", got, location(t, auditor))
	}
	shot(t, auditor, "person")
	report := submit(t, auditor, "form.inline", nil)
	if !strings.Contains(report, "Disclosures") || !strings.Contains(report, "airbank") || !strings.Contains(report, "kyc-onboarding") {
		t.Errorf("the printable access report:\n%s", report)
	}
	shot(t, auditor, "access-report")

	// An auditor sees no revoke button, and a revocation they forge is refused.
	if got := e.page(t, auditor, "/console/consents?id="+id); !strings.Contains(got, id) || strings.Contains(got, "Revoke") {
		t.Errorf("the consents page for an auditor:\n%s", got)
	}
	ac := e.clientFor(t, "auditor")
	_, page := call(t, ac, "GET", e.adminURL()+"/console/person", "", nil)
	token := regexp.MustCompile(`name="csrf" value="([0-9a-f]{64})"`).FindSubmatch(page)
	if token == nil {
		t.Fatalf("no CSRF token on the person page:\n%s", page)
	}
	req, _ := http.NewRequest("POST", e.adminURL()+"/console/consents/"+id+"/revoke", strings.NewReader("confirm=yes&csrf="+string(token[1])))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err := ac.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("an auditor's revocation: %v %v", resp, err)
	}

	// An admin revokes it, after a confirmation; the next call under it is refused.
	admin := e.consoleBrowser(t, "secops")
	e.page(t, admin, "/console/consents?id="+id)
	shot(t, admin, "consents")
	confirm := submit(t, admin, "table.consents form", nil)
	if !strings.Contains(confirm, "Revoke consent") || !strings.Contains(confirm, "cannot be undone") {
		t.Fatalf("no confirmation before the revocation:\n%s", confirm)
	}
	if resp, b := call(t, e.app, "GET", e.gatewayURL()+personal, "", under(id, "kyc-onboarding")); resp.StatusCode != http.StatusOK {
		t.Fatalf("the consent was revoked before the confirmation: %d %s", resp.StatusCode, b)
	}
	shot(t, admin, "revoke-confirm")
	if done := submit(t, admin, "section.confirm form", nil); !strings.Contains(done, "is revoked") {
		t.Fatalf("after the confirmation:\n%s", done)
	}
	resp, b := call(t, e.app, "GET", e.gatewayURL()+personal, "", under(id, "kyc-onboarding"))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "consent revoked") {
		t.Errorf("the call after the revocation: %d %s", resp.StatusCode, b)
	}

	// A dry run of a candidate that takes Air Bank from the onboarding app:
	// the calls it made are newly denied; nothing goes live.
	data, err := os.ReadFile(filepath.Join(dir, "policies", "data.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const vendors = "vendors: [kb, airbank, biometric, finid, banqware]"
	if !strings.Contains(string(data), vendors) {
		t.Fatalf("data.yaml no longer holds %q", vendors)
	}
	candidate := filepath.Join(t.TempDir(), "data.yaml")
	os.WriteFile(candidate, []byte(strings.Replace(string(data), vendors, "vendors: [kb, biometric, finid, banqware]", 1)), 0o600)
	before := e.engine.Revision()
	e.page(t, admin, "/console/policy")
	if _, err := chromedp.Run(admin, chromedp.SetUploadFiles(chromedp.CSS(`input[name="files"]`), []string{candidate})); err != nil {
		t.Fatal(err)
	}
	dry := submit(t, admin, `form[action="/console/policy/dry-run"]`, map[string]string{"last": "50"})
	if !regexp.MustCompile(`[1-9]\d* newly denied`).MatchString(dry) || !strings.Contains(dry, "-    vendors: [kb, airbank") {
		t.Errorf("the dry run:\n%s", dry)
	}
	if e.engine.Revision() != before {
		t.Error("the dry run put the candidate into service")
	}
	shot(t, admin, "policy-dry-run")
	// Vendors: KB's client certificate, when its secrets were confirmed, and the calls to Air Bank.
	e.page(t, admin, "/console/vendors")
	rows, err := chromedp.Run(admin, chromedp.Evaluate[[]string](`[...document.querySelectorAll("table.vendors tbody tr")].map(
		r => [...r.cells].map(c => c.innerText.replace(/\n/g, " ")).join("|"))`))
	if err != nil {
		t.Fatal(err)
	}
	kb := regexp.MustCompile(`^kb\|.*vendor-client: 3\d\d days left.*\|\d+s ago\|`)
	airbank := regexp.MustCompile(`^airbank\|.*\|[1-9]\d*\|[1-9]\d*\|[1-9]\d*\|0\|\d+\|0\.0%$`) // calls, 2xx, 4xx, 5xx, other, rate
	if !slices.ContainsFunc(rows, kb.MatchString) || !slices.ContainsFunc(rows, airbank.MatchString) {
		t.Errorf("the vendors page's rows:\n%s", strings.Join(rows, "\n"))
	}
	shot(t, admin, "vendors")
	e.page(t, admin, "/console/integrity")
	if got := submit(t, admin, `form[action="/console/integrity"]`, nil); !strings.Contains(got, "Verified:") {
		t.Errorf("the integrity check:\n%s", got)
	}
	shot(t, admin, "integrity")

	// The person's id is in no log line and no audit record.
	e.assertNoPII(t, person)
}
