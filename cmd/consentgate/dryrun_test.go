package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/policy"
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
