package main

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/consentgate/consentgate/ca"
	"github.com/consentgate/consentgate/certs"
)

func newCertsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "certs", Short: "Issue app certificates, make vendor CSRs, inspect vendor certificates"}
	cmd.AddCommand(newCertsIssueCmd(), newCertsCSRCmd(), newCertsForwardCACmd(), newCertsStatusCmd())
	var passwordEnv string
	inspect := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Show issuer, organisation, IČO, validity and warnings of a certificate",
		Long: `Show what a vendor will see in a client certificate: issuer and issuer family
(I.CA, PostSignum), organisation, IČO (and where it was found), validity, days
left, key type, and warnings. FILE is PEM, DER, or PKCS#12 (.p12/.pfx, password
from the environment variable named by --password-env).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			leaf, err := readCertificate(args[0], os.Getenv(passwordEnv))
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			fmt.Fprint(cmd.OutOrStdout(), certs.Inspect(leaf, time.Now()).String())
			return nil
		},
	}
	inspect.Flags().StringVar(&passwordEnv, "password-env", "CONSENTGATE_P12_PASSWORD", "environment variable holding the PKCS#12 password")
	cmd.AddCommand(inspect)
	return cmd
}

type issueOptions struct {
	role, name, out, caDir, passwordFile string
	validity                             time.Duration
	force                                bool
}

func newCertsIssueCmd() *cobra.Command {
	var o issueOptions
	cmd := &cobra.Command{
		Use:   "issue",
		Short: "Issue an app, auditor or admin client certificate from the internal CA",
		Long: `Issue a client certificate whose identity is the SPIFFE id
spiffe://<trust domain>/<role>/<name>, signed by the internal CA in --ca-dir
through its "consentgate-apps" provisioner, and write OUT/NAME.crt (leaf and
intermediate) and OUT/NAME.key (mode 0600). It opens the CA's database, so the
CA must not be running on that folder; against a running CA use the step CLI
(see docs/operator.md), which goes through the same provisioner.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch o.role {
			case "app", "auditor", "admin":
			default:
				return fmt.Errorf("--role %q: use app, auditor or admin", o.role)
			}
			certFile := filepath.Join(o.out, o.name+".crt")
			if !o.force {
				for _, f := range []string{certFile, certs.KeyFile(certFile)} {
					if _, err := os.Stat(f); err == nil {
						return fmt.Errorf("%s exists: use --force to replace it", f)
					}
				}
			}
			auth, err := ca.Open(ca.Options{Dir: o.caDir, PasswordFile: o.passwordFile,
				Address: "127.0.0.1:0", DNSNames: []string{"localhost"}})
			if err != nil {
				if errors.Is(err, bolterrors.ErrTimeout) {
					return fmt.Errorf("the CA database in %s is in use: is the CA running? Issue through it with the step CLI instead (%w)", o.caDir, err)
				}
				return err
			}
			defer auth.Close()
			cert, err := auth.IssueApp(cmd.Context(), o.role, o.name, o.validity)
			if err != nil {
				return err
			}
			if err := certs.WriteKeyPair(certFile, cert); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "issued %s serial=%s not_after=%s cert=%s key=%s\n", cert.Leaf.URIs[0],
				cert.Leaf.SerialNumber, cert.Leaf.NotAfter.UTC().Format(time.RFC3339), certFile, certs.KeyFile(certFile))
			return nil
		},
	}
	cmd.Flags().StringVar(&o.role, "role", "app", "app, auditor or admin")
	cmd.Flags().StringVar(&o.name, "name", "", "the app's (or person's) name: the last element of its SPIFFE id")
	cmd.Flags().StringVar(&o.out, "out", ".", "folder to write NAME.crt and NAME.key to")
	cmd.Flags().StringVar(&o.caDir, "ca-dir", ".consentgate/pki", "the internal CA's folder (consentgate ca serve --dir; in dev, DIR/pki)")
	cmd.Flags().StringVar(&o.passwordFile, "password-file", "", "password of the app provisioner's key (default CA-DIR/"+ca.DefaultPasswordFile+")")
	cmd.Flags().DurationVar(&o.validity, "validity", ca.DefaultAppValidity, "how long the certificate is valid (the provisioner allows up to 2160h)")
	cmd.Flags().BoolVar(&o.force, "force", false, "replace existing files")
	cmd.MarkFlagRequired("name")
	return cmd
}

type csrOptions struct {
	vendor, org, country, orgID, ico, cn, keyType, keyOut, csrOut string
}

