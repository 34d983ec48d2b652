package main

import (
	"fmt"
	"net/http"
	"os"

	"github.com/spf13/cobra"
)

func newSubjectsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "subjects",
		Short: "Act on one end user across apps, through a running gateway's admin API",
	}
	var f exportFlags
	var subject, subjectEnv, reason string
	erase := &cobra.Command{
		Use:   "erase --admin URL --cert F --key F --cacert F --reason TEXT (--subject ID | --subject-env NAME)",
		Short: "Withdraw every consent of one end user: their tokens become unrevealable at once",
		Long: `Ask a running gateway (as an admin) to erase one end user: every consent of
theirs is withdrawn, whichever app holds it, which destroys the data keys of
their tokens (no token of theirs opens again) and plans the erasure of what
vendors hold of them, as revoking each consent would. The reason (at most 300
characters, no personal data) and the end user's subject HMAC are recorded
first; each revocation has its own record. Running it again finishes an
erasure that failed part way. Give the app user id through --subject-env
where a command line would be seen by others.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if subjectEnv != "" {
				subject = os.Getenv(subjectEnv)
			}
			if subject == "" {
				return fmt.Errorf("give the end user's app user id with --subject, or in the environment variable --subject-env names")
			}
			client, err := adminClient(f.cert, f.key, f.cacert)
			if err != nil {
				return err
			}
			body, err := adminCall(cmd.Context(), client, http.MethodPost, f.admin+"/v1/subjects/erase",
				map[string]string{"subject": subject, "reason": reason}, 1<<20)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(body)
			return err
		},
	}
	erase.Flags().StringVar(&subject, "subject", "", "the end user's app user id")
	erase.Flags().StringVar(&subjectEnv, "subject-env", "", "environment variable holding the app user id")
	erase.Flags().StringVar(&reason, "reason", "", "why the end user is erased (recorded)")
	erase.MarkFlagRequired("reason")
	erase.MarkFlagsMutuallyExclusive("subject", "subject-env")
	adminConnFlags(erase, &f, "admin")
	cmd.AddCommand(erase)
	return cmd
}
