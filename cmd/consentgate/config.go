package main

import (
	"fmt"
	"os"

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
			cfg, err := loadConfig(args[0], "")
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

// loadConfig loads file with the node taken from flagNode, else from
// $CONSENTGATE_NODE, else from the file: every replica of a StatefulSet shares
// one file and gets its own node from its pod name. A bad override is refused
// with the name of where it came from.
func loadConfig(file, flagNode string) (*configs.Config, error) {
	node, from := flagNode, "--node"
	if node == "" {
		node, from = os.Getenv(configs.NodeEnv), "$"+configs.NodeEnv
	}
	if node != "" {
		if err := configs.CheckNode(node); err != nil {
			return nil, fmt.Errorf("%s: %w", from, err)
		}
	}
	return configs.LoadWithNode(file, node)
}
