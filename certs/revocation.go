package certs

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"
)

// ServerRevocation checks a server's certificate the way its issuer offers:
// the OCSP response the server stapled, else one from the certificate's OCSP
// responder, else the CRL at its distribution point. Answers are kept until
// their NextUpdate, so a vendor's handshakes ask the network rarely. A
// certificate that names no responder and no CRL cannot be revoked by its
// issuer's means and passes.
type ServerRevocation struct {
	client *http.Client
	now    func() time.Time

	mu   sync.Mutex
	ocsp map[string]*ocsp.Response       // issuer key hash + serial
	crls map[string]*x509.RevocationList // by URL, signature checked
}

// maxRevocationBytes bounds an OCSP response or CRL read from the network.
const maxRevocationBytes = 16 << 20

// NewServerRevocation asks responders and CRL servers with a client that
// gives each answer timeout.
func NewServerRevocation(timeout time.Duration) *ServerRevocation {
	return &ServerRevocation{client: &http.Client{Timeout: timeout, Transport: &http.Transport{Proxy: nil}},
		now: time.Now, ocsp: map[string]*ocsp.Response{}, crls: map[string]*x509.RevocationList{}}
}

// Revocable reports whether leaf names a way to learn it was revoked: an
// OCSP responder or a CRL to fetch over HTTP.
func Revocable(leaf *x509.Certificate) bool {
	return httpURL(leaf.OCSPServer) != "" || httpURL(leaf.CRLDistributionPoints) != ""
}

// Check reports whether leaf, issued by issuer, is good: nil, ErrRevoked, or
// ErrRevocationUnknown with why (no answer could be had or trusted).
func (r *ServerRevocation) Check(ctx context.Context, leaf, issuer *x509.Certificate, stapled []byte) error {
	if len(stapled) > 0 {
		if resp, err := ocsp.ParseResponseForCert(stapled, leaf, issuer); err == nil && r.current(resp.ThisUpdate, resp.NextUpdate) {
			return ocspStatus(resp)
		}
	}
	var tried []string
	if httpURL(leaf.OCSPServer) != "" {
		resp, err := r.askOCSP(ctx, leaf, issuer)
		if err == nil {
			return ocspStatus(resp)
		}
		tried = append(tried, err.Error())
	}
	if url := httpURL(leaf.CRLDistributionPoints); url != "" {
		list, err := r.crl(ctx, url, issuer)
		if err == nil {
			for _, e := range list.RevokedCertificateEntries {
				if e.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
					return fmt.Errorf("%w: serial %s, on the CRL of %s", ErrRevoked, leaf.SerialNumber, issuer.Subject)
				}
			}
			return nil
		}
		tried = append(tried, err.Error())
	}
	if len(tried) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrRevocationUnknown, strings.Join(tried, "; "))
}

func ocspStatus(resp *ocsp.Response) error {
	switch resp.Status {
	case ocsp.Good:
		return nil
	case ocsp.Revoked:
		return fmt.Errorf("%w: serial %s, by OCSP, at %s", ErrRevoked, resp.SerialNumber, resp.RevokedAt.UTC().Format(time.RFC3339))
	}
	return fmt.Errorf("%w: the OCSP responder does not know serial %s", ErrRevocationUnknown, resp.SerialNumber)
}

// current reports whether an answer made at this and valid until next holds
// now (no NextUpdate: it holds for an hour).
func (r *ServerRevocation) current(this, next time.Time) bool {
	now := r.now()
	if next.IsZero() {
		next = this.Add(time.Hour)
	}
	return !now.Before(this.Add(-5*time.Minute)) && now.Before(next)
}

func (r *ServerRevocation) askOCSP(ctx context.Context, leaf, issuer *x509.Certificate) (*ocsp.Response, error) {
	key := string(issuer.SubjectKeyId) + "|" + string(issuer.RawSubject) + "|" + leaf.SerialNumber.String()
	r.mu.Lock()
	resp := r.ocsp[key]
	r.mu.Unlock()
	if resp != nil && r.current(resp.ThisUpdate, resp.NextUpdate) {
		return resp, nil
	}
	der, err := ocsp.CreateRequest(leaf, issuer, nil)
	if err != nil {
		return nil, err
	}
	url := httpURL(leaf.OCSPServer)
	body, err := r.fetch(ctx, http.MethodPost, url, der)
	if err != nil {
		return nil, fmt.Errorf("OCSP %s: %w", url, err)
	}
	if resp, err = ocsp.ParseResponseForCert(body, leaf, issuer); err != nil {
		return nil, fmt.Errorf("OCSP %s: %w", url, err)
	}
	if !r.current(resp.ThisUpdate, resp.NextUpdate) {
		return nil, fmt.Errorf("OCSP %s: the answer is not current (made %s)", url, resp.ThisUpdate.UTC().Format(time.RFC3339))
	}
	r.mu.Lock()
	r.ocsp[key] = resp
	r.mu.Unlock()
	return resp, nil
}

func (r *ServerRevocation) crl(ctx context.Context, url string, issuer *x509.Certificate) (*x509.RevocationList, error) {
	r.mu.Lock()
	list := r.crls[url]
	r.mu.Unlock()
	if list != nil && r.current(list.ThisUpdate, list.NextUpdate) && bytes.Equal(list.RawIssuer, issuer.RawSubject) {
		return list, nil
	}
	der, err := r.fetch(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("CRL %s: %w", url, err)
	}
	if list, err = x509.ParseRevocationList(der); err != nil {
		return nil, fmt.Errorf("CRL %s: %w", url, err)
	}
	if err := list.CheckSignatureFrom(issuer); err != nil {
		return nil, fmt.Errorf("CRL %s is not signed by %s: %w", url, issuer.Subject, err)
	}
	if !r.current(list.ThisUpdate, list.NextUpdate) {
		return nil, fmt.Errorf("CRL %s is not current (next update %s)", url, list.NextUpdate.UTC().Format(time.RFC3339))
	}
	r.mu.Lock()
	r.crls[url] = list
	r.mu.Unlock()
	return list, nil
}

func (r *ServerRevocation) fetch(ctx context.Context, method, url string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/ocsp-request")
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New(resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, maxRevocationBytes))
}

// IssuerOf is the certificate among candidates that signed leaf, nil if none.
func IssuerOf(leaf *x509.Certificate, candidates ...*x509.Certificate) *x509.Certificate {
	for _, c := range candidates {
		if bytes.Equal(c.RawSubject, leaf.RawIssuer) && leaf.CheckSignatureFrom(c) == nil {
			return c
		}
	}
	return nil
}

// httpURL is the first http or https URL of urls (a CRL may also be offered
// over LDAP, which is not fetched).
func httpURL(urls []string) string {
	for _, u := range urls {
		if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
			return u
		}
	}
	return ""
}
