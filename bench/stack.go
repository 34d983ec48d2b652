package main

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/consentgate/consentgate/certs"
)

// benchTrustDomain is the SPIFFE trust domain of the benchmark's app certificate.
const benchTrustDomain = "consentgate.bench"

// stack is what every target shares: a work folder on the disk being
// measured, a dev PKI (internal CA, gateway and app certificates, the
// I.CA-style company seal kb requires, the vendor server CA), the vendor
// credentials, and the running upstream.
type stack struct {
	dir         string
	pki         *certs.DevPKI
	apiKey      string
	token       string
	upstream    *child
	upstreamURL string // https://127.0.0.1:port, no path
	// appTLS is the load generator's identity towards nginx and consentgate:
	// the onboarding-web app certificate, trusting the internal CA.
	appTLS *tls.Config
	// auditorTLS reads consentgate's metrics, which apps may not.
	auditorTLS *tls.Config
	// vendorTLS is the company seal towards the vendor, trusting the vendor's
	// CA: what an app calling the vendor directly would hold.
	vendorTLS *tls.Config
}

// newStack creates the PKI and credentials in dir and starts the upstream.
func newStack(dir string) (*stack, error) {
	pki, err := certs.LoadOrCreateDevPKI(filepath.Join(dir, "pki"), []string{kbHost})
	if err != nil {
		return nil, err
	}
	if err := issueBenchLeaves(pki); err != nil {
		return nil, err
	}
	s := &stack{dir: dir, pki: pki, apiKey: randomHex(24), token: randomHex(32)}
	if s.appTLS, err = clientTLS(pki.Path(certs.AppCert("onboarding-web")), pki.Path(certs.DevRootCert), ""); err != nil {
		return nil, err
	}
	if s.auditorTLS, err = clientTLS(pki.Path(certs.AppCert("auditor")), pki.Path(certs.DevRootCert), ""); err != nil {
		return nil, err
	}
	if s.vendorTLS, err = clientTLS(pki.Path(certs.DevKBCert), pki.Path(certs.DevSandboxRootCert), kbHost); err != nil {
		return nil, err
	}
	cfgFile := filepath.Join(dir, "upstream.json")
	raw, _ := json.Marshal(upstreamConfig{
		CertFile:     pki.Path(certs.DevSandboxCert),
		KeyFile:      certs.KeyFile(pki.Path(certs.DevSandboxCert)),
		ClientCAFile: pki.Path(certs.DevICARootCert),
		APIKey:       s.apiKey,
		AccessToken:  s.token,
	})
	if err := os.WriteFile(cfgFile, raw, 0o600); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), upstreamRoleEnv+"="+cfgFile)
	cmd.Stderr = os.Stderr
	if s.upstream, err = startChild("upstream", cmd, "listening ", 30*time.Second); err != nil {
		return nil, err
	}
	s.upstreamURL = "https://" + s.upstream.addr
	return s, nil
}

func (s *stack) close() error { return s.upstream.stop() }

// directTarget calls the vendor with the company's certificate and credentials,
// as an app would without a gateway.
func (s *stack) directTarget() *target {
	h := http.Header{}
	h.Set(apiKeyHeader, s.apiKey)
	h.Set("Authorization", "Bearer "+s.token)
	return &target{
		name: "direct", url: s.upstreamURL + kbPath, header: h, tls: s.vendorTLS,
		pid: s.upstream.pid(), check: checkFullBody,
	}
}

// clientTLS is a client configuration presenting certFile (key beside it) and
// trusting caFile; serverName overrides the name checked in the server's
// certificate. HTTP/1.1 only: one connection is one concurrent client.
func clientTLS(certFile, caFile, serverName string) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(certFile, certs.KeyFile(certFile))
	if err != nil {
		return nil, fmt.Errorf("client certificate %s: %w", certFile, err)
	}
	pool, err := certs.LoadPool(caFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{pair},
		RootCAs:      pool,
		ServerName:   serverName,
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	}, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// gatewayCert is the serving certificate nginx and consentgate both use.
const gatewayCert = "bench/gateway.crt"

// issueBenchLeaves issues, from the dev PKI's intermediate, the serving
// certificate (for 127.0.0.1) and the onboarding-web app certificate, each
// written with the intermediate so peers that trust only the root verify it.
// The benchmark needs no ACME: it measures calls, not certificate issuance.
func issueBenchLeaves(pki *certs.DevPKI) error {
	interPEM, err := os.ReadFile(pki.Path(certs.DevIntermediateCert))
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(certs.KeyFile(pki.Path(certs.DevIntermediateCert)))
	if err != nil {
		return err
	}
	inter, err := certs.ParseCA(interPEM, keyPEM)
	if err != nil {
		return err
	}
	leaves := map[string]*x509.Certificate{
		gatewayCert: {Subject: pkix.Name{CommonName: "consentgate bench"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
			DNSNames: []string{"localhost"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}},
		certs.AppCert("onboarding-web"): certs.AppTemplate(benchTrustDomain, "app", "onboarding-web", 24*time.Hour),
		certs.AppCert("auditor"):        certs.AppTemplate(benchTrustDomain, "auditor", "auditor", 24*time.Hour),
	}
	for name, tmpl := range leaves {
		cert, key, err := inter.Issue(tmpl)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(pki.Path(name)), 0o700); err != nil {
			return err
		}
		if err := certs.WriteKeyPair(pki.Path(name), &tls.Certificate{Certificate: [][]byte{cert.Raw, inter.Cert.Raw}, PrivateKey: key}); err != nil {
			return err
		}
	}
	return nil
}
