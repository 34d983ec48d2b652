package main

import (
	"io"
	"log/slog"

	"github.com/spf13/cobra"
)

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "consentgate",
		Short: "Compliance egress gateway for KYC, identity and open-banking vendors",
		Long: `consentgate sits between your apps and KYC, identity and open-banking vendors.
It authenticates apps by mTLS, attaches the vendor certificates and secrets apps
must never hold, and refuses every call it cannot place under a vendor profile.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	var level string
	root.PersistentFlags().StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	logger := func() *slog.Logger {
		var l slog.Level
		if err := l.UnmarshalText([]byte(level)); err != nil {
			l = slog.LevelInfo
		}
		return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: l}))
	}
	root.AddCommand(newDevCmd(logger), newServeCmd(logger), newConfigCmd(), newCertsCmd(), newCACmd(logger), newPolicyCmd(), newAuditCmd(), newResourcesCmd(), newConsentsCmd(), newTokensCmd(), newSubjectsCmd())
	return root
}
