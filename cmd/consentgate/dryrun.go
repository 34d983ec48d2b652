package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/consentgate/consentgate/policy"
)

// dryRunMemory bounds a dry run's process: a candidate is code an admin
// uploaded, and a built-in such as numbers.range can ask for any amount.
const dryRunMemory = 1 << 30

// newDryRunWorkerCmd is the console's dry run in a process of its own: it
// reads a policy.DryRunInput on stdin and writes the policy.DryRunResult on
// stdout, within dryRunMemory. The gateway starts it and kills it at the dry
// run's time bound; it is not for people.
func newDryRunWorkerCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "dry-run-worker",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			limit := &syscall.Rlimit{Cur: dryRunMemory, Max: dryRunMemory}
			if err := syscall.Setrlimit(syscall.RLIMIT_DATA, limit); err != nil {
				return fmt.Errorf("bounding the dry run's memory: %w", err)
			}
			debug.SetMemoryLimit(dryRunMemory * 3 / 4)
			var in policy.DryRunInput
			if err := json.NewDecoder(cmd.InOrStdin()).Decode(&in); err != nil {
				return fmt.Errorf("reading the dry run: %w", err)
			}
			res, err := policy.DryRun(cmd.Context(), in)
			if err != nil {
				return err
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
		},
	}
}

// dryRunInWorker runs a dry run in a child process (this executable's
// dry-run-worker), killed when ctx ends. A child that ran out of memory is
// said so; of anything else it says on stderr, the first line is kept.
func dryRunInWorker(ctx context.Context, in policy.DryRunInput) (policy.DryRunResult, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return policy.DryRunResult{}, err
	}
	cmd, err := workerCommand(ctx)
	if err != nil {
		return policy.DryRunResult{}, err
	}
	cmd.Stdin = bytes.NewReader(body)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return policy.DryRunResult{}, ctx.Err()
		}
		if out := stderr.String(); strings.Contains(out, "out of memory") || strings.Contains(out, "failed to allocate") {
			return policy.DryRunResult{}, fmt.Errorf("the candidate needed more than %d MiB of memory", dryRunMemory>>20)
		}
		return policy.DryRunResult{}, fmt.Errorf("the dry run's process failed (%w): %s", err, firstLine(stderr.String()))
	}
	var res policy.DryRunResult
	if err := json.NewDecoder(io.LimitReader(&stdout, 64<<20)).Decode(&res); err != nil {
		return policy.DryRunResult{}, errors.New("the dry run's process gave no result")
	}
	return res, nil
}

// workerCommand is the dry-run worker's command: this executable, with none
// of the gateway's environment (Vault credentials, say), since it runs
// uploaded code. A test binary runs as the command only when told to
// (main_test.go).
func workerCommand(ctx context.Context) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, "policy", "dry-run-worker")
	cmd.Env = []string{"CONSENTGATE_RUN_MAIN=1"}
	return cmd, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