func newCertsCSRCmd() *cobra.Command {
	var o csrOptions
	cmd := &cobra.Command{
		Use:   "csr",
		Short: "Make a new key and a CSR for a vendor client certificate (CN, O, C, organizationIdentifier)",
		Long: `Make a new private key and a certificate signing request for the certificate
consentgate presents to a vendor. The subject carries CN (default: the
organisation), O, C (--country, default CZ or the identifier's country) and,
when given, organizationIdentifier (2.5.4.97) in the form of ETSI EN 319 412-1:
--org-id NTRCZ-27074358 (trade register), VATDE-123456789 (VAT), LEIXG-<LEI>
or PSDCZ-CNB-<number> (PSD2, ETSI TS 119 495). --ico N is short for
--org-id NTRCZ-N, as I.CA, PostSignum and the banks that check the IČO expect.
What can be checked is: an IČO's check digit (also in ČNB PSD2 numbers), an
LEI's check digits. The key is written to --key-out with mode 0600 and never
over an existing file; the CSR to --csr-out.

Writing the key straight into Vault is not available yet (the secret provider
has no write method): store it with 'vault kv patch secret/vendors/VENDOR
client_key=@FILE' and delete the file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !vendorIDRE.MatchString(o.vendor) {
				return fmt.Errorf("--vendor %q is not a vendor id (lower-case letters, digits, dashes)", o.vendor)
			}
			if o.keyOut == "" {
				o.keyOut = o.vendor + ".key"
			}
			if o.csrOut == "" {
				o.csrOut = o.vendor + ".csr"
			}
			if _, err := os.Stat(o.keyOut); err == nil {
				return fmt.Errorf("%s exists: a key is never overwritten; choose another --key-out", o.keyOut)
			}
			r := certs.VendorCSR{Organization: o.org, Country: o.country, ICO: o.ico, CommonName: o.cn, KeyType: o.keyType}
			var err error
			if o.orgID != "" {
				if r.OrgID, err = certs.ParseOrgID(o.orgID); err != nil {
					return fmt.Errorf("--org-id: %w", err)
				}
			}
			subject, err := r.Subject()
			if err != nil {
				return err
			}
			csrPEM, key, err := certs.NewVendorCSR(r)
			if err != nil {
				return err
			}
			if err := certs.WriteNewKey(o.keyOut, key); err != nil {
				return fmt.Errorf("writing the key: %w", err)
			}
			if err := os.WriteFile(o.csrOut, csrPEM, 0o644); err != nil {
				return fmt.Errorf("writing the CSR: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "key: %s (mode 0600)\ncsr: %s\nsubject: %s\n"+
				"Send the CSR to %s or the qualified CA; check the certificate you get back with 'consentgate certs inspect'.\n",
				o.keyOut, o.csrOut, describeSubject(subject), o.vendor)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.vendor, "vendor", "", "vendor id the certificate is for (names the default files)")
	cmd.Flags().StringVar(&o.org, "org", "", "the company's registered name (O)")
	cmd.Flags().StringVar(&o.country, "country", "", "C, ISO 3166-1 alpha-2 (default CZ, or the --org-id country)")
	cmd.Flags().StringVar(&o.orgID, "org-id", "", "organizationIdentifier: NTRCZ-27074358, VATDE-123456789, LEIXG-<LEI>, PSDCZ-CNB-<number>")
	cmd.Flags().StringVar(&o.ico, "ico", "", "the company's IČO (8 digits): --org-id NTRCZ-<IČO>")
	cmd.Flags().StringVar(&o.cn, "cn", "", "common name (default: the organisation)")
	cmd.Flags().StringVar(&o.keyType, "key-type", certs.KeyRSA2048, "rsa-2048, rsa-3072 or ecdsa-p256")
	cmd.Flags().StringVar(&o.keyOut, "key-out", "", "key file to create (default VENDOR.key)")
	cmd.Flags().StringVar(&o.csrOut, "csr-out", "", "CSR file to write (default VENDOR.csr)")
	for _, f := range []string{"vendor", "org"} {
		cmd.MarkFlagRequired(f)
	}
	return cmd
}

// describeSubject names a CSR's subject attributes the way CAs' forms do
// (pkix.Name.String prints organizationIdentifier as hex DER).
func describeSubject(n pkix.Name) string {
	parts := []string{"CN=" + n.CommonName, "O=" + strings.Join(n.Organization, ", "), "C=" + strings.Join(n.Country, ", ")}
	for _, atv := range n.ExtraNames {
		if atv.Type.Equal(certs.OIDOrganizationIdentifier) {
			parts = append(parts, fmt.Sprintf("organizationIdentifier=%v", atv.Value))
		}
	}
	return strings.Join(parts, ", ")
}

// vendorIDRE is the vendor id rule of the configuration.
var vendorIDRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

func readCertificate(file, password string) (*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	lower := strings.ToLower(file)
	if strings.HasSuffix(lower, ".p12") || strings.HasSuffix(lower, ".pfx") {
		pair, err := certs.ParsePKCS12(data, password)
		if err != nil {
			return nil, err
		}
		return pair.Leaf, nil
	}
	if list, err := certs.ParseCertificates(data); err == nil {
		return list[0], nil
	}
	return x509.ParseCertificate(data)
}

func newCertsForwardCACmd() *cobra.Command {
	var caDir, out string
	var validity time.Duration
	cmd := &cobra.Command{
		Use:   "forward-ca --ca-dir DIR --out FILE",
		Short: "Make the forward proxy's interception CA: server certificates only",
		Long: `Make the CA the forward proxy mints vendor-host certificates with
(tls.forward_ca_cert_file): an intermediate of the internal CA's root in
--ca-dir (ca.crt and ca.key), limited to server certificates and to no further
CAs, so that its key, which the gateway holds, cannot mint the client
certificates the listeners accept. Writes FILE and its key (mode 0600). The
gateway refuses a forward CA without these limits.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			certPEM, err := os.ReadFile(filepath.Join(caDir, certs.RootCert))
			if err != nil {
				return err
			}
			keyPEM, err := os.ReadFile(certs.KeyFile(filepath.Join(caDir, certs.RootCert)))
			if err != nil {
				return fmt.Errorf("the root's key (it is needed once, here): %w", err)
			}
			root, err := certs.ParseCA(certPEM, keyPEM)
			if err != nil {
				return err
			}
			ca, err := certs.NewInterceptionCA(root, pkix.Name{CommonName: "consentgate forward proxy"}, validity)
			if err != nil {
				return err
			}
			return certs.WriteKeyPair(out, &tls.Certificate{Certificate: [][]byte{ca.Cert.Raw}, PrivateKey: ca.Key})
		},
	}
	cmd.Flags().StringVar(&caDir, "ca-dir", "", "the internal CA's folder (with ca.crt and ca.key)")
	cmd.Flags().StringVar(&out, "out", "forward-ca.crt", "certificate file to write (the key goes beside it)")
	cmd.Flags().DurationVar(&validity, "validity", 365*24*time.Hour, "how long the CA is valid")
	cmd.MarkFlagRequired("ca-dir")
	return cmd
}

