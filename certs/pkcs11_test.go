//go:build cgo

package certs

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/internal/softhsm"
	"github.com/consentgate/consentgate/internal/tier"
)

// A vendor client certificate whose key was made in a SoftHSM2 token, and
// never left it, loads as a ClientIdentity and authenticates a TLS 1.3
// handshake; a wrong PIN or key label is an error that names the token and
// never the PIN.
func TestClientIdentityWithAKeyInAToken(t *testing.T) {
	tier.Needs(t, "SoftHSM2")
	tok, err := softhsm.ProcessToken()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := tok.GenerateKey("kb-client")
	if err != nil {
		t.Fatal(err)
	}
	ca := newTestCA(t, "I.CA SSL EV CA/RSA 10/2017", "První certifikační autorita, a.s.")
	leaf, err := ca.Sign(&x509.Certificate{Subject: pkix.Name{CommonName: "Firma a.s., IČO 45317054", SerialNumber: "ICA - 10123456"},
		ExtKeyUsage: server}, pub)
	if err != nil {
		t.Fatal(err)
	}
	key := PKCS11Key{Module: tok.Module, TokenLabel: tok.Label, KeyLabel: "kb-client", PIN: tok.PIN}
	// PKCS#11 logs a process in to a token once: the wrong PIN is tried first.
	wrongPIN := key
	wrongPIN.PIN = "0000-not-the-pin"
	load := func(k PKCS11Key) func(context.Context) (*tls.Certificate, error) {
		return func(context.Context) (*tls.Certificate, error) {
			signer, err := k.Signer()
			if err != nil {
				return nil, err
			}
			return KeyPairWith(EncodeCertificates(leaf), signer)
		}
	}
	if _, err := NewClientIdentity(context.Background(), "kb", kbRequirement, load(wrongPIN)); err == nil ||
		!strings.Contains(err.Error(), "pkcs11:token="+tok.Label) || strings.Contains(err.Error(), wrongPIN.PIN) {
		t.Errorf("wrong PIN: err = %v", err)
	}
	id, err := NewClientIdentity(context.Background(), "kb", kbRequirement, load(key))
	if err != nil {
		t.Fatal(err)
	}

	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	srvCfg := &tls.Config{Certificates: []tls.Certificate{serverPair(t, ca)}, MinVersion: tls.VersionTLS13}
	VerifyClientsFor(srvCfg, roots, true, x509.ExtKeyUsageServerAuth)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srvCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	seen := make(chan *x509.Certificate, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		// The server asks for a certificate and checks the client's signature.
		tc.Handshake()
		if s := tc.ConnectionState(); len(s.PeerCertificates) > 0 {
			seen <- s.PeerCertificates[0]
		}
		close(seen)
		io.Copy(io.Discard, c)
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", GetClientCertificate: id.GetClientCertificate})
	if err != nil {
		t.Fatalf("handshake with the token's key: %v", err)
	}
	conn.Close()
	if got := <-seen; got == nil || !got.Equal(leaf) {
		t.Error("the server did not get the token's certificate")
	}

	// The HSM restarts: the sessions this process held are gone. The next
	// signature opens the token again and goes through.
	tokens.Lock()
	lost := tokens.open[tokenLogin{tok.Module, tok.Label}].ctx
	delete(tokens.open, tokenLogin{tok.Module, tok.Label})
	tokens.Unlock()
	lost.Close()
	pair, _ := id.GetClientCertificate(nil)
	digest := sha256.Sum256([]byte("a handshake's transcript"))
	if _, err := pair.PrivateKey.(crypto.Signer).Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
		t.Fatalf("signing after the token's sessions were lost: %v", err)
	}
	tokens.Lock()
	reopened := tokens.open[tokenLogin{tok.Module, tok.Label}].ctx
	tokens.Unlock()
	if reopened == nil || reopened == lost {
		t.Error("the token was not opened again")
	}

	// Once the process is logged in, PKCS#11 would take any PIN: a profile
	// naming the token with another PIN, or none, is still refused.
	for _, pin := range []string{"0000-not-the-pin", ""} {
		other := key
		other.PIN = pin
		if s, err := other.Signer(); err == nil || s != nil {
			t.Errorf("PIN %q after the token was opened: signer %v, err %v", pin, s, err)
		}
	}
	for name, k := range map[string]PKCS11Key{
		"no such key":   {Module: tok.Module, TokenLabel: tok.Label, KeyLabel: "nobody", PIN: tok.PIN},
		"no such token": {Module: tok.Module, TokenLabel: "nowhere", KeyLabel: "kb-client", PIN: tok.PIN},
	} {
		_, err := NewClientIdentity(context.Background(), "kb", kbRequirement, load(k))
		if err == nil || !strings.Contains(err.Error(), "pkcs11:token=") || strings.Contains(err.Error(), k.PIN) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// serverPair is a serving certificate for 127.0.0.1 from ca.
func serverPair(t *testing.T, ca *CA) tls.Certificate {
	t.Helper()
	cert, key, err := ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "vendor"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: server})
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
}
