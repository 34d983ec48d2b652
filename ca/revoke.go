package ca

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"go.step.sm/crypto/x509util"

	"github.com/smallstep/cli-utils/token"
	"github.com/smallstep/cli-utils/token/provision"

	"github.com/consentgate/consentgate/certs"
)

// CRLValidity is how long a CRL of the internal CA is good for (its
// NextUpdate). Gateways fetch it far more often; one that cannot for this
// long refuses every app (certs.RevocationList).
const CRLValidity = 24 * time.Hour

// CRLPath is where the CA server serves its CRL (DER).
const CRLPath = "/1.0/crl"

// Revoke revokes the app certificate with serial through the running CA at
// caURL, as `step ca revoke` does: a one-time token of the app provisioner,
// whose key is read (and decrypted with the password) from dir. The CA makes a
// new CRL at once; gateways refuse the certificate once they have fetched it.
func Revoke(ctx context.Context, dir, passwordFile, caURL, serial, reason string) error {
	if passwordFile == "" {
		passwordFile = filepath.Join(dir, DefaultPasswordFile)
	}
	u, err := url.Parse(caURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("--ca %q is not the CA's https URL", caURL)
	}
	s, password, err := loadOrCreateSettings(Options{Dir: dir, PasswordFile: passwordFile})
	if err != nil {
		return err
	}
	jwk, err := decryptKey(s.EncryptedKey, password)
	if err != nil {
		return fmt.Errorf("provisioner key: %w (is %s the CA's password?)", err, passwordFile)
	}
	root, err := certs.LoadPool(filepath.Join(dir, certs.RootCert))
	if err != nil {
		return err
	}
	rootCert, err := readRoot(filepath.Join(dir, certs.RootCert))
	if err != nil {
		return err
	}
	id := make([]byte, 32)
	if _, err := rand.Read(id); err != nil {
		return err
	}
	now := time.Now()
	tok, err := provision.New(serial, token.WithJWTID(hex.EncodeToString(id)), token.WithKid(jwk.KeyID),
		token.WithIssuer(AppProvisioner), token.WithAudience("https://"+u.Host+"/1.0/revoke"),
		token.WithValidity(now, now.Add(5*time.Minute)), token.WithSHA(x509util.Fingerprint(rootCert)))
	if err != nil {
		return err
	}
	ott, err := tok.SignedString(jwk.Algorithm, jwk.Key)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]any{"serial": serial, "ott": ott, "reason": reason, "passive": true})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, caURL+"/1.0/revoke", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil,
		TLSClientConfig: &tls.Config{RootCAs: root, MinVersion: tls.VersionTLS12}}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("revoking %s at %s: %w", serial, caURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("revoking %s at %s: %s: %s", serial, caURL, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

func readRoot(file string) (*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	chain, err := certs.ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return chain[0], nil
}
