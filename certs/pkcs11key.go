package certs

import (
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
)

// PKCS11Key names a private key in a PKCS#11 token (an HSM, or SoftHSM2 in
// tests): the module that speaks to it, the token, the key by label or id,
// and the user PIN.
type PKCS11Key struct {
	Module, TokenLabel, KeyLabel string
	KeyID                        []byte
	PIN                          string
}

// String names the key without its PIN, for errors and `certs status`.
func (k PKCS11Key) String() string {
	s := "pkcs11:token=" + k.TokenLabel
	if k.KeyLabel != "" {
		s += ";object=" + k.KeyLabel
	}
	if k.KeyID != nil {
		s += ";id=" + hex.EncodeToString(k.KeyID)
	}
	return s + " (" + filepath.Base(k.Module) + ")"
}

func (k PKCS11Key) check() error {
	switch {
	case !filepath.IsAbs(k.Module):
		return fmt.Errorf("%s: the module must be an absolute path", k)
	case k.TokenLabel == "":
		return errors.New("a PKCS#11 key needs its token's label")
	case k.KeyLabel == "" && k.KeyID == nil:
		return fmt.Errorf("%s: name the key by label or id", k)
	}
	return nil
}
