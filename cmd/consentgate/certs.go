package main

import (
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/consentgate/consentgate/certs"
)

func newCertsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "certs", Short: "Inspect vendor client certificates"}
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
