package main

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/freeport"

	"github.com/consentgate/consentgate/ca"
	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/internal/logsink"
)

// waitForLine polls out for re until it matches or 60 s pass (or done delivers).
func waitForLine(t *testing.T, out *logsink.Buffer, re *regexp.Regexp, done <-chan error, stderr *logsink.Buffer) []string {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m
		}
		select {
		case err := <-done:
			t.Fatalf("stopped before %s: %v\n%s", re, err, stderr.String())
		default:
		}
	}
	t.Fatalf("no %s; output:\n%s\n%s", re, out.String(), stderr.String())
	return nil
}

// The production path through the CLI: `ca serve` runs the internal CA,
// `serve` obtains its serving certificate from it over ACME (tls.acme), and
// an app certificate from `certs issue` is accepted while one from another CA
// is refused in the handshake.
func TestServeWithACMEFromCAServe(t *testing.T) {
	dir, file, pki := writeServeConfig(t)
	port, err := freeport.Loopback()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	caOut, caErr := &logsink.Buffer{}, &logsink.Buffer{}
	caDone := make(chan error, 1)
	go func() {
		caDone <- run(ctx, []string{"ca", "serve", "--dir", pki.Dir, "--listen", "127.0.0.1:0", "--name", "127.0.0.1",
			"--challenge-host", "127.0.0.1", "--challenge-http-port", strconv.Itoa(port)}, caOut, caErr)
	}()
	m := waitForLine(t, caOut, regexp.MustCompile(`ca ready url=\S+ acme=(\S+) root=\S+ fingerprint=[0-9a-f]{64} trust_domain=consentgate.test`), caDone, caErr)
	directory := m[1]

	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	acme := "  acme:\n    directory: " + directory + "\n    names: [127.0.0.1]\n    challenge_listen: 127.0.0.1:" + strconv.Itoa(port) + "\n"
	writeTestFile(t, file, strings.Replace(string(data), "  cert_file: pki/gateway.crt\n  key_file: pki/gateway.key\n", acme, 1))

	out, stderr := &logsink.Buffer{}, &logsink.Buffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", file}, out, stderr) }()
	addr := waitForLine(t, out, regexp.MustCompile(`ready gateway=https://(\S+)`), done, stderr)[1]

	e := &devEnv{devStack: &devStack{pki: pki}}
	resp, body := call(t, e.clientFor(t, "onboarding-web"), "GET", "https://"+addr+"/v/nobody/x", "", nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "no-route") {
		t.Errorf("app call: %d %s", resp.StatusCode, body)
	}
	leaf := resp.TLS.PeerCertificates[0]
	inter, err := os.ReadFile(pki.Path(certs.DevIntermediateCert))
	if err != nil {
		t.Fatal(err)
	}
	if ic, _ := certs.ParseCertificates(inter); leaf.Issuer.String() != ic[0].Subject.String() || len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal([]byte{127, 0, 0, 1}) {
		t.Errorf("serving certificate: issuer %s, IPs %v", leaf.Issuer, leaf.IPAddresses)
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life > 25*time.Hour {
		t.Errorf("serving certificate lives %s: not one from the CA's ACME provisioner", life)
	}
	if entries, err := os.ReadDir(filepath.Join(dir, "acme")); err != nil || len(entries) == 0 {
		t.Errorf("no certmagic storage under data_dir/acme: %v", err)
	}

	other, err := certs.NewCA(pkix.Name{CommonName: "another CA"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	fc, fk, err := other.Issue(certs.AppTemplate("consentgate.test", "app", "onboarding-web", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	roots := e.pool(t, certs.DevRootCert)
	foreign := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots,
		Certificates: []tls.Certificate{{Certificate: [][]byte{fc.Raw}, PrivateKey: fk}}}}}
	// Refused either way: the handshake fails, or (the gateway listener takes
	// certificate-less browsers for the OAuth2 callback, and Go's client does
	// not send a certificate the server's CA list does not name) 401.
	if resp, err := foreign.Get("https://" + addr + "/v/nobody/x"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("an app certificate from another CA got %d", resp.StatusCode)
		}
	}

	cancel()
	for name, c := range map[string]chan error{"serve": done, "ca serve": caDone} {
		select {
		case err := <-c:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop", name)
		}
	}
}

func TestCertsIssueRefusals(t *testing.T) {
	_, _, pki := writeServeConfig(t)
	out := &logsink.Buffer{}
	issue := func(args ...string) error {
		return run(context.Background(), append([]string{"certs", "issue", "--ca-dir", pki.Dir, "--out", t.TempDir()}, args...), out, out)
	}
	if err := issue("--role", "robot", "--name", "x"); err == nil || !strings.Contains(err.Error(), "use app, auditor or admin") {
		t.Errorf("unknown role: %v", err)
	}
	if err := issue("--role", "app", "--name", "x", "--validity", "2400h"); err == nil || !strings.Contains(err.Error(), "requested duration") {
		t.Errorf("too long: %v", err)
	}
	err := run(context.Background(), []string{"certs", "issue", "--ca-dir", pki.Dir, "--name", "onboarding-web", "--out", pki.Path("apps")}, out, out)
	if err == nil || !strings.Contains(err.Error(), "exists: use --force") {
		t.Errorf("existing files: %v", err)
	}
	// While the CA runs, its database is locked: the command says what to do.
	auth, err := ca.Open(ca.Options{Dir: pki.Dir, Address: "127.0.0.1:0", DNSNames: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	defer auth.Close()
	if err := issue("--name", "y"); err == nil || !strings.Contains(err.Error(), "is the CA running?") {
		t.Errorf("CA running: %v", err)
	}
}

func TestCertsCSR(t *testing.T) {
	dir := t.TempDir()
	key, csrFile := filepath.Join(dir, "bq.key"), filepath.Join(dir, "bq.csr")
	out := &logsink.Buffer{}
	args := []string{"certs", "csr", "--vendor", "banqware", "--org", "Onboarding Example s.r.o.", "--ico", "27074358", "--key-out", key, "--csr-out", csrFile}
	if err := run(context.Background(), args, out, out); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(key)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", info, err)
	}
	data, _ := os.ReadFile(csrFile)
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("no PEM in %s", csrFile)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil || csr.CheckSignature() != nil {
		t.Fatalf("CSR: %v", err)
	}
	keyData, _ := os.ReadFile(key)
	signer, err := certs.ParsePrivateKey(keyData)
	if err != nil {
		t.Fatal(err)
	}
	if pub, ok := csr.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(signer.Public()) {
		t.Error("the CSR is not for the written key")
	}
	var orgID string
	for _, atv := range csr.Subject.Names {
		if atv.Type.String() == "2.5.4.97" {
			orgID, _ = atv.Value.(string)
		}
	}
	if orgID != "NTRCZ-27074358" || !slices.Equal(csr.Subject.Country, []string{"CZ"}) || csr.Subject.Organization[0] != "Onboarding Example s.r.o." {
		t.Errorf("subject %s (organizationIdentifier %q)", csr.Subject, orgID)
	}
	if strings.Contains(out.String(), string(keyData[40:80])) {
		t.Error("the command printed key material")
	}
	// The same key file again is refused; so is a bad IČO.
	if err := run(context.Background(), args, out, out); err == nil || !strings.Contains(err.Error(), "never overwritten") {
		t.Errorf("existing key: %v", err)
	}
	args[7], args[9] = "27074359", filepath.Join(dir, "other.key")
	if err := run(context.Background(), args, out, out); err == nil || !strings.Contains(err.Error(), "check digit") {
		t.Errorf("bad IČO: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "other.key")); err == nil {
		t.Error("a key was written for a refused request")
	}
}

// certs csr makes requests for companies outside the Czech Republic too: any
// country, any organizationIdentifier form of ETSI EN 319 412-1, or none.
func TestCertsCSRAnyOrganisation(t *testing.T) {
	tests := []struct {
		name  string
		flags []string
		want  string // the subject line printed
	}{
		{"German VAT", []string{"--org", "Beispiel GmbH", "--org-id", "VATDE-123456789"},
			"subject: CN=Beispiel GmbH, O=Beispiel GmbH, C=DE, organizationIdentifier=VATDE-123456789"},
		{"LEI of a British company", []string{"--org", "Example Ltd", "--country", "GB", "--org-id", "LEIXG-529900T8BM49AURSDO55"},
			"subject: CN=Example Ltd, O=Example Ltd, C=GB, organizationIdentifier=LEIXG-529900T8BM49AURSDO55"},
		{"PSD2 at the ČNB", []string{"--org", "Platby a.s.", "--org-id", "PSDCZ-CNB-27074358"},
			"subject: CN=Platby a.s., O=Platby a.s., C=CZ, organizationIdentifier=PSDCZ-CNB-27074358"},
		{"no identifier, for a vendor's own CA", []string{"--org", "Onboarding Example s.r.o.", "--cn", "onboarding-example"},
			"subject: CN=onboarding-example, O=Onboarding Example s.r.o., C=CZ"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			out := &logsink.Buffer{}
			args := append([]string{"certs", "csr", "--vendor", "banqware", "--key-out", filepath.Join(dir, "k"), "--csr-out", filepath.Join(dir, "c")}, tt.flags...)
			if err := run(context.Background(), args, out, out); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), tt.want+"\n") {
				t.Errorf("output lacks %q:\n%s", tt.want, out.String())
			}
			data, _ := os.ReadFile(filepath.Join(dir, "c"))
			block, _ := pem.Decode(data)
			if block == nil {
				t.Fatal("no CSR written")
			}
			csr, err := x509.ParseCertificateRequest(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if got := describeSubject(pkix.Name{CommonName: csr.Subject.CommonName, Organization: csr.Subject.Organization,
				Country: csr.Subject.Country, ExtraNames: orgIDNames(csr.Subject)}); "subject: "+got != tt.want {
				t.Errorf("CSR subject %q, want %q", got, tt.want)
			}
		})
	}
	dir := t.TempDir()
	args := []string{"certs", "csr", "--vendor", "x", "--org", "X", "--org-id", "LEIXG-529900T8BM49AURSDO56", "--key-out", filepath.Join(dir, "k")}
	if err := run(context.Background(), args, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--org-id") || !strings.Contains(err.Error(), "check digits") {
		t.Errorf("bad LEI: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "k")); err == nil {
		t.Error("a key was written for a refused request")
	}
}

// orgIDNames are the organizationIdentifier attributes of a parsed subject.
func orgIDNames(n pkix.Name) []pkix.AttributeTypeAndValue {
	var out []pkix.AttributeTypeAndValue
	for _, atv := range n.Names {
		if atv.Type.Equal(certs.OIDOrganizationIdentifier) {
			out = append(out, atv)
		}
	}
	return out
}
