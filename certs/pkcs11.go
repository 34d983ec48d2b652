//go:build cgo

package certs

import (
	"crypto"
	"fmt"
	"sync"

	"github.com/ThalesGroup/crypto11"
)

// tokens are the PKCS#11 sessions open in this process, one per module and
// token: each reload of a vendor certificate finds its key again in the token
// it already has open. PKCS#11 logs a process in to a token once, so the PIN
// is checked when the token is first opened; a changed PIN is used when the
// process next starts.
var tokens = struct {
	sync.Mutex
	open map[tokenLogin]*crypto11.Context
}{open: map[tokenLogin]*crypto11.Context{}}

type tokenLogin struct{ module, token string }

// Signer finds k's private key in its token. The key is used there (crypto11
// signs through the module): it never enters this process.
func (k PKCS11Key) Signer() (crypto.Signer, error) {
	if err := k.check(); err != nil {
		return nil, err
	}
	ctx, err := k.context()
	if err != nil {
		return nil, err
	}
	var label []byte
	if k.KeyLabel != "" {
		label = []byte(k.KeyLabel)
	}
	s, err := ctx.FindKeyPair(k.KeyID, label)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s: finding the key: %w", k, err)
	case s == nil:
		return nil, fmt.Errorf("%s: no such key pair in the token", k)
	}
	return s, nil
}

func (k PKCS11Key) context() (*crypto11.Context, error) {
	tokens.Lock()
	defer tokens.Unlock()
	login := tokenLogin{k.Module, k.TokenLabel}
	if ctx := tokens.open[login]; ctx != nil {
		return ctx, nil
	}
	ctx, err := crypto11.Configure(&crypto11.Config{Path: k.Module, TokenLabel: k.TokenLabel, Pin: k.PIN})
	if err != nil {
		return nil, fmt.Errorf("%s: opening the token: %w", k, err)
	}
	tokens.open[login] = ctx
	return ctx, nil
}
