package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/spf13/cobra"
)

func newResourcesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "resources",
		Short: "Vendor ids bound to the end user and app they were created for",
	}
	cmd.AddCommand(newResourcesImportCmd())
	return cmd
}

func newResourcesImportCmd() *cobra.Command {
	var f exportFlags
	var vendor, kind, consentID string
	cmd := &cobra.Command{
		Use:   "import --admin URL --cert F --key F --cacert F --vendor V --kind K --consent ID VENDOR-ID...",
		Short: "Bind ids created at a vendor before consentgate was in place to a consent",
		Long: `Calls that name a vendor id (a banqware user, a Biometric.Vision session) go
through only for the end user and app the id was created for, and an id
consentgate never saw created is refused. Ids that exist from before are bound
here, with an admin certificate, to the consent of the end user they belong to;
each import is recorded in the audit log.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			client, err := adminClient(f.cert, f.key, f.cacert)
			if err != nil {
				return err
			}
			for _, id := range ids {
				body, _ := json.Marshal(map[string]string{"vendor": vendor, "kind": kind, "id": id, "consent_id": consentID})
				req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, f.admin+"/v1/resources", bytes.NewReader(body))
				if err != nil {
					return err
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					return err
				}
				answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					return fmt.Errorf("importing %s %s: admin API: %s: %s", kind, id, resp.Status, answer)
				}
				cmd.OutOrStdout().Write(answer)
			}
			return nil
		},
	}
	adminConnFlags(cmd, &f, "admin")
	fl := cmd.Flags()
	fl.StringVar(&vendor, "vendor", "", "vendor id, e.g. banqware")
	fl.StringVar(&kind, "kind", "", "resource kind, as the vendor profile's resources.creates names it (user, consent, session)")
	fl.StringVar(&consentID, "consent", "", "consent of the end user the ids belong to")
	for _, name := range []string{"vendor", "kind", "consent"} {
		cmd.MarkFlagRequired(name)
	}
	return cmd
}
