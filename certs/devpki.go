package certs

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// DevApps are the app certificates `consentgate dev` issues from its internal
// CA (see Authority.IssueApp): name → role.
var DevApps = []struct{ Name, Role string }{
	{"onboarding-web", "app"},
	{"auditor", "auditor"},
	{"secops", "admin"},
}

// DevICO is the (check-digit valid, fictitious) IČO of the dev company seal.
const DevICO = "27123456"

// Files of the dev PKI, relative to its folder. The internal CA's root and
// intermediate are those of the Authority `consentgate dev` runs on the same
// folder; app certificates (AppCert) are issued by it.
const (
	DevRootCert         = RootCert
	DevIntermediateCert = IntermediateCert
	DevICARootCert      = "vendors/ica-root.crt"
	// DevKBCert is kb's client certificate: a technological server
	// certificate naming the company and its IČO in the CN, as KB's terms ask.
	DevKBCert          = "vendors/kb-server.crt"
	DevBanqwareCACert  = "vendors/banqware-ca.crt"
	DevBanqwareCert    = "vendors/banqware-client.crt"
	DevSandboxRootCert = "sandbox/ca.crt"
	// DevForwardCACert is the forward proxy's interception CA: an intermediate
	// of the root limited to server certificates (see NewInterceptionCA).
	DevForwardCACert = "forward-ca.crt"
	DevSandboxCert   = "sandbox/server.crt"
)

// DevPKI is the certificate set `consentgate dev` generates once and reuses: the
// internal CA's root and intermediate (served by the embedded step-ca, which
// issues the gateway's certificate over ACME and the app certificates), an
// I.CA-style root with a technological server certificate for kb, a banqware-style issuer with a
// certificate made from our CSR, and the sandboxes' server CA. None of it is
// trusted anywhere but on this machine.
type DevPKI struct {
	Dir string
}

// KeyFile is the private key file beside a certificate file.
func KeyFile(certFile string) string {
	return certFile[:len(certFile)-len(filepath.Ext(certFile))] + ".key"
}

// AppCert is the certificate file of a dev app.
func AppCert(name string) string { return "apps/" + name + ".crt" }

// Path is the absolute path of a dev PKI file.
func (p *DevPKI) Path(name string) string { return filepath.Join(p.Dir, filepath.FromSlash(name)) }

// LoadOrCreateDevPKI reuses the PKI in dir when it is complete, creates it when
// dir holds none, and refuses a partial one rather than mixing generations.
// sandboxHosts are the vendor host names the sandboxes answer for.
func LoadOrCreateDevPKI(dir string, sandboxHosts []string) (*DevPKI, error) {
	p := &DevPKI{Dir: dir}
	files := p.files()
	var missing []string
	for _, f := range files {
		if _, err := os.Stat(p.Path(f)); errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, f)
		}
	}
	switch len(missing) {
	case 0:
		if err := p.addLater(); err != nil {
			return nil, fmt.Errorf("dev PKI in %s: %w", dir, err)
		}
		if err := p.check(); err != nil {
			return nil, fmt.Errorf("dev PKI in %s: %w (remove the folder to regenerate it)", dir, err)
		}
		return p, nil
	case len(files):
		if err := p.create(sandboxHosts); err != nil {
			return nil, fmt.Errorf("creating dev PKI in %s: %w", dir, err)
		}
		return p, nil
	default:
		return nil, fmt.Errorf("dev PKI in %s is incomplete (missing %v): remove the folder to regenerate it", dir, missing)
	}
}

// files are those every dev PKI has had. Later versions added the forward
// proxy's CA and kb's server certificate; addLater makes them from the CAs an
// older PKI kept.
func (p *DevPKI) files() []string {
	return []string{DevRootCert, DevIntermediateCert, DevICARootCert,
		DevBanqwareCACert, DevBanqwareCert, DevSandboxRootCert, DevSandboxCert}
}

func (p *DevPKI) addLater() error {
	for _, f := range []struct {
		name   string
		create func() error
	}{{DevForwardCACert, p.createForwardCA}, {DevKBCert, p.createKBCert}} {
		if _, err := os.Stat(p.Path(f.name)); errors.Is(err, fs.ErrNotExist) {
			if err := f.create(); err != nil {
				return fmt.Errorf("%s: %w", f.name, err)
			}
		}
	}
	return nil
}

// check refuses expired certificates so the user learns why TLS fails.
func (p *DevPKI) check() error {
	for _, f := range append(p.files(), DevKBCert) {
		data, err := os.ReadFile(p.Path(f))
		if err != nil {
			return err
		}
		certs, err := ParseCertificates(data)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if time.Now().After(certs[0].NotAfter) {
			return fmt.Errorf("%s expired on %s", f, certs[0].NotAfter.Format(time.DateOnly))
		}
	}
	return nil
}

