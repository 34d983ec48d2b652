package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/policy"
	"github.com/consentgate/consentgate/secrets"
)

func candidate(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte("package consentgate\n\n"+src+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A dry run runs in a process of its own: a candidate that asks for more
// memory than the bound kills that process, not the gateway, and says so; one
// that loads is replayed there, without the gateway's environment; and the
// dry run ends at its time bound.
func TestDryRunInAProcessOfItsOwn(t *testing.T) {
	t.Setenv("VAULT_SECRET_ID", "gateway-only")
	if cmd, err := workerCommand(context.Background()); err != nil || slices.ContainsFunc(cmd.Env, func(v string) bool { return strings.Contains(v, "gateway-only") }) || len(cmd.Env) != 1 {
		t.Fatalf("the worker's environment: %v %v", cmd.Env, err)
	}
	// Each string sixteen times the one before: s7 is 4 GiB, asked for at once.
	bomb := `s0 := "0123456789abcdef"` + "\n"
	for i := 1; i <= 7; i++ {
		bomb += fmt.Sprintf("s%d := concat(\"\", [%s])\n", i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("s%d, ", i-1), 16), ", "))
	}
	bomb += `decision := {"allow": false, "reasons": [sprintf("%d", [count(s7)])]}`
	in := policy.DryRunInput{Dir: candidate(t, bomb), Timeout: time.Minute}
	res, err := dryRunInWorker(context.Background(), in)
	if err == nil || !strings.Contains(err.Error(), "needed more than 1024 MiB of memory") {
		t.Errorf("a candidate asking for 4 GiB: %+v, %v", res, err)
	}

	in = policy.DryRunInput{Dir: candidate(t, `decision := {"allow": false, "reasons": ["candidate"]}`), Timeout: time.Second,
		Decisions: []policy.Recorded{{Seq: 3, Input: `{"app":{"id":"web"}}`, Allow: true, Reasons: []string{"ok"}}}}
	res, err = dryRunInWorker(context.Background(), in)
	if err != nil || res.Error != "" || res.Candidate.ID == "" || res.Replay.NewlyDenied != 1 {
		t.Errorf("a candidate that loads: %+v, %v", res, err)
	}

	// A candidate whose every decision loops 25 million times, each allowed a minute.
	in.Dir = candidate(t, `slow if {
	some i in numbers.range(1, 5000)
	some j in numbers.range(1, 5000)
	i * j == -1
}

decision := {"allow": false, "reasons": ["slow"]} if not slow`)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := dryRunInWorker(ctx, in); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Errorf("a dry run past its bound: %v after %s", err, time.Since(start))
	}
}

// A candidate's reasons are its own text: a dry run whose every reason is the
// same 1 MiB string, 200 times, does not make the gateway hold it all (a
// change keeps 20 reasons of 300 bytes; the worker's output is capped too).
func TestDryRunResultIsBoundedInTheGateway(t *testing.T) {
	// s4 is 1 MiB; the decision gives 200 reasons each pointing at it:
	// 200 MiB of JSON from a worker that holds about 1 MiB of strings.
	src := `s0 := "0123456789abcdef"` + "\n"
	for i := 1; i <= 4; i++ {
		src += fmt.Sprintf("s%d := concat(\"\", [%s])\n", i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("s%d, ", i-1), 16), ", "))
	}
	src += `decision := {"allow": false, "reasons": [s4 | some _ in numbers.range(1, 200)]}`
	in := policy.DryRunInput{Dir: candidate(t, src), Timeout: 30 * time.Second,
		Decisions: []policy.Recorded{{Seq: 1, Input: `{"app":{"id":"web"}}`, Allow: true, Reasons: []string{"ok"}}}}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := dryRunInWorker(context.Background(), in)
	runtime.ReadMemStats(&after)
	allocated := (after.TotalAlloc - before.TotalAlloc) >> 20
	t.Logf("dry run: %v; the gateway allocated %d MiB", err, allocated)
	if allocated > 100 {
		t.Errorf("the gateway allocated %d MiB to read one dry run's output (the result is bounded at %d MiB)", allocated, maxWorkerResult>>20)
	}
}

