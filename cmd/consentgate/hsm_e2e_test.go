//go:build cgo

package main

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/internal/softhsm"
	"github.com/consentgate/consentgate/internal/tier"
	"github.com/consentgate/consentgate/secrets"
)

// KB's client certificate with its key in an HSM (a SoftHSM2 token; the key
// was made there and never left it): the KB sandbox verifies the mTLS
// handshake and serves the call, and the PIN appears in no log.
func TestDevKBKeyInAnHSM(t *testing.T) {
	tier.Needs(t, "SoftHSM2")
	tok, err := softhsm.NewToken("consentgate-dev-kb")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := tok.GenerateKey("kb-client")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	seedDevPKI(t, dir)
	pki := &certs.DevPKI{Dir: filepath.Join(dir, "pki")}
	icaPEM, _ := os.ReadFile(pki.Path(certs.DevICARootCert))
	icaKey, _ := os.ReadFile(certs.KeyFile(pki.Path(certs.DevICARootCert)))
	ica, err := certs.ParseCA(icaPEM, icaKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ica.Sign(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "Onboarding Example s.r.o., IČO " + certs.DevICO, SerialNumber: "ICA - 10998877"},
		NotAfter:    time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := secrets.WriteFile(filepath.Join(dir, "secrets.yaml"), map[string]map[string]string{
		"hsm/kb": {"client_cert": string(certs.EncodeCertificates(leaf)), "pin": tok.PIN}}); err != nil {
		t.Fatal(err)
	}
	e, stop := startTestDevOpts(t, devOptions{dir: dir, profiles: func(v map[string]*configs.Vendor) {
		cc := v["kb"].ClientCertificate
		cc.Cert, cc.Key = &configs.Source{Secret: "hsm/kb#client_cert"}, nil
		cc.PKCS11 = &configs.PKCS11Key{Module: tok.Module, TokenLabel: tok.Label, KeyLabel: "kb-client", PIN: &configs.Source{Secret: "hsm/kb#pin"}}
	}})
	t.Cleanup(stop)
	resp, body := call(t, e.app, "GET", e.gatewayURL()+"/v/kb/v1/clients/me/identity", "", under("dev-kyc", "kyc-onboarding"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if r := lastRequest(t, e.sandboxes.KB); r.ClientCert == nil || !r.ClientCert.Equal(leaf) {
		t.Error("kb did not get the certificate whose key is in the token")
	}
	if strings.Contains(e.logs.String(), tok.PIN) {
		t.Error("the token's PIN is in the log")
	}
}
