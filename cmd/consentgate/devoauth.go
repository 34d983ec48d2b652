package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"time"

	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/consent"
)

// devReturnTo is where dev's own logins end: the onboarding app's allowed
// return page in the shipped policy data, which is never fetched.
const devReturnTo = "https://onboarding.example-bank.cz/kyc/bank-linked?via=consentgate-dev"

// authorizeSeeds runs the OAuth2 login of every seeded consent at every vendor
// that has one, as an app and its user's browser would: the app asks the admin
// listener for the login URL, the browser opens it at the sandbox, which approves
// the test user and sends it to the gateway's callback, which stores the tokens
// and sends it on to the app. A seeded consent revoked earlier is left alone.
func (d *devStack) authorizeSeeds(ctx context.Context) error {
	appFile := d.pki.Path(certs.AppCert(devApp))
	pair, err := tls.LoadX509KeyPair(appFile, certs.KeyFile(appFile))
	if err != nil {
		return err
	}
	internal, err := certs.LoadPool(d.pki.Path(certs.DevRootCert))
	if err != nil {
		return err
	}
	data, err := readPEMs(d.pki.Path(certs.DevRootCert), d.pki.Path(certs.DevSandboxRootCert))
	if err != nil {
		return err
	}
	browserRoots := x509.NewCertPool()
	browserRoots.AppendCertsFromPEM(data)
	app := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: internal, Certificates: []tls.Certificate{pair}}}}
	defer app.CloseIdleConnections()
	browser := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: browserRoots}},
		// The browser follows the sandbox to the gateway, and stops where the app's page would load.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.String() == devReturnTo || len(via) > 5 {
				return http.ErrUseLastResponse
			}
			return nil
		}}
	defer browser.CloseIdleConnections()

	var errs []error
	for _, id := range devConsents {
		c, err := d.consents.Get(ctx, id)
		if err != nil {
			return err
		}
		if c.Status != consent.Active {
			continue
		}
		for _, v := range d.cfg.Vendors {
			if v.AuthorizationCode() == nil || !slices.Contains(c.Vendors, v.ID) {
				continue
			}
			if err := d.authorizeSeed(ctx, app, browser, id, v.ID); err != nil {
				errs = append(errs, fmt.Errorf("consent %s at %s: %w", id, v.ID, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (d *devStack) authorizeSeed(ctx context.Context, app, browser *http.Client, consentID, vendor string) error {
	start := d.adminURL() + "/v1/oauth/" + vendor + "/start?" +
		url.Values{"consent_id": {consentID}, "return_to": {devReturnTo}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, start, nil)
	if err != nil {
		return err
	}
	resp, err := app.Do(req)
	if err != nil {
		return err
	}
	var answer struct {
		AuthorizeURL string `json:"authorize_url"`
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&answer)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil {
		return fmt.Errorf("start answered %d", resp.StatusCode)
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodGet, answer.AuthorizeURL, nil)
	if err != nil {
		return err
	}
	resp, err = browser.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != devReturnTo {
		return fmt.Errorf("the login ended with %d, not at the app's page", resp.StatusCode)
	}
	return nil
}

// readPEMs concatenates PEM files, for a pool that trusts them all.
func readPEMs(files ...string) ([]byte, error) {
	var out []byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		out = append(append(out, data...), '\n')
	}
	return out, nil
}