func newCertsStatusCmd() *cobra.Command {
	var f exportFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status --admin URL --cert F --key F --cacert F [--json]",
		Short: "List every certificate a running gateway uses: expiry, issuer, key location, revocation",
		Long: `Ask a running gateway (its admin listener, as an auditor or admin) for every
certificate it uses now: its serving certificate, the internal CA apps chain to,
the signer of the client CRL (with the CRL's state), the forward proxy's CA, and
per vendor the client certificate (kind, where its key is, whether its issuer
revoked it) and the CAs the vendor's certificate must chain to. Expired and
soon-expiring certificates are flagged; the exit status is 1 when any
certificate is expired or revoked.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := adminClient(f.cert, f.key, f.cacert)
			if err != nil {
				return err
			}
			body, err := adminCall(cmd.Context(), client, http.MethodGet, f.admin+"/v1/certificates", nil, 8<<20)
			if err != nil {
				return err
			}
			var list []certs.InUse
			if err := json.Unmarshal(body, &list); err != nil {
				return fmt.Errorf("%s/v1/certificates: %w", f.admin, err)
			}
			if asJSON {
				cmd.OutOrStdout().Write(body)
			} else {
				printCertificates(cmd.OutOrStdout(), list)
			}
			for _, c := range list {
				if c.DaysLeft < 0 || strings.HasPrefix(c.Revocation, certs.RevocationRevoked) {
					return fmt.Errorf("%s %s %s is expired or revoked", c.Role, c.Vendor, c.Subject)
				}
			}
			return nil
		},
	}
	adminConnFlags(cmd, &f, "auditor or admin")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the list as JSON")
	return cmd
}

func printCertificates(w io.Writer, list []certs.InUse) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tVENDOR\tSUBJECT\tISSUER\tEXPIRES\tDAYS\tKEY\tREVOCATION")
	for _, c := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", c.Role, orDash(c.Vendor), c.Subject, c.Issuer,
			c.NotAfter.UTC().Format(time.DateOnly), c.DaysLeft, orDash(c.Key), c.Revocation)
		for _, warn := range c.Warnings {
			fmt.Fprintf(tw, "\t\twarning: %s\t\t\t\t\t\n", warn)
		}
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
