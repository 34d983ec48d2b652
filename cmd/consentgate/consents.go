package main

import (
	"net/http"
	"net/url"

	"github.com/spf13/cobra"
)

func newConsentsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "consents",
		Short: "Read and revoke consents through a running gateway's admin API",
	}
	cmd.AddCommand(newConsentsCallCmd("get", http.MethodGet,
		"Show a consent, with where the erasure of its data stands at each vendor"),
		newConsentsCallCmd("revoke", http.MethodDelete,
			"Revoke a consent: the very next call under it is refused, and what vendors hold under it is erased"))
	return cmd
}

// newConsentsCallCmd makes a subcommand that sends method to
// /v1/consents/{id} with the caller's certificate and prints the answer.
func newConsentsCallCmd(use, method, short string) *cobra.Command {
	var f exportFlags
	cmd := &cobra.Command{
		Use:   use + " --admin URL --cert F --key F --cacert F ID",
		Short: short,
		Long: short + `. The certificate decides what is allowed, as on the admin API:
an app reads and revokes its own consents, an admin any, an auditor reads.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := adminClient(f.cert, f.key, f.cacert)
			if err != nil {
				return err
			}
			body, err := adminCall(cmd.Context(), client, method, f.admin+"/v1/consents/"+url.PathEscape(args[0]), nil, 1<<20)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(body)
			return err
		},
	}
	adminConnFlags(cmd, &f, "client (app, admin or auditor)")
	return cmd
}
