// Package browser gives tests a real headless Chromium (Debian's, which
// deploy/scripts/test-deps.sh installs) that trusts the test's CA and presents
// a client certificate over mTLS, driven with chromedp, one profile per browser.
package browser
