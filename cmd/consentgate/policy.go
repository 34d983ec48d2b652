package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/consentgate/consentgate/policy"
)

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Test, check and evaluate Rego policies"}
	var verbose bool
	test := &cobra.Command{
		Use:   "test DIR",
		Short: "Run the Rego tests (test_ rules) in DIR with OPA's tester",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return policy.Test(cmd.Context(), args[0], cmd.OutOrStdout(), verbose)
		},
	}
	test.Flags().BoolVarP(&verbose, "verbose", "v", false, "list passing tests too")

	check := &cobra.Command{
		Use:   "check DIR",
		Short: "Parse, compile, smoke-evaluate and format-check the policy in DIR",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := policy.Check(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", args[0])
			return nil
		},
	}

	var dir, input string
	eval := &cobra.Command{
		Use:   "eval --policy DIR --input FILE",
		Short: "Print the decision the policy in DIR makes for the input in FILE",
		Long: `Print the decision the policy in DIR makes for the JSON input in FILE (the
input document of DESIGN.md's policy contract), exactly as the gateway would
evaluate it, including the fail-closed reasons for errors and malformed
decisions.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw, err := os.ReadFile(input)
			if err != nil {
				return err
			}
			var in map[string]any
			if err := json.Unmarshal(raw, &in); err != nil {
				return fmt.Errorf("%s: %w", input, err)
			}
			e, err := policy.New(cmd.Context(), policy.Options{Source: policy.Source{Dir: dir}})
			if err != nil {
				return err
			}
			d := e.DecideRaw(cmd.Context(), in)
			out := struct {
				policy.Decision
				Error string `json:"error,omitempty"`
			}{d, d.Err}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		},
	}
	eval.Flags().StringVar(&dir, "policy", "configs/policies", "policy directory")
	eval.Flags().StringVar(&input, "input", "", "input JSON file")
	eval.MarkFlagRequired("input")
	cmd.AddCommand(test, check, eval)
	return cmd
}