// The worker dies with the gateway (SIGKILL, or a shutdown that returns while
// a dry run is in flight) instead of replaying on as an orphan, and holds none
// of the gateway's files. The "gateway" is this test binary run again.
func TestDryRunWorkerDiesWithTheGateway(t *testing.T) {
	if os.Getenv("CONSENTGATE_TEST_DRY_RUN_GATEWAY") != "1" {
		t.Parallel()
	}
	if os.Getenv("CONSENTGATE_TEST_DRY_RUN_GATEWAY") == "1" {
		// The "gateway": it holds a file and a listener, and runs a dry run.
		f, err := os.Create(filepath.Join(os.Getenv("CONSENTGATE_TEST_DRY_RUN_DIR"), "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		dir := candidate(t, `slow if {
	input.app.id == "slow"
	some i in numbers.range(1, 5000)
	some j in numbers.range(1, 5000)
	i * j == -1
}

decision := {"allow": false, "reasons": ["slow"]} if not slow`)
		var ds []policy.Recorded
		for i := range 1000 {
			ds = append(ds, policy.Recorded{Seq: uint64(i), Input: `{"app":{"id":"slow"}}`, Allow: true, Reasons: []string{"ok"}})
		}
		res, err := dryRunInWorker(context.Background(), policy.DryRunInput{Dir: dir, Timeout: 5 * time.Second, Decisions: ds})
		fmt.Fprintf(os.Stderr, "helper: %+v %q %v\n", res.Replay, res.Error, err)
		return
	}
	tmp := t.TempDir()
	helper := exec.Command(os.Args[0], "-test.run=^TestDryRunWorkerDiesWithTheGateway$")
	helper.Env = append(os.Environ(), "CONSENTGATE_TEST_DRY_RUN_GATEWAY=1", "CONSENTGATE_TEST_DRY_RUN_DIR="+tmp)
	helper.Stderr, helper.Stdout = os.Stderr, os.Stderr
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer helper.Process.Kill()
	worker := 0
	for deadline := time.Now().Add(30 * time.Second); worker == 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		worker = childOf(helper.Process.Pid, "dry-run-worker")
	}
	if worker == 0 {
		t.Fatal("no worker started")
	}
	t.Logf("helper %d, worker %d", helper.Process.Pid, worker)
	defer syscall.Kill(worker, syscall.SIGKILL)
	// The kernel's OOM killer would pick it before the gateway.
	adj := func() string {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/oom_score_adj", worker))
		return strings.TrimSpace(string(b))
	}
	for deadline := time.Now().Add(5 * time.Second); adj() != "1000" && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if adj() != "1000" {
		t.Errorf("the worker's oom_score_adj is %q, want 1000", adj())
	}
	// What the worker inherited of the "gateway"'s open files.
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", worker))
	for _, fd := range fds {
		target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", worker, fd.Name()))
		t.Logf("worker fd %s -> %s", fd.Name(), target)
		if strings.Contains(target, "state.db") {
			t.Errorf("the worker inherited the gateway's file: fd %s -> %s", fd.Name(), target)
		}
	}
	helper.Process.Kill()
	helper.Wait()
	// Gone, or a zombie nobody reaps (PID 1 here may not), within 5 s.
	gone := func() bool {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", worker))
		return err != nil || strings.Contains(string(stat), " Z ")
	}
	for deadline := time.Now().Add(5 * time.Second); !gone() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if !gone() {
		t.Errorf("the dry-run worker (pid %d) outlives the gateway that was killed", worker)
	}
}

// childOf is the pid of a child of parent whose command line contains arg.
func childOf(parent int, arg string) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+2:])
		fields := strings.Fields(rest)
		if len(fields) < 2 || fields[1] != strconv.Itoa(parent) {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.Contains(string(cmdline), arg) {
			return pid
		}
	}
	return 0
}

// clientSecretOnly is a cache holding vendors/x#client_secret only.
type clientSecretOnly struct{}

func (clientSecretOnly) Get(context.Context, secrets.Ref) (secrets.Secret, error) {
	panic("the vendors page read through the cache")
}

func (clientSecretOnly) Peek(ref secrets.Ref) (secrets.Secret, error) {
	if ref.Key == "client_secret" {
		return secrets.Secret{Value: "s", FetchedAt: time.Now()}, nil
	}
	return secrets.Secret{}, fmt.Errorf("secret %s: %w", ref, secrets.ErrNotRead)
}

// An OAuth2 credential's client_id is a secret reference too: the vendors
// page counts it.
func TestSecretsStateCountsTheClientID(t *testing.T) {
	v := &configs.Vendor{ID: "x", Credentials: []configs.Credential{{Type: configs.CredentialOAuth2ClientCredentials,
		ClientID: "vendors/x#client_id", ClientSecret: "vendors/x#client_secret", TokenURL: "/token"}}}
	_, problem := secretsState(context.Background(), clientSecretOnly{}, v)
	if problem != "not read yet" {
		t.Errorf("client_id not in the cache: the page says %q", problem)
	}
}

// The worker's output is kept up to its bound; past it the worker is killed
// and the rest dropped.
func TestCappedOutput(t *testing.T) {
	killed := 0
	c := &capped{max: 10, over: func() { killed++ }}
	for _, p := range []string{"12345", "67890", "x", "yz"} {
		if n, err := c.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	if c.String() != "1234567890" || !c.exceeded || killed != 1 {
		t.Errorf("kept %q, exceeded %v, killed %d times", c.String(), c.exceeded, killed)
	}
}
