package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
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
			// Where the gateway and its worker share a memory limit (a
			// container's), the kernel's OOM killer is to pick the worker.
			os.WriteFile("/proc/self/oom_score_adj", []byte("1000"), 0)
			limit := &syscall.Rlimit{Cur: dryRunMemory, Max: dryRunMemory}
			if err := syscall.Setrlimit(syscall.RLIMIT_DATA, limit); err != nil {
				return fmt.Errorf("bounding the dry run's memory: %w", err)
			}
			debug.SetMemoryLimit(dryRunMemory * 3 / 4)
			var in policy.DryRunInput
			if err := json.NewDecoder(cmd.InOrStdin()).Decode(&in); err != nil {
				return fmt.Errorf("reading the dry run: %w", err)
			}
			ctx := cmd.Context()
			if in.Bound > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, in.Bound)
				defer cancel()
			}
			res, err := policy.DryRun(ctx, in)
			if err != nil {
				return err
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
		},
	}
}

// Bounds on what the gateway keeps of a worker's output: its result (a
// candidate's reasons are its own text, of any length) and its complaint.
const (
	maxWorkerResult = 32 << 20
	maxWorkerStderr = 64 << 10
)

// dryRunInWorker runs a dry run in a child process (this executable's
// dry-run-worker), killed when ctx ends, when its result grows past
// maxWorkerResult, or when the gateway dies. A child that ran out of memory is
// said so; of anything else it says on stderr, the first line is kept.
func dryRunInWorker(ctx context.Context, in policy.DryRunInput) (policy.DryRunResult, error) {
	if deadline, ok := ctx.Deadline(); ok {
		in.Bound = time.Until(deadline) // the worker stops itself too
	}
	body, err := json.Marshal(in)
	if err != nil {
		return policy.DryRunResult{}, err
	}
	ctx, kill := context.WithCancel(ctx)
	defer kill()
	cmd, err := workerCommand(ctx)
	if err != nil {
		return policy.DryRunResult{}, err
	}
	stdout, stderr := &capped{max: maxWorkerResult, over: kill}, &capped{max: maxWorkerStderr}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(body), stdout, stderr
	cmd.WaitDelay = time.Second
	if err := runLocked(cmd); err != nil {
		switch {
		case stdout.exceeded:
			return policy.DryRunResult{}, fmt.Errorf("the candidate's answers came to more than %d MiB", maxWorkerResult>>20)
		case ctx.Err() != nil:
			return policy.DryRunResult{}, ctx.Err()
		case outOfMemory(stderr.String()):
			return policy.DryRunResult{}, fmt.Errorf("the candidate needed more than %d MiB of memory", dryRunMemory>>20)
		}
		return policy.DryRunResult{}, fmt.Errorf("the dry run's process failed (%w): %s", err, firstLine(stderr.String()))
	}
	var res policy.DryRunResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return policy.DryRunResult{}, errors.New("the dry run's process gave no result")
	}
	return res, nil
}

// runLocked runs cmd from a thread locked for its lifetime: the worker's parent-death
// signal (workerAttrs) follows the thread that started it, which must not be
// retired while the worker runs.
func runLocked(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		errc <- cmd.Run()
	}()
	return <-errc
}

// outOfMemory reads a worker's complaint: Go's, the race detector's, or a
// thread that could not get its stack under the bound.
func outOfMemory(stderr string) bool {
	for _, s := range []string{"out of memory", "cannot allocate memory", "failed to allocate", "pthread_create failed"} {
		if strings.Contains(stderr, s) {
			return true
		}
	}
	return false
}

// capped keeps what is written to it up to max bytes; past that it drops the
// rest and calls over (which kills the writer).
type capped struct {
	bytes.Buffer
	max      int
	over     func()
	exceeded bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.Len(); len(p) > room {
		c.Buffer.Write(p[:max(room, 0)])
		if !c.exceeded && c.over != nil {
			c.over()
		}
		c.exceeded = true
		return len(p), nil
	}
	return c.Buffer.Write(p)
}

// workerCommand is the dry-run worker's command: this executable, with none
// of the gateway's environment (Vault credentials, say), since it runs
// uploaded code, and killed if the gateway dies. A test binary runs as the
// command only when told to (main_test.go).
func workerCommand(ctx context.Context) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, "policy", "dry-run-worker")
	cmd.Env = []string{"CONSENTGATE_RUN_MAIN=1"}
	cmd.SysProcAttr = workerAttrs()
	return cmd, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
