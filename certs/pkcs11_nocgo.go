//go:build !cgo

package certs

import (
	"crypto"
	"fmt"
)

// Signer needs the PKCS#11 module loaded through cgo, which this build lacks.
func (k PKCS11Key) Signer() (crypto.Signer, error) {
	return nil, fmt.Errorf("%s: this consentgate was built without cgo (CGO_ENABLED=0) and cannot load a PKCS#11 module", k)
}
