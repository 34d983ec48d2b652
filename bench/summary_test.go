package main

import (
	"encoding/json"
	"testing"
	"time"
)

// The -json line has the shape issue 16 asks for: per target at 64
// connections (or the highest level), and consentgate's ratios to nginx.
func TestSummaryLine(t *testing.T) {
	withRSS := func(l loadResult, mb int64) loadResult { l.peakRSS = mb << 20; return l }
	r := &report{consents: 20000, targets: []*targetResult{
		{name: "nginx", levels: []loadResult{lvl(16, 9000, time.Millisecond, 1), withRSS(lvl(64, 10000, 2*time.Millisecond, 2), 56)}},
		{name: "consentgate-strict", levels: []loadResult{lvl(16, 2000, 4*time.Millisecond, 4), withRSS(lvl(64, 2500, 8*time.Millisecond, 5), 150)}},
		{name: "consentgate-async", levels: []loadResult{withRSS(lvl(16, 3000, 3*time.Millisecond, 4), 140)}},
		{name: "go-proxy", levels: []loadResult{lvl(64, 5000, 3*time.Millisecond, 2)}},
	}}
	// nginx's latencies: 98 calls at 1 ms, 2 at 100 ms, so p50 and p99 differ.
	h := newHistogram()
	for i := range 100 {
		h.record(map[bool]time.Duration{true: 100 * time.Millisecond, false: time.Millisecond}[i >= 98])
	}
	r.targets[0].levels[1].hist = h
	var got map[string]any
	if err := json.Unmarshal([]byte(r.summary().line()), &got); err != nil {
		t.Fatal(err)
	}
	if got["consents"] != 20000.0 {
		t.Errorf("consents %v", got["consents"])
	}
	targets := got["targets"].(map[string]any)
	nginx := targets["nginx"].(map[string]any)
	strict := targets["consentgate-strict"].(map[string]any)
	async := targets["consentgate-async"].(map[string]any)
	// Within the histogram's bucket precision (1/256).
	if p50, _ := nginx["p50_ms"].(float64); p50 < 0.99 || p50 > 1.01 {
		t.Errorf("nginx p50_ms = %v, want about 1", nginx["p50_ms"])
	}
	if p99, _ := nginx["p99_ms"].(float64); p99 < 99 || p99 > 101 {
		t.Errorf("nginx p99_ms = %v, want about 100", nginx["p99_ms"])
	}
	for name, want := range map[string]float64{"rps": 10000, "cpu_ms_per_call": 0.02, "rss_mb": 56} {
		if nginx[name] != want {
			t.Errorf("nginx %s = %v, want %v", name, nginx[name], want)
		}
	}
	if _, ok := nginx["rps_vs_nginx"]; ok {
		t.Error("nginx is compared with itself")
	}
	// 2500 / 10000 requests/s; (5 s / 25000 calls) / (2 s / 100000 calls) CPU.
	if strict["rps_vs_nginx"] != 0.25 || strict["cpu_vs_nginx"] != 10.0 || strict["p50_ms"] != 8.0 || strict["rss_mb"] != 150.0 {
		t.Errorf("consentgate-strict %v", strict)
	}
	// 2500 / 5000 requests/s; (5 s / 25000 calls) / (2 s / 50000 calls) CPU.
	if strict["rps_vs_go_proxy"] != 0.5 || strict["cpu_vs_go_proxy"] != 5.0 {
		t.Errorf("consentgate-strict against go-proxy %v", strict)
	}
	floor := targets["go-proxy"].(map[string]any)
	if floor["rps_vs_nginx"] != 0.5 || floor["rps_vs_go_proxy"] != nil {
		t.Errorf("go-proxy %v: against nginx, not against itself", floor)
	}
	// Measured at 16 connections only: its highest level stands in.
	if async["rps"] != 3000.0 || async["rps_vs_nginx"] != 0.3 {
		t.Errorf("consentgate-async %v", async)
	}
}
