package secrets

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrNotFound means no secret exists at the reference.
	ErrNotFound = errors.New("secret not found")
	// ErrInsecureFile means a secrets file is readable or writable by others.
	ErrInsecureFile = errors.New("secrets file is accessible by group or others")
	// ErrBadRef means a reference is not of the form path#key.
	ErrBadRef = errors.New("secret reference must be path#key")
	// ErrBadSealKey means a seal key is not 32 bytes in hex or base64.
	ErrBadSealKey = errors.New("seal key is not an AES-256 key")
	// ErrSealBroken means a sealed value does not open: tampered with, moved to
	// another place, or sealed under another key.
	ErrSealBroken = errors.New("sealed value does not open")
	// ErrNotRead means a cache holds no value for the reference yet (Peek).
	ErrNotRead = errors.New("secret not read yet")
	// ErrUnavailable means the provider cannot vouch for a value now: Vault is
	// unreachable, refuses the read, or the cached value is older than allowed.
	// Callers fail closed on it.
	ErrUnavailable = errors.New("secret unavailable")
)

// StaleError is returned when the cached value could not be confirmed by Vault
// for longer than max_stale. It names the reference and ages, never the value.
type StaleError struct {
	Ref      Ref
	Age      time.Duration // since Vault last confirmed the value
	MaxStale time.Duration
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("secret %s: last confirmed by vault %s ago, more than max_stale %s", e.Ref, e.Age.Round(time.Millisecond), e.MaxStale)
}

// Is makes errors.Is(err, ErrUnavailable) true for a stale value.
func (e *StaleError) Is(target error) bool { return target == ErrUnavailable }
