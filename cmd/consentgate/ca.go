package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/consentgate/consentgate/ca"
	"github.com/consentgate/consentgate/certs"
)

type caOptions struct {
	dir, listen, trustDomain, passwordFile string
	names                                  []string
	challengeHost                          string
	httpPort, tlsPort                      int
}

func newCACmd(logger func() *slog.Logger) *cobra.Command {
	cmd := &cobra.Command{Use: "ca", Short: "Run the internal certificate authority (embedded step-ca)"}
	var o caOptions
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Serve the internal CA: ACME for gateways, a provisioner for app certificates",
		Long: `Serve the internal CA over HTTPS on --listen. The first run creates DIR: a root
and an intermediate (keys mode 0600), the app provisioner's key (encrypted with
the password in --password-file, generated if the file does not exist) and a
bbolt database; later runs reuse them.

Gateways obtain and renew their serving certificates from the ACME directory
https://NAME:PORT/acme/acme/directory (tls.acme in their configuration). App,
auditor and admin client certificates come from the JWK provisioner
"consentgate-apps": with 'consentgate certs issue' (on this host, CA stopped)
or 'step ca certificate --provisioner consentgate-apps' against the running CA.

ACME challenges are validated the standard way (the name in DNS, port 80 or
443) unless --challenge-host or the port flags say where gateways answer.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := logger()
			auth, err := ca.Open(ca.Options{Dir: o.dir, TrustDomain: o.trustDomain, Address: o.listen,
				DNSNames: o.names, PasswordFile: o.passwordFile, Logger: log})
			if err != nil {
				return err
			}
			defer auth.Close()
			srv, err := auth.StartServer(o.listen, ca.Validation{Host: o.challengeHost, HTTPPort: o.httpPort, TLSALPNPort: o.tlsPort})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ca ready url=%s acme=%s root=%s fingerprint=%s trust_domain=%s app_provisioner=%s\n",
				srv.URL(), srv.Directory(), auth.RootFile(), auth.Fingerprint(), auth.TrustDomain(), ca.AppProvisioner)
			<-cmd.Context().Done()
			return srv.Close()
		},
	}
	serve.Flags().StringVar(&o.dir, "dir", "/var/lib/consentgate-ca", "CA folder: root, intermediate, provisioner key, database")
	serve.Flags().StringVar(&o.listen, "listen", "127.0.0.1:9000", "HTTPS listen address")
	serve.Flags().StringSliceVar(&o.names, "name", []string{"localhost", "127.0.0.1"}, "DNS names and IPs of the CA's own certificate; the first is in the URLs it prints")
	serve.Flags().StringVar(&o.trustDomain, "trust-domain", "", "SPIFFE trust domain of app certificates (required when the CA is created)")
	serve.Flags().StringVar(&o.passwordFile, "password-file", "", "password of the app provisioner's key (default DIR/"+ca.DefaultPasswordFile+")")
	serve.Flags().StringVar(&o.challengeHost, "challenge-host", "", "connect here to validate every ACME challenge instead of resolving the name (only where all listeners on that host are trusted)")
	serve.Flags().IntVar(&o.httpPort, "challenge-http-port", 0, "validate http-01 on this port instead of 80")
	serve.Flags().IntVar(&o.tlsPort, "challenge-tls-port", 0, "validate tls-alpn-01 on this port instead of 443")
	cmd.AddCommand(serve, newCARevokeCmd())
	return cmd
}

func newCARevokeCmd() *cobra.Command {
	var dir, passwordFile, caURL, serial, certFile, reason string
	cmd := &cobra.Command{
		Use:   "revoke",
		Short: "Revoke an app certificate at the running internal CA; gateways refuse it within tls.client_crl.refresh",
		Long: `Revoke an app, auditor or admin certificate through the running CA at --ca,
with a one-time token of the app provisioner (its key is read from --dir and
decrypted with the password file), as 'step ca revoke' does. The CA makes a new
CRL at once; every gateway whose tls.client_crl names the CA refuses the
certificate at the handshake once it reads the CRL again (every 30 s by
default). Name the certificate by --serial (decimal) or --cert FILE.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (serial == "") == (certFile == "") {
				return fmt.Errorf("give exactly one of --serial or --cert")
			}
			if certFile != "" {
				data, err := os.ReadFile(certFile)
				if err != nil {
					return err
				}
				chain, err := certs.ParseCertificates(data)
				if err != nil {
					return fmt.Errorf("%s: %w", certFile, err)
				}
				serial = chain[0].SerialNumber.String()
			}
			if err := ca.Revoke(cmd.Context(), dir, passwordFile, caURL, serial, reason); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked serial %s; gateways refuse it once they read the CA's CRL again\n", serial)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "/var/lib/consentgate-ca", "the CA's folder (root, provisioner key)")
	cmd.Flags().StringVar(&passwordFile, "password-file", "", "password of the app provisioner's key (default DIR/"+ca.DefaultPasswordFile+")")
	cmd.Flags().StringVar(&caURL, "ca", "https://127.0.0.1:9000", "the running CA's URL")
	cmd.Flags().StringVar(&serial, "serial", "", "serial number of the certificate, decimal")
	cmd.Flags().StringVar(&certFile, "cert", "", "the certificate file (PEM) instead of --serial")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the CA's records")
	return cmd
}
