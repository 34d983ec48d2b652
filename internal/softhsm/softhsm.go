//go:build cgo

// Package softhsm gives tests a real PKCS#11 token: SoftHSM2 (Debian's
// softhsm2, which make test installs), with keys generated inside it.
package softhsm

import (
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"github.com/ThalesGroup/crypto11"
)

// Token is an initialised token in the process's SoftHSM2 store.
type Token struct {
	Module, Label, PIN string
}

// The module reads SOFTHSM2_CONF and the tokens in its store when it is first
// loaded, and sees no token made after that, so every test of a process shares
// one token; each makes its own keys in it, under labels of its own.
var store struct {
	once  sync.Once
	token *Token
	err   error
}

// Module is the SoftHSM2 PKCS#11 library, or an error naming the package to
// install.
func Module() (string, error) {
	for _, m := range []string{"/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so", "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"} {
		if _, err := os.Stat(m); err == nil {
			return m, nil
		}
	}
	return "", fmt.Errorf("SoftHSM2 is not installed (apt-get install softhsm2; make test does)")
}

// ProcessToken is the process's token, initialised with a random PIN in a new
// store on first use.
func ProcessToken() (*Token, error) {
	store.once.Do(func() { store.token, store.err = newToken("consentgate-test") })
	return store.token, store.err
}

func newToken(label string) (*Token, error) {
	module, err := Module()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "consentgate-softhsm-")
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+dir+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		return nil, err
	}
	if err := os.Setenv("SOFTHSM2_CONF", conf); err != nil {
		return nil, err
	}
	pin, so := random(), random()
	out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", so).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("softhsm2-util --init-token: %v: %s", err, out)
	}
	return &Token{Module: module, Label: label, PIN: pin}, nil
}

// GenerateKey makes an ECDSA P-256 key pair labelled keyLabel inside the
// token and returns its public key; the private key stays in the token.
func (t *Token) GenerateKey(keyLabel string) (crypto.PublicKey, error) {
	ctx, err := crypto11.Configure(&crypto11.Config{Path: t.Module, TokenLabel: t.Label, Pin: t.PIN})
	if err != nil {
		return nil, err
	}
	defer ctx.Close()
	s, err := ctx.GenerateECDSAKeyPairWithLabel([]byte(random()), []byte(keyLabel), elliptic.P256())
	if err != nil {
		return nil, err
	}
	return s.Public(), nil
}

func random() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
