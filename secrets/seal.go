package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// sealVersion starts every sealed value, so the format can change later.
const sealVersion = 1

// SealKey is an AES-256 key for values consentgate keeps at rest (end users'
// OAuth2 tokens). It is read from the provider like any other secret.
type SealKey struct{ aead cipher.AEAD }

// ParseSealKey reads a 32-byte key written as 64 hex digits or as base64. The
// error never quotes the value.
func ParseSealKey(value string) (*SealKey, error) {
	value = strings.TrimSpace(value)
	key, err := hex.DecodeString(value)
	if err != nil {
		if key, err = base64.StdEncoding.DecodeString(value); err != nil {
			key, err = base64.RawURLEncoding.DecodeString(value)
		}
	}
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("%w: a seal key is 32 bytes in hex (64 digits) or base64", ErrBadSealKey)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSealKey, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSealKey, err)
	}
	return &SealKey{aead: aead}, nil
}

// Seal encrypts plaintext with AES-256-GCM under a fresh random nonce. aad
// binds the result to where it is stored (a consent and vendor): moved to
// another place, it no longer opens.
func (k *SealKey) Seal(plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, 1+k.aead.NonceSize(), 1+k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("sealing: %w", err)
	}
	return k.aead.Seal(out, out[1:], plaintext, aad), nil
}

// Open decrypts what Seal returned for the same aad. A changed byte, another
// aad or another key is ErrSealBroken.
func (k *SealKey) Open(sealed, aad []byte) ([]byte, error) {
	n := k.aead.NonceSize()
	if len(sealed) < 1+n+k.aead.Overhead() || sealed[0] != sealVersion {
		return nil, ErrSealBroken
	}
	plain, err := k.aead.Open(nil, sealed[1:1+n], sealed[1+n:], aad)
	if err != nil {
		return nil, ErrSealBroken
	}
	return plain, nil
}
