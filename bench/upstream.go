package main

import (
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/consentgate/consentgate/certs"
)

// The upstream is a KYC vendor as the kb profile (configs/vendors/kb.yaml)
// describes it: mTLS with a client certificate from an I.CA-style CA carrying
// an IČO, an API key header and a bearer token, and one operation,
// GET /v1/clients/me/identity, answering kycBody. It runs as a child process
// of the benchmark (the benchmark binary started again with upstreamRoleEnv
// set) so that its CPU is not counted against the server under test and the
// load generator's CPU is not counted against it.

const (
	// upstreamRoleEnv, set to a config file, makes the benchmark binary serve
	// as the upstream instead of benchmarking.
	upstreamRoleEnv = "CONSENTGATE_BENCH_UPSTREAM"
	kbPath          = "/v1/clients/me/identity"
	kbHost          = "api.kb.cz"
	apiKeyHeader    = "apikey"
)

// kycBody is a KB client identity: every field the kb profile maps, plus the
// kind of fields a vendor adds without notice (contact data, a second
// document, verification details), which the shipped policy drops because
// the profile does not map them. 1.5 KB, as a KYC answer typically is. The
// person is invented; the birth number passes the Czech check rule.
const kycBody = `{"givenName":"Markéta","surname":"Dvořáková","birthNumber":"9157140410",` +
	`"dateOfBirth":"1991-07-14","gender":"F","citizenship":"CZ","politicallyExposedPerson":false,` +
	`"placeOfBirth":"Olomouc",` +
	`"identityDocument":{"type":"ID_CARD","number":"217456893","issuingCountry":"CZ",` +
	`"placeOfIssue":"Magistrát města Olomouce","issueDate":"2021-03-08","expiryDate":"2031-03-08"},` +
	`"permanentAddress":{"street":"Wellnerova","descriptiveNumber":"1322","orientationNumber":"3",` +
	`"postalCode":"77900","municipality":"Olomouc","country":"CZ"},` +
	`"identifyingCompanyIco":"27123456",` +
	`"contactAddress":{"street":"Třída Svobody","descriptiveNumber":"956","orientationNumber":"31",` +
	`"postalCode":"77900","municipality":"Olomouc","country":"CZ"},` +
	`"email":"marketa.dvorakova@example.cz","phoneNumber":"+420 603 123 456",` +
	`"secondaryDocument":{"type":"PASSPORT","number":"45123987","issuingCountry":"CZ",` +
	`"placeOfIssue":"Magistrát města Olomouce","issueDate":"2019-11-02","expiryDate":"2029-11-02"},` +
	`"maritalStatus":"MARRIED","education":"UNIVERSITY","employment":{"status":"EMPLOYED",` +
	`"employer":"Example Logistics a.s.","since":"2016-09-01","monthlyIncomeBand":"40000-60000"},` +
	`"taxResidency":[{"country":"CZ","tin":"9157140410"}],"fatcaUsPerson":false,` +
	`"verification":{"method":"KB_KLIC","level":"SUBSTANTIAL","verifiedAt":"2026-11-21T09:58:12Z",` +
	`"consentConfirmedAt":"2026-11-21T09:57:40Z","sessionId":"c3a9f1e2-7d44-4b8e-9a61-2f0c5d7e8b13",` +
	`"channel":"MOBILE_APP","ipAddressCountry":"CZ","riskScore":12},` +
	`"clientSince":"2012-05-17","segment":"RETAIL","branchCode":"0710","relationshipManager":null,` +
	`"lastUpdatedAt":"2026-10-30T14:22:05Z","dataVersion":"3.4.1"}`

// upstreamConfig is what the upstream child reads from the file named by
// upstreamRoleEnv (mode 0600: it holds the credentials it checks).
type upstreamConfig struct {
	CertFile     string `json:"cert_file"`
	KeyFile      string `json:"key_file"`
	ClientCAFile string `json:"client_ca_file"`
	APIKey       string `json:"api_key"`
	AccessToken  string `json:"access_token"`
}

// kbHandler answers the identity operation after the checks KB makes.
type kbHandler struct {
	apiKey, token []byte
	body          []byte
}

func (h *kbHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Verified in the handshake (certs.VerifyClientsFor).
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		http.Error(w, `{"code":"CLIENT_CERTIFICATE_REQUIRED"}`, http.StatusForbidden)
		return
	}
	if _, _, err := certs.ICO(r.TLS.PeerCertificates[0]); err != nil {
		http.Error(w, `{"code":"CLIENT_CERTIFICATE_NO_ICO"}`, http.StatusForbidden)
		return
	}
	if r.Method != http.MethodGet || r.URL.Path != kbPath {
		http.Error(w, `{"code":"NOT_FOUND"}`, http.StatusNotFound)
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.Header.Get(apiKeyHeader)), h.apiKey) != 1 {
		http.Error(w, `{"code":"API_KEY_INVALID"}`, http.StatusUnauthorized)
		return
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(token), h.token) != 1 {
		http.Error(w, `{"code":"ACCESS_TOKEN_INVALID"}`, http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(h.body)))
	w.Write(h.body)
}

// serveUpstream is the upstream child's main: it listens on loopback, prints
// "listening ADDR" and serves until killed.
func serveUpstream(configFile string) error {
	var c upstreamConfig
	if err := readRoleConfig(configFile, &c); err != nil {
		return err
	}
	pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return fmt.Errorf("upstream certificate: %w", err)
	}
	roots, err := certs.LoadPool(c.ClientCAFile)
	if err != nil {
		return fmt.Errorf("upstream client CA: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	// Both protocols, as vendors offer them: consentgate's transport takes
	// HTTP/2, nginx and the direct client HTTP/1.1 with keep-alive.
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	// KB takes its technological server certificate as the client's.
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	certs.VerifyClientsFor(tlsConfig, roots, true, x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth)
	srv := &http.Server{
		Handler:           &kbHandler{apiKey: []byte(c.APIKey), token: []byte(c.AccessToken), body: []byte(kycBody)},
		Protocols:         &protocols,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	fmt.Printf("listening %s\n", ln.Addr())
	return srv.ServeTLS(ln, "", "")
}

// readRoleConfig reads the JSON file a child process is started with.
func readRoleConfig(file string, v any) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}
