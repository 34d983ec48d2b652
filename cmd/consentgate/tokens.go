package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"

	"github.com/spf13/cobra"
)

func newTokensCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "List a consent's tokens and reveal one to a person, through a running gateway's admin API",
	}
	var f exportFlags
	var token, tokenEnv, reason string
	reveal := &cobra.Command{
		Use:   "reveal --admin URL --cert F --key F --cacert F --reason TEXT (--token T | --token-env NAME)",
		Short: "Show one token's value, with a reason the audit log records first",
		Long: `Ask a running gateway (as an admin) for the value behind one token: for a
person who must see it, such as a support case or an auditor's sample. The
reason (at most 300 characters, no personal data: it is recorded) and the
token's id, field, vendor and consent go to the audit log before the value is
shown; without the record, no value. A token whose consent was withdrawn or
has expired has no value any more. Give the token through --token-env where
a command line would be seen by others.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tokenEnv != "" {
				token = os.Getenv(tokenEnv)
			}
			if token == "" {
				return fmt.Errorf("give the token with --token, or in the environment variable --token-env names")
			}
			client, err := adminClient(f.cert, f.key, f.cacert)
			if err != nil {
				return err
			}
			body, err := adminCall(cmd.Context(), client, http.MethodPost, f.admin+"/v1/tokens/reveal",
				map[string]string{"token": token, "reason": reason}, 1<<16)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(body)
			return err
		},
	}
	reveal.Flags().StringVar(&token, "token", "", "the token")
	reveal.Flags().StringVar(&tokenEnv, "token-env", "", "environment variable holding the token")
	reveal.Flags().StringVar(&reason, "reason", "", "why the value is needed (recorded)")
	reveal.MarkFlagRequired("reason")
	reveal.MarkFlagsMutuallyExclusive("token", "token-env")
	adminConnFlags(reveal, &f, "admin")
	cmd.AddCommand(reveal, newTokensListCmd())
	return cmd
}

func newTokensListCmd() *cobra.Command {
	var f exportFlags
	cmd := &cobra.Command{
		Use:   "list --admin URL --cert F --key F --cacert F CONSENT",
		Short: "List a consent's tokens: id, field, vendor, category, when made; never a token or value",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := adminClient(f.cert, f.key, f.cacert)
			if err != nil {
				return err
			}
			body, err := adminCall(cmd.Context(), client, http.MethodGet, f.admin+"/v1/tokens?consent="+url.QueryEscape(args[0]), nil, 16<<20)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(body)
			return err
		},
	}
	adminConnFlags(cmd, &f, "auditor or admin")
	return cmd
}
