package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the smoke tests start this test binary as the upstream or
// go-proxy, as the benchmark starts itself.
func TestMain(m *testing.M) {
	for env, serve := range map[string]func(string) error{upstreamRoleEnv: serveUpstream, goProxyRoleEnv: serveGoProxy} {
		if cfg := os.Getenv(env); cfg != "" {
			if err := serve(cfg); err != nil {
				os.Stderr.WriteString("bench " + env + ": " + err.Error() + "\n")
				os.Exit(1)
			}
			return
		}
	}
	os.Exit(m.Run())
}

// A tiny direct-only run proves the harness works end to end: the upstream
// child starts and checks mTLS and credentials, the load generator gets
// answers at two concurrency levels, the server's CPU and memory are read,
// fdatasync is timed, and the report section replaces only its own part of
// RESULTS.md.
func TestSmokeDirectOnly(t *testing.T) {
	dir := t.TempDir()
	results := filepath.Join(dir, "RESULTS.md")
	const before = "# Benchmark results\n\nEarlier findings stay.\n\n## 2020-01-01 — an older section\n\nkept\n"
	if err := os.WriteFile(results, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runBench(t, "-targets", "direct", "-levels", "1,4", "-duration", "700ms", "-warmup", "200ms",
		"-fsync-samples", "20", "-dir", filepath.Join(dir, "work"), "-results", results)
	if len(r.targets) != 1 || r.targets[0].name != "direct" || len(r.targets[0].levels) != 2 {
		t.Fatalf("want one target direct with 2 levels, got %+v", r.targets)
	}
	for _, l := range r.targets[0].levels {
		if l.requests == 0 || l.errors != 0 {
			t.Errorf("%d conns: %d requests, %d errors (%s)", l.conns, l.requests, l.errors, l.firstErr)
		}
		if l.hist.count() != l.requests {
			t.Errorf("%d conns: histogram holds %d values for %d requests", l.conns, l.hist.count(), l.requests)
		}
		if p50 := l.hist.percentile(50); p50 <= 0 || p50 > 10*time.Second {
			t.Errorf("%d conns: p50 %v is not a latency", l.conns, p50)
		}
		if l.peakRSS <= 0 {
			t.Errorf("%d conns: the upstream's RSS was not read", l.conns)
		}
		if l.cpu < 0 {
			t.Errorf("%d conns: negative CPU %v", l.conns, l.cpu)
		}
	}
	if r.fsync.samples != 20 || r.fsync.hist.count() != 20 {
		t.Errorf("fsync: %d samples, %d recorded, want 20", r.fsync.samples, r.fsync.hist.count())
	}

	if err := writeResults(results, r); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(results)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	if !strings.HasPrefix(doc, before) {
		t.Errorf("the existing content was not kept:\n%s", doc)
	}
	for _, want := range []string{r.heading(), "| direct | 1 |", "| direct | 4 |", "**Preliminary run**",
		"make bench BENCH_FLAGS='", "### Physical limit", "fdatasync"} {
		if !strings.Contains(doc, want) {
			t.Errorf("RESULTS.md lacks %q:\n%s", want, doc)
		}
	}
	// The work folder the caller named is the caller's: it stays.
	if _, err := os.Stat(filepath.Join(dir, "work")); err != nil {
		t.Errorf("the given work folder was removed: %v", err)
	}
}

// go-proxy serves the vendor's full answer through Go's reverse proxy with
// the app's certificate checked and the vendor's credentials added: without
// them the upstream refuses, so an answered call proves the floor does the
// same work nginx does.
func TestSmokeGoProxy(t *testing.T) {
	dir := t.TempDir()
	r := runBench(t, "-targets", "go-proxy", "-levels", "2", "-duration", "500ms", "-warmup", "100ms", "-open-duration", "0",
		"-idle-conns", "0", "-fsync-samples", "5", "-dir", filepath.Join(dir, "work"), "-results", "")
	if len(r.targets) != 1 || r.targets[0].name != "go-proxy" {
		t.Fatalf("want one target go-proxy, got %+v", r.targets)
	}
	if l := r.targets[0].levels[0]; l.requests == 0 || l.errors != 0 {
		t.Errorf("%d requests, %d errors (%s)", l.requests, l.errors, l.firstErr)
	}
}

// runBench runs the benchmark with args as flags.
func runBench(t *testing.T, args ...string) *report {
	t.Helper()
	o, err := parseOptions(args, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	r, err := benchmark(o, &log)
	if err != nil {
		t.Fatalf("benchmark: %v\n%s", err, log.String())
	}
	return r
}
