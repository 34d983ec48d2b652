package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/policy"
)

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Test, check and evaluate Rego policies"}
	cmd.AddCommand(newPolicyTestCmd(), newPolicyCheckCmd(), newPolicyEvalCmd(), newPolicyReplayCmd(), newDryRunWorkerCmd())
	return cmd
}

func newPolicyTestCmd() *cobra.Command {
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
	return test
}

func newPolicyCheckCmd() *cobra.Command {
	var contractConfig string
	check := &cobra.Command{
		Use:   "check DIR [--config FILE]",
		Short: "Parse, compile, smoke-evaluate, contract-check and format-check the policy in DIR",
		Long: `Parse and compile the policy in DIR, evaluate the smoke input, check it
against the decision contract (every action, category, vendor, operation and
purpose it names exists in the vendor profiles of --config, default the
shipped ones, and every operation under every purpose gets a well-formed
decision), and check opa fmt form: what the gateway checks before a revision
serves.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			contract, err := contractFor(contractConfig)
			if err != nil {
				return err
			}
			if err := policy.Check(cmd.Context(), args[0], contract); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", args[0])
			return nil
		},
	}

	check.Flags().StringVar(&contractConfig, "config", "", "configuration whose vendor profiles the policy must fit (default: the shipped profiles)")
	return check
}

func newPolicyEvalCmd() *cobra.Command {
	var dir, input, contractConfig string
	eval := &cobra.Command{
		Use:   "eval --policy DIR --input FILE",
		Short: "Print the decision the policy in DIR makes for the input in FILE",
		Long: `Print the decision the policy in DIR makes for the JSON input in FILE (the
input document of docs/policy.md), exactly as the gateway would
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
			contract, err := contractFor(contractConfig)
			if err != nil {
				return err
			}
			// A command-line question is not on a request's clock: a generous bound.
			e, err := policy.New(cmd.Context(), policy.Options{Source: policy.Source{Dir: dir}, Timeout: 5 * time.Second, Contract: contract})
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
			if err := enc.Encode(out); err != nil {
				return err
			}
			if d.Err != "" {
				// The gateway would deny with a fixed reason; the policy erred.
				return fmt.Errorf("the policy could not decide: %s: %s", d.Reasons[0], d.Err)
			}
			return nil
		},
	}
	eval.Flags().StringVar(&dir, "policy", "configs/policies", "policy directory")
	eval.Flags().StringVar(&input, "input", "", "input JSON file")
	eval.Flags().StringVar(&contractConfig, "config", "", "configuration whose vendor profiles the policy must fit (default: the shipped profiles)")
	eval.MarkFlagRequired("input")
	return eval
}

func newPolicyReplayCmd() *cobra.Command {
	var dir, export, config string
	cmd := &cobra.Command{
		Use:   "replay --policy DIR --audit EXPORT --config FILE",
		Short: "Re-decide recorded calls with a candidate policy and print what would change",
		Long: `Every decision the gateway made is in the audit log with the question it asked
the policy (its non-personal input). replay asks a candidate policy the same
questions, with the field maps of the vendor profiles in FILE, and prints every
call whose allow or reasons would change: the way to roll out a stricter policy
without surprises.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(config, "")
			if err != nil {
				return err
			}
			e, err := policy.New(cmd.Context(), policy.Options{Source: policy.Source{Dir: dir}, Timeout: 5 * time.Second})
			if err != nil {
				return err
			}
			f, err := os.Open(export)
			if err != nil {
				return err
			}
			defer f.Close()
			out := cmd.OutOrStdout()
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 64<<10), 16<<20)
			var rp policy.Replay
			fields := cfg.OperationFields
			for sc.Scan() {
				var r audit.Record
				if json.Unmarshal(sc.Bytes(), &r) != nil || r.Detail["policy_input"] == "" || r.Allow == nil {
					continue
				}
				c, err := rp.Add(cmd.Context(), e, fields, recordedDecision(r))
				if err != nil {
					return err
				}
				if c != nil {
					fmt.Fprintf(out, "seq %d %s %s purpose=%s app=%s: %s %v -> %s %v\n", r.Seq, r.RequestID, r.Operation, r.Purpose, r.App,
						verdict(c.Allow), c.Reasons, verdict(c.NowAllow), c.NowReasons)
				}
			}
			if err := sc.Err(); err != nil {
				return err
			}
			fmt.Fprintf(out, "%d decisions replayed, %d would change (%d newly denied, %d newly allowed)\n", rp.Replayed, rp.Changed, rp.NewlyDenied, rp.NewlyAllowed)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "policy", "configs/policies", "candidate policy directory")
	cmd.Flags().StringVar(&export, "audit", "", "audit export (JSONL)")
	cmd.Flags().StringVar(&config, "config", "configs/consentgate.yaml", "configuration whose vendor profiles give the field maps")
	cmd.MarkFlagRequired("audit")
	return cmd
}

func verdict(allow bool) string {
	if allow {
		return "allow"
	}
	return "deny"
}

// recordedDecision is what a replay needs of an intent or outcome record.
func recordedDecision(r audit.Record) policy.Recorded {
	return policy.Recorded{Seq: r.Seq, RequestID: r.RequestID, App: r.App, Vendor: r.Vendor, Operation: r.Operation,
		Purpose: r.Purpose, Input: r.Detail["policy_input"], Allow: *r.Allow, Reasons: r.Reasons}
}

// contractFor is the decision contract of a configuration's vendor profiles,
// or of the shipped ones when file is "".
func contractFor(file string) (*policy.Contract, error) {
	var cfg *configs.Config
	var err error
	if file == "" {
		cfg, err = configs.LoadFS(configs.FS, "consentgate.yaml")
	} else {
		cfg, err = loadConfig(file, "")
	}
	if err != nil {
		return nil, err
	}
	return policyContract(cfg), nil
}

// policyContract is what every policy revision must fit: the profiles'
// operations and the data categories.
func policyContract(cfg *configs.Config) *policy.Contract {
	c := &policy.Contract{Categories: slices.DeleteFunc(slices.Clone(configs.Categories), func(s string) bool { return s == "metadata" })}
	for _, v := range cfg.Vendors {
		for _, op := range v.Operations {
			c.Operations = append(c.Operations, policy.ContractOperation{Vendor: v.ID, ID: op.ID, Method: op.Method, Path: op.Path,
				Body: op.Body, Class: op.Class, Erasure: op.Erases != "", RequestFields: op.SentFields(), ResponseFields: op.Fields.Response,
				Identifiers: op.Identifiers()})
		}
	}
	return c
}
