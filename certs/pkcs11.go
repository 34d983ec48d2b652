//go:build cgo

package certs

import (
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"sync"

	"github.com/ThalesGroup/crypto11"
)

// tokens are the PKCS#11 sessions open in this process, one per module and
// token: each reload of a vendor certificate finds its key again in the token
// it already has open. PKCS#11 logs a process in to a token once, so the
// token checks the PIN when it is first opened, and every later use must give
// that PIN; a changed PIN is used when the process next starts.
var tokens = struct {
	sync.Mutex
	open map[tokenLogin]openToken
}{open: map[tokenLogin]openToken{}}

// openToken is a token this process logged in to, and with which PIN: the
// token checked that one, and every later use must give the same, since
// PKCS#11 would take any PIN from a process already logged in.
type openToken struct {
	ctx *crypto11.Context
	pin [sha256.Size]byte
}

type tokenLogin struct{ module, token string }

// Signer finds k's private key in its token. The key is used there (crypto11
// signs through the module): it never enters this process. A signature that
// fails (the HSM restarted or failed over, and the sessions this process held
// are gone) is tried once more with the token opened anew.
func (k PKCS11Key) Signer() (crypto.Signer, error) {
	if err := k.check(); err != nil {
		return nil, err
	}
	ctx, s, err := k.find()
	if err != nil {
		return nil, err
	}
	return &tokenSigner{k: k, pub: s.Public(), ctx: ctx, cur: s}, nil
}

func (k PKCS11Key) find() (*crypto11.Context, crypto.Signer, error) {
	ctx, err := k.context()
	if err != nil {
		return nil, nil, err
	}
	var label []byte
	if k.KeyLabel != "" {
		label = []byte(k.KeyLabel)
	}
	s, err := ctx.FindKeyPair(k.KeyID, label)
	switch {
	case err != nil:
		return nil, nil, fmt.Errorf("%s: finding the key: %w", k, err)
	case s == nil:
		return nil, nil, fmt.Errorf("%s: no such key pair in the token", k)
	}
	return ctx, s, nil
}

// tokenSigner is a key in a token that survives the token's sessions.
type tokenSigner struct {
	k   PKCS11Key
	pub crypto.PublicKey
	mu  sync.Mutex
	ctx *crypto11.Context // the token context cur was found in
	cur crypto.Signer
}

func (s *tokenSigner) Public() crypto.PublicKey { return s.pub }

func (s *tokenSigner) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	s.mu.Lock()
	ctx, cur := s.ctx, s.cur
	s.mu.Unlock()
	sig, err := cur.Sign(rand, digest, opts)
	if err == nil {
		return sig, nil
	}
	s.k.forget(ctx)
	ctx, fresh, ferr := s.k.find()
	if ferr != nil {
		return nil, fmt.Errorf("%s: signing: %w; opening the token again: %v", s.k, err, ferr)
	}
	if pub, ok := fresh.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(s.pub) {
		return nil, fmt.Errorf("%s: the token now holds another key under this name", s.k)
	}
	s.mu.Lock()
	s.ctx, s.cur = ctx, fresh
	s.mu.Unlock()
	return fresh.Sign(rand, digest, opts)
}

// forget closes the token's context if it is still ctx (another signer may
// have opened it anew already), so that the next use opens it again.
func (k PKCS11Key) forget(ctx *crypto11.Context) {
	tokens.Lock()
	defer tokens.Unlock()
	login := tokenLogin{k.Module, k.TokenLabel}
	if t, ok := tokens.open[login]; ok && t.ctx == ctx {
		delete(tokens.open, login)
		ctx.Close()
	}
}

func (k PKCS11Key) context() (*crypto11.Context, error) {
	tokens.Lock()
	defer tokens.Unlock()
	login, pin := tokenLogin{k.Module, k.TokenLabel}, sha256.Sum256([]byte(k.PIN))
	if t, ok := tokens.open[login]; ok {
		if subtle.ConstantTimeCompare(t.pin[:], pin[:]) != 1 {
			return nil, fmt.Errorf("%s: the PIN is not the one the token was opened with (a changed PIN is used from the next start)", k)
		}
		return t.ctx, nil
	}
	ctx, err := crypto11.Configure(&crypto11.Config{Path: k.Module, TokenLabel: k.TokenLabel, Pin: k.PIN})
	if err != nil {
		return nil, fmt.Errorf("%s: opening the token: %w", k, err)
	}
	tokens.open[login] = openToken{ctx: ctx, pin: pin}
	return ctx, nil
}
