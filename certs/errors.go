package certs

import "errors"

var (
	// ErrNoCertificate means a PEM input held no CERTIFICATE block.
	ErrNoCertificate = errors.New("no PEM certificate found")
	// ErrNoPrivateKey means a PEM input held no private key block.
	ErrNoPrivateKey = errors.New("no PEM private key found")
	// ErrNoICO means a certificate subject carries no Czech company id (IČO).
	ErrNoICO = errors.New("certificate subject carries no IČO")
)
