package secrets

import "errors"

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
)
