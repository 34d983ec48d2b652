package secrets

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
)

// transitTimeout bounds one encrypt or decrypt call to Vault.
const transitTimeout = 5 * time.Second

// Transit wraps small keys (the token vault's data keys) with a key in Vault's
// transit engine, which never leaves Vault: AES-256-GCM, with the associated
// data bound (a key of type aes256-gcm96). It satisfies tokens.Wrapper.
type Transit struct {
	v          *Vault
	mount, key string
}

// Transit is the transit key named key on mount, used with this provider's
// login (its policy needs update on <mount>/encrypt/<key> and
// <mount>/decrypt/<key>; docs/vault.md).
func (v *Vault) Transit(mount, key string) *Transit { return &Transit{v: v, mount: mount, key: key} }

// Seal encrypts plaintext under the transit key, bound to aad.
func (t *Transit) Seal(plaintext, aad []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), transitTimeout)
	defer cancel()
	s, err := t.v.client.Logical().WriteWithContext(ctx, t.mount+"/encrypt/"+t.key, map[string]any{
		"plaintext": base64.StdEncoding.EncodeToString(plaintext), "associated_data": base64.StdEncoding.EncodeToString(aad)})
	if err != nil {
		return nil, fmt.Errorf("vault transit %s/encrypt/%s: %w", t.mount, t.key, err)
	}
	if s == nil {
		return nil, fmt.Errorf("vault transit %s/encrypt/%s: an empty answer", t.mount, t.key)
	}
	c, _ := s.Data["ciphertext"].(string)
	if c == "" {
		return nil, fmt.Errorf("vault transit %s/encrypt/%s: no ciphertext in the answer", t.mount, t.key)
	}
	return []byte(c), nil
}

// Open decrypts what Seal returned for the same aad; anything else is
// ErrSealBroken.
func (t *Transit) Open(sealed, aad []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), transitTimeout)
	defer cancel()
	s, err := t.v.client.Logical().WriteWithContext(ctx, t.mount+"/decrypt/"+t.key, map[string]any{
		"ciphertext": string(sealed), "associated_data": base64.StdEncoding.EncodeToString(aad)})
	if err != nil {
		// Vault answers 400 for a ciphertext or associated data that does not
		// open, and other errors for an unreachable Vault: both fail closed.
		return nil, errors.Join(ErrSealBroken, fmt.Errorf("vault transit %s/decrypt/%s: %w", t.mount, t.key, err))
	}
	if s == nil {
		return nil, ErrSealBroken
	}
	p, _ := s.Data["plaintext"].(string)
	plain, err := base64.StdEncoding.DecodeString(p)
	if err != nil {
		return nil, ErrSealBroken
	}
	return plain, nil
}
