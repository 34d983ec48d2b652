package proxy

import "errors"

var (
	// ErrNoRoute means the request matches no vendor or no operation.
	ErrNoRoute = errors.New("no vendor operation matches the request")
	// ErrBadPath means the request path could reach a resource other than the one
	// it names (dot segments, encoded slashes).
	ErrBadPath = errors.New("request path is not allowed")
	// ErrUnexpectedEncoding means the vendor compressed a response consentgate did
	// not ask to be compressed, so it could not be inspected.
	ErrUnexpectedEncoding = errors.New("vendor response has an encoding consentgate cannot inspect")
)
