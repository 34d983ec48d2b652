//go:build cgo

package main

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/internal/logsink"
	"github.com/consentgate/consentgate/internal/softhsm"
	"github.com/consentgate/consentgate/internal/tier"
	"github.com/consentgate/consentgate/secrets"
)

// KB's client certificate with its key in an HSM (a SoftHSM2 token; the key
// was made there and never left it): the KB sandbox verifies the mTLS
// handshake and serves the call, and the PIN appears in no log.
func TestDevKBKeyInAnHSM(t *testing.T) {
	tier.Needs(t, "SoftHSM2")
	tok, err := softhsm.ProcessToken()
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

// The audit log's checkpoints are signed inside an HSM (a SoftHSM2 token, whose
// ECDSA P-256 key was made there): `audit verify` proves the file with the
// token's public key and with no other, and a wrong PIN is refused with an
// error that names the token but not the PIN.
func TestAuditCheckpointsSignedInAnHSM(t *testing.T) {
	tier.Needs(t, "SoftHSM2")
	tok, err := softhsm.ProcessToken()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := tok.GenerateKey("audit-checkpoints")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := &configs.Config{Node: "n1", Audit: configs.Audit{Path: filepath.Join(dir, "audit.db"), CheckpointEvery: 2},
		Keys: configs.Keys{AuditSigningPKCS11: &configs.PKCS11Key{Module: tok.Module, TokenLabel: tok.Label,
			KeyLabel: "audit-checkpoints", PIN: &configs.Source{Secret: "hsm/audit#pin"}}}}
	logs := &logsink.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	l, err := openAudit(t.Context(), cfg, staticProvider{"hsm/audit#pin": tok.PIN}, log)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := l.Append(t.Context(), audit.Record{Kind: audit.KindSystem, Detail: map[string]string{"event": "test"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Checkpoints != 3 || st.Unsigned != 0 {
		t.Fatalf("stats %+v: want 3 checkpoints signed in the token", st)
	}
	tokenPEM := filepath.Join(dir, "token.pub")
	writeTestFile(t, tokenPEM, string(audit.PublicKeyPEM(pub)))
	if out, err := runCmd(t, "audit", "verify", "--db", cfg.Audit.Path, "--pubkey", tokenPEM, "--require-vouched"); err != nil {
		t.Fatalf("audit verify with the token's key: %v\n%s", err, out)
	}
	other, err := tok.GenerateKey("another-key")
	if err != nil {
		t.Fatal(err)
	}
	otherPEM := filepath.Join(dir, "other.pub")
	writeTestFile(t, otherPEM, string(audit.PublicKeyPEM(other)))
	if out, err := runCmd(t, "audit", "verify", "--db", cfg.Audit.Path, "--pubkey", otherPEM); err == nil {
		t.Fatalf("audit verify passed under another key:\n%s", out)
	}

	const wrongPIN = "31415926"
	_, err = auditSigningKey(t.Context(), cfg, staticProvider{"hsm/audit#pin": wrongPIN})
	if err == nil || !strings.Contains(err.Error(), "keys.audit_signing_pkcs11") || !strings.Contains(err.Error(), tok.Label) {
		t.Fatalf("wrong PIN: %v, want an error naming the setting and the token", err)
	}
	for name, text := range map[string]string{"error": err.Error(), "log": logs.String()} {
		if strings.Contains(text, wrongPIN) || strings.Contains(text, tok.PIN) {
			t.Errorf("a PIN is in the %s", name)
		}
	}
}
