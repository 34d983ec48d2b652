package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/consentgate/consentgate/audit"
)

// processStats is what the gateway process reports of itself on /metrics.
type processStats struct {
	at         time.Duration // since the load started
	rss        float64       // process_resident_memory_bytes
	goroutines float64       // go_goroutines
}

func (s processStats) String() string {
	return fmt.Sprintf("RSS %.1f MiB, %.0f goroutines at %s", s.rss/(1<<20), s.goroutines, s.at.Round(time.Second))
}

func readStats(c *http.Client, adminURL string) (processStats, error) {
	resp, err := c.Get(adminURL + "/metrics")
	if err != nil {
		return processStats{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return processStats{}, fmt.Errorf("/metrics: status %d", resp.StatusCode)
	}
	var s processStats
	found := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		var dst *float64
		switch {
		case !ok:
			continue
		case name == "process_resident_memory_bytes":
			dst = &s.rss
		case name == "go_goroutines":
			dst = &s.goroutines
		default:
			continue
		}
		if *dst, err = strconv.ParseFloat(value, 64); err != nil {
			return processStats{}, fmt.Errorf("%s: %w", name, err)
		}
		found++
	}
	if found != 2 {
		return processStats{}, fmt.Errorf("/metrics lacks process_resident_memory_bytes or go_goroutines (%v)", sc.Err())
	}
	return s, nil
}

// The gateway runs as its own process (`consentgate dev`, strict audit) under a
// steady rate of calls across all five vendors: 10 s in `make test`, 10 min in
// `make reliability` (CONSENTGATE_SOAK_DURATION and CONSENTGATE_SOAK_RATE, calls
// a second, override). No call fails; after the first fifth (warm-up) its
// goroutines stay within 50 and its RSS within twice the values at the end of
// warm-up; after a clean stop every intent record has its outcome.
func TestReliabilitySoak(t *testing.T) {
	length := reliabilityDuration(t, "CONSENTGATE_SOAK_DURATION", 10*time.Second, 10*time.Minute)
	rate := reliabilityCount(t, "CONSENTGATE_SOAK_RATE", 20, 20)
	// Each vendor gets a fifth of the calls; Air Bank's documented limit is 600 a minute.
	if rate > 45 {
		t.Fatalf("CONSENTGATE_SOAK_RATE=%d: above 45 calls a second the Air Bank sandbox rightly answers 429", rate)
	}
	dir := t.TempDir()
	gw, fw, admin := freeAddr(t), freeAddr(t), freeAddr(t)
	// As in the in-process tests: under -race OPA is many times slower than in a
	// real build, and the 50 ms default bound would turn into denials.
	cmd := startProcess(t, dir, gw, fw, admin, "--policy-timeout", "5s")
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	client := processClient(t, dir)
	statsClient := processClient(t, dir)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	jobs := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	answered := map[string]int{}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				vendor, purpose, method, path, reqBody := loadCall(i)
				// Calls in flight when the load stops still count: no context to cancel them.
				status, _, body, err := appCall(context.Background(), client, "https://"+gw+"/v/"+vendor+path, method, reqBody, under("dev-kyc", purpose))
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, vendor+": "+err.Error())
				case status/100 != 2:
					failures = append(failures, fmt.Sprintf("%s: %d %s", vendor, status, body))
				default:
					answered[vendor]++
				}
				mu.Unlock()
			}
		}()
	}
	// A ticker drops ticks while every worker is busy: the rate is a ceiling, and
	// a gateway that slows down shows as fewer calls, not as a queue in the test.
	go func() {
		defer close(jobs)
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				select {
				case jobs <- i:
				case <-ctx.Done():
					return
				}
			}
		}
	}()

	start := time.Now()
	warmUp, every := length/5, max(length/20, time.Second)
	var samples []processStats
	for next := warmUp; next <= length; next += every {
		time.Sleep(time.Until(start.Add(next)))
		s, err := readStats(statsClient, "https://"+admin)
		if err != nil {
			t.Fatalf("reading the gateway's metrics: %v", err)
		}
		s.at = time.Since(start)
		samples = append(samples, s)
	}
	cancel()
	wg.Wait()
	elapsed := time.Since(start)

	// A clean stop, then every intent must have its outcome.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("the gateway did not stop cleanly: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "audit.pub"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := audit.ParsePublicKeyPEM(raw)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.VerifyDB(filepath.Join(dir, "audit.db"), pub)
	if err != nil {
		t.Fatalf("the audit chain does not verify after the soak: %v", err)
	}
	if len(rep.Incomplete) != 0 {
		t.Errorf("%d intents without an outcome after a clean stop, e.g. %s", len(rep.Incomplete), rep.Incomplete[0])
	}

	total := 0
	var perVendor []string
	for _, c := range devCalls {
		total += answered[c.vendor]
		perVendor = append(perVendor, fmt.Sprintf("%s %d", c.vendor, answered[c.vendor]))
		if answered[c.vendor] == 0 {
			t.Errorf("no call to %s was answered", c.vendor)
		}
	}
	base, end := samples[0], samples[len(samples)-1]
	peak := slices.MaxFunc(samples, func(a, b processStats) int { return int(a.rss - b.rss) })
	t.Logf("soak %s at up to %d calls/s: %d calls (%.1f/s; %s), %d failed, %d audit records",
		length, rate, total, float64(total)/elapsed.Seconds(), strings.Join(perVendor, ", "), len(failures), rep.Records)
	t.Logf("after warm-up: %s; end: %s; peak: %s", base, end, peak)
	if len(failures) > 0 {
		t.Errorf("%d of %d calls failed, first: %s", len(failures), total+len(failures), failures[0])
	}
	for _, s := range samples[1:] {
		if s.goroutines > base.goroutines+50 || s.rss > 2*base.rss {
			t.Errorf("the gateway grew: %s, after warm-up %s", s, base)
		}
	}
}
