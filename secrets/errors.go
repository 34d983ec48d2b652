package secrets

import "errors"

var (
	// ErrNotFound means no secret exists at the reference.
	ErrNotFound = errors.New("secret not found")
	// ErrInsecureFile means a secrets file is readable or writable by others.
	ErrInsecureFile = errors.New("secrets file is accessible by group or others")
	// ErrBadRef means a reference is not of the form path#key.
	ErrBadRef = errors.New("secret reference must be path#key")
)
