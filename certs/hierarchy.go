package certs

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"go.step.sm/crypto/keyutil"
	"go.step.sm/crypto/pemutil"
	"go.step.sm/crypto/x509util"
)

// Files of an internal CA folder (see OpenAuthority). Each .crt has its .key
// beside it (KeyFile), written with mode 0600.
const (
	RootCert         = "ca.crt"
	IntermediateCert = "intermediate.crt"
)

// Hierarchy is the internal CA's root and the intermediate that signs every
// leaf (gateway serving certificates over ACME, app certificates).
type Hierarchy struct {
	Root, Intermediate *x509.Certificate
}

// LoadOrCreateHierarchy reuses the root and intermediate in dir, or creates them
// with smallstep's default root and intermediate templates when dir holds
// none of their files. Running the CA needs the root certificate and the
// intermediate with its key; the root key may (and in production should) be
// moved offline after creation. Half a hierarchy is refused: a new root beside
// an old intermediate would issue certificates nothing verifies.
func LoadOrCreateHierarchy(dir, name string) (*Hierarchy, error) {
	needed := []string{RootCert, IntermediateCert, KeyFile(IntermediateCert)}
	var missing []string
	for _, f := range needed {
		if _, err := os.Stat(filepath.Join(dir, f)); errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, f)
		}
	}
	_, rootKeyErr := os.Stat(filepath.Join(dir, KeyFile(RootCert)))
	switch {
	case len(missing) == 0:
		return loadHierarchy(dir)
	case len(missing) == len(needed) && errors.Is(rootKeyErr, fs.ErrNotExist):
		return createHierarchy(dir, name)
	default:
		return nil, fmt.Errorf("internal CA in %s is incomplete (missing %v): restore it from backup; a new root would invalidate every certificate issued", dir, missing)
	}
}

func loadHierarchy(dir string) (*Hierarchy, error) {
	var h Hierarchy
	for name, dst := range map[string]**x509.Certificate{RootCert: &h.Root, IntermediateCert: &h.Intermediate} {
		c, err := pemutil.ReadCertificate(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("internal CA: %w", err)
		}
		if time.Now().After(c.NotAfter) {
			return nil, fmt.Errorf("internal CA: %s expired on %s", name, c.NotAfter.UTC().Format(time.DateOnly))
		}
		*dst = c
	}
	if err := h.Intermediate.CheckSignatureFrom(h.Root); err != nil {
		return nil, fmt.Errorf("internal CA: %s is not signed by %s: %w", IntermediateCert, RootCert, err)
	}
	return &h, nil
}

func createHierarchy(dir, name string) (*Hierarchy, error) {
	const validity = 10 * 365 * 24 * time.Hour
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	rootKey, err := keyutil.GenerateDefaultSigner()
	if err != nil {
		return nil, err
	}
	root, err := caCertificate(x509util.DefaultRootTemplate, name+" Root CA", rootKey, nil, nil, validity)
	if err != nil {
		return nil, fmt.Errorf("creating root: %w", err)
	}
	intKey, err := keyutil.GenerateDefaultSigner()
	if err != nil {
		return nil, err
	}
	intermediate, err := caCertificate(x509util.DefaultIntermediateTemplate, name+" Intermediate CA", intKey, root, rootKey, validity)
	if err != nil {
		return nil, fmt.Errorf("creating intermediate: %w", err)
	}
	if err := writePair(filepath.Join(dir, RootCert), root, rootKey); err != nil {
		return nil, err
	}
	if err := writePair(filepath.Join(dir, IntermediateCert), intermediate, intKey); err != nil {
		return nil, err
	}
	return &Hierarchy{Root: root, Intermediate: intermediate}, nil
}

// caCertificate signs a CA certificate from one of smallstep's templates; a nil
// parent makes it self-signed.
func caCertificate(tmpl, cn string, key crypto.Signer, parent *x509.Certificate, parentKey crypto.Signer, validity time.Duration) (*x509.Certificate, error) {
	cr, err := x509util.CreateCertificateRequest(cn, nil, key)
	if err != nil {
		return nil, err
	}
	data := x509util.CreateTemplateData(cn, nil)
	data.SetSubject(x509util.Subject{CommonName: cn, Organization: []string{"consentgate internal PKI"}})
	c, err := x509util.NewCertificate(cr, x509util.WithTemplate(tmpl, data))
	if err != nil {
		return nil, err
	}
	t := c.GetCertificate()
	t.NotBefore = time.Now().Add(-time.Minute)
	t.NotAfter = t.NotBefore.Add(validity)
	if parent == nil {
		parent, parentKey = t, key
	}
	return x509util.CreateCertificate(t, parent, key.Public(), parentKey)
}
