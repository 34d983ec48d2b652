package main

import (
	"encoding/json"
	"math"
)

// summary is the one JSON line -json prints last: each target at one
// concurrency level, and the consentgate targets' ratios to nginx, for
// scripts and for comparing runs (issue 16).
type summary struct {
	Consents int                      `json:"consents"`
	Conns    int                      `json:"conns"`
	Targets  map[string]summaryTarget `json:"targets"`
}

type summaryTarget struct {
	RPS          float64  `json:"rps"`
	CPUMsPerCall float64  `json:"cpu_ms_per_call"`
	P50Ms        float64  `json:"p50_ms"`
	P99Ms        float64  `json:"p99_ms"`
	RSSMB        float64  `json:"rss_mb"`
	RPSVsNginx   *float64 `json:"rps_vs_nginx,omitempty"`
	CPUVsNginx   *float64 `json:"cpu_vs_nginx,omitempty"`
	// Against go-proxy, Go's own floor, when it was measured.
	RPSVsGoProxy *float64 `json:"rps_vs_go_proxy,omitempty"`
	CPUVsGoProxy *float64 `json:"cpu_vs_go_proxy,omitempty"`
}

// summaryLevel is the concurrency the summary compares at: 64 connections
// when measured, else the highest level.
const summaryLevel = 64

func (r *report) summary() summary {
	s := summary{Consents: r.consents, Targets: map[string]summaryTarget{}}
	for _, t := range r.targets {
		l, ok := levelFor(t.levels)
		if !ok {
			continue
		}
		s.Conns = l.conns
		s.Targets[t.name] = summaryTarget{RPS: round(l.rps()), CPUMsPerCall: round(l.cpuPer1k()),
			P50Ms: ms(l, 50), P99Ms: ms(l, 99), RSSMB: round(float64(l.peakRSS) / (1 << 20))}
	}
	nginx, haveNginx := s.Targets["nginx"]
	floor, haveFloor := s.Targets["go-proxy"]
	for name, t := range s.Targets {
		if name == "nginx" || name == "direct" {
			continue
		}
		if haveNginx {
			t.RPSVsNginx, t.CPUVsNginx = ratios(t, nginx)
		}
		if haveFloor && name != "go-proxy" {
			t.RPSVsGoProxy, t.CPUVsGoProxy = ratios(t, floor)
		}
		s.Targets[name] = t
	}
	return s
}

// ratios are t's req/s and CPU per call over peer's; nil where undefined.
func ratios(t, peer summaryTarget) (rps, cpu *float64) {
	r, c := round(ratio(t.RPS, peer.RPS)), round(ratio(t.CPUMsPerCall, peer.CPUMsPerCall))
	if !math.IsNaN(r) {
		rps = &r
	}
	if !math.IsNaN(c) {
		cpu = &c
	}
	return rps, cpu
}

// levelFor is the closed-loop result at summaryLevel, else the highest.
func levelFor(levels []loadResult) (loadResult, bool) {
	if len(levels) == 0 {
		return loadResult{}, false
	}
	for _, l := range levels {
		if l.conns == summaryLevel {
			return l, true
		}
	}
	return levels[len(levels)-1], true
}

// ms is the q-th percentile (0 < q ≤ 100) of l's latencies, in milliseconds.
func ms(l loadResult, q float64) float64 {
	if l.hist == nil || l.hist.count() == 0 {
		return 0
	}
	return round(float64(l.hist.percentile(q)) / 1e6)
}

// round keeps three decimals: enough to compare, short to read.
func round(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	return math.Round(v*1000) / 1000
}

func (s summary) line() string {
	b, _ := json.Marshal(s)
	return string(b)
}
