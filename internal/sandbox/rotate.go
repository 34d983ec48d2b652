package sandbox

import (
	"fmt"
	"sync/atomic"
)

// rotatingKey is an API key the vendor can replace while serving, as a vendor
// portal does: from the moment it is rotated only the new key is accepted.
type rotatingKey struct{ p atomic.Pointer[string] }

func newRotatingKey(k string) *rotatingKey {
	r := &rotatingKey{}
	r.p.Store(&k)
	return r
}

func (r *rotatingKey) get() string { return *r.p.Load() }

// apiKeyRotator is a sandbox handler whose API key can be rotated.
type apiKeyRotator interface{ rotateAPIKey(key string) }

func (h *airbank) rotateAPIKey(key string)   { h.apiKey.p.Store(&key) }
func (h *kb) rotateAPIKey(key string)        { h.apiKey.p.Store(&key) }
func (h *biometric) rotateAPIKey(key string) { h.apiKey.p.Store(&key) }

// RotateAPIKey makes the sandbox accept only key from now on (kb, airbank,
// biometric): the old key is refused like any wrong key.
func (s *Server) RotateAPIKey(key string) error {
	r, ok := s.handler.(apiKeyRotator)
	if !ok {
		return fmt.Errorf("the %s sandbox has no API key to rotate", s.Vendor)
	}
	if key == "" {
		return fmt.Errorf("rotating the %s API key: empty key", s.Vendor)
	}
	r.rotateAPIKey(key)
	return nil
}
