package certs

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"

	"go.step.sm/crypto/pemutil"
)

// writePair writes a certificate (0644) and its PKCS#8 key (0600, never
// overwriting one that exists).
func writePair(certFile string, cert *x509.Certificate, key crypto.Signer) error {
	block, err := pemutil.Serialize(key, pemutil.WithPKCS8(true))
	if err != nil {
		return fmt.Errorf("encoding key of %s: %w", filepath.Base(certFile), err)
	}
	if err := WriteNewFile(KeyFile(certFile), pem.EncodeToMemory(block), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, EncodeCertificates(cert), 0o644)
}

// WriteKeyPair writes cert's chain to certFile (0644) and its key to
// KeyFile(certFile) (0600), each replaced atomically, the key first: a reader
// (a gateway watching the files) sees the old pair, a mismatched pair it
// refuses, or the new pair, never a torn file.
func WriteKeyPair(certFile string, cert *tls.Certificate) error {
	signer, ok := cert.PrivateKey.(crypto.Signer)
	if !ok {
		return fmt.Errorf("unsupported private key type %T", cert.PrivateKey)
	}
	keyPEM, err := EncodePrivateKey(signer)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return err
	}
	if err := replaceFile(KeyFile(certFile), keyPEM, 0o600); err != nil {
		return err
	}
	var chain []byte
	for _, der := range cert.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	return replaceFile(certFile, chain, 0o644)
}

// replaceFile writes name through a temporary file in the same folder and a
// rename, so that it is never seen half written.
func replaceFile(name string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// WriteNewFile creates name with perm, refusing to replace an existing file: a key
// overwritten by mistake cannot be recovered.
func WriteNewFile(name string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// WriteNewKey writes key as PKCS#8 PEM to a file it creates with mode 0600;
// an existing file is never replaced.
func WriteNewKey(file string, key crypto.Signer) error {
	keyPEM, err := EncodePrivateKey(key)
	if err != nil {
		return err
	}
	return WriteNewFile(file, keyPEM, 0o600)
}