func (p *DevPKI) create(sandboxHosts []string) error {
	const year = 365 * 24 * time.Hour
	dev := func(cn string) pkix.Name {
		return pkix.Name{CommonName: cn, Organization: []string{"consentgate dev (untrusted)"}}
	}
	if _, err := createHierarchy(p.Dir, "consentgate dev (untrusted)"); err != nil {
		return err
	}
	if err := p.createForwardCA(); err != nil {
		return err
	}

	ica, err := NewCA(pkix.Name{CommonName: "I.CA Dev Qualified CA (consentgate dev, untrusted)", Organization: []string{"consentgate dev"}, Country: []string{"CZ"}}, 10*year)
	if err != nil {
		return err
	}
	if err := p.writeCA(DevICARootCert, ica); err != nil {
		return err
	}
	if err := p.createKBCert(); err != nil {
		return err
	}

	bq, err := NewCA(dev("banqware dev client issuer"), 10*year)
	if err != nil {
		return err
	}
	if err := p.writeCA(DevBanqwareCACert, bq); err != nil {
		return err
	}
	if err := p.issueFromCSR(DevBanqwareCert, bq, pkix.Name{CommonName: "onboarding-example", Organization: []string{"Onboarding Example s.r.o."}}); err != nil {
		return err
	}

	sb, err := NewCA(dev("consentgate dev sandbox CA"), 10*year)
	if err != nil {
		return err
	}
	if err := p.writeCA(DevSandboxRootCert, sb); err != nil {
		return err
	}
	server := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "consentgate dev vendor sandboxes"},
		DNSNames:    append([]string{"localhost"}, sandboxHosts...),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotAfter:    time.Now().Add(year),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	return p.issue(DevSandboxCert, sb, server)
}

// AppTemplate is an app client certificate: its identity is the URI SAN
// spiffe://<trust domain>/<role>/<name>. Tests use it to make app certificates
// from other CAs; the internal CA issues through Authority.IssueApp.
func AppTemplate(trustDomain, role, name string, validity time.Duration) *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: name},
		URIs:        []*url.URL{{Scheme: "spiffe", Host: trustDomain, Path: "/" + role + "/" + name}},
		NotAfter:    time.Now().Add(validity),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

// issueFromCSR follows the banqware onboarding: we make a key and a CSR, the
// issuer signs what the CSR asks for.
func (p *DevPKI) issueFromCSR(name string, ca *CA, subject pkix.Name) error {
	key, err := newKey()
	if err != nil {
		return err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject}, key)
	if err != nil {
		return fmt.Errorf("creating CSR: %w", err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return err
	}
	if err := csr.CheckSignature(); err != nil {
		return fmt.Errorf("CSR signature: %w", err)
	}
	cert, err := ca.Sign(&x509.Certificate{
		Subject:     csr.Subject,
		NotAfter:    time.Now().Add(365 * 24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, csr.PublicKey)
	if err != nil {
		return err
	}
	return p.write(name, cert, key)
}

func (p *DevPKI) issue(name string, ca *CA, tmpl *x509.Certificate) error {
	cert, key, err := ca.Issue(tmpl)
	if err != nil {
		return err
	}
	return p.write(name, cert, key)
}

func (p *DevPKI) writeCA(name string, ca *CA) error { return p.write(name, ca.Cert, ca.Key) }

func (p *DevPKI) write(name string, cert *x509.Certificate, key crypto.Signer) error {
	path := p.Path(name)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	keyPEM, err := EncodePrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(KeyFile(path), keyPEM, 0o600); err != nil {
		return err
	}
	return os.WriteFile(path, EncodeCertificates(cert), 0o644)
}

// createForwardCA makes the forward proxy's interception CA from the dev root.
func (p *DevPKI) createForwardCA() error {
	root, err := p.loadCA(DevRootCert)
	if err != nil {
		return err
	}
	ca, err := NewInterceptionCA(root, pkix.Name{CommonName: "consentgate dev forward proxy (untrusted)"}, 365*24*time.Hour)
	if err != nil {
		return err
	}
	return p.writeCA(DevForwardCACert, ca)
}

// createKBCert issues kb's client certificate from the dev I.CA root: the
// technological server certificate KB's terms ask for (serverAuth only, the
// company and its IČO in the CN). kb's profile takes it (types: [server]).
func (p *DevPKI) createKBCert() error {
	ica, err := p.loadCA(DevICARootCert)
	if err != nil {
		return err
	}
	return p.issue(DevKBCert, ica, &x509.Certificate{
		Subject: pkix.Name{
			CommonName:   "Onboarding Example s.r.o., IČO " + DevICO,
			Organization: []string{"Onboarding Example s.r.o."},
			Country:      []string{"CZ"},
			// I.CA puts its client id in serialNumber; it must not be taken for the IČO.
			SerialNumber: "ICA - 10998877",
		},
		DNSNames:    []string{"onboarding.example"},
		NotAfter:    time.Now().Add(365 * 24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
}

func (p *DevPKI) loadCA(name string) (*CA, error) {
	certPEM, err := os.ReadFile(p.Path(name))
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(KeyFile(p.Path(name)))
	if err != nil {
		return nil, err
	}
	return ParseCA(certPEM, keyPEM)
}
