package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/consentgate/consentgate/configs"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with configuration files"}
	var files bool
	check := &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a configuration and the vendor profiles it lists",
		Long: `Validate a configuration file and every vendor profile it lists. Unknown keys,
bad values and references to missing operations or files are reported with
file, line and field. With --files, every file the configuration names (TLS,
secrets, vendor CA bundles and certificates) must also be readable here, as
serve requires. Exits non-zero on any problem.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := configs.Load(args[0])
			if err != nil {
				return err
			}
			if files {
				if err := cfg.CheckFiles(); err != nil {
					return err
				}
			}
			ops := 0
			for _, v := range cfg.Vendors {
				ops += len(v.Operations)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%d vendors, %d operations)\n", args[0], len(cfg.Vendors), ops)
			return nil
		},
	}
	check.Flags().BoolVar(&files, "files", false, "also check that every file the configuration names is readable")
	cmd.AddCommand(check)
	return cmd
}
