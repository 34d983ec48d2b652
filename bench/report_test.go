package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

// lvl is a measured level: conns connections, rps requests/s over 10 s, every
// latency equal to lat, cpu seconds of server CPU.
func lvl(conns int, rps float64, lat time.Duration, cpu float64) loadResult {
	h := newHistogram()
	n := uint64(rps * 10)
	for i := uint64(0); i < n; i++ {
		h.record(lat)
	}
	return loadResult{conns: conns, duration: 10 * time.Second, requests: n, hist: h,
		cpu: time.Duration(cpu * float64(time.Second))}
}

func TestSaturation(t *testing.T) {
	cases := []struct {
		name    string
		rps     []float64 // at 1, 16, 64, 256 connections
		conns   int
		peak    float64
		reached bool
	}{
		{"grows then flat", []float64{1000, 8000, 8300, 8350}, 16, 8350, true},
		{"exactly 5% more still grows", []float64{1000, 1050, 1060, 1070}, 16, 1070, true},
		{"falls under overload", []float64{1000, 9000, 12000, 10000}, 64, 12000, true},
		{"still growing at the top", []float64{1000, 4000, 9000, 12000}, 256, 12000, false},
		{"flat from the start", []float64{5000, 5100, 5000, 4900}, 1, 5100, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var levels []loadResult
			for i, conns := range []int{1, 16, 64, 256} {
				levels = append(levels, lvl(conns, c.rps[i], time.Millisecond, 1))
			}
			conns, peak, reached := saturation(levels)
			if conns != c.conns || math.Abs(peak-c.peak) > 0.5 || reached != c.reached {
				t.Errorf("saturation = %d conns, %.0f peak, reached %v; want %d, %.0f, %v",
					conns, peak, reached, c.conns, c.peak, c.reached)
			}
		})
	}
	if c, p, r := saturation(nil); c != 0 || p != 0 || r {
		t.Errorf("no levels: %d %v %v", c, p, r)
	}
}

func TestRatesAndRatios(t *testing.T) {
	l := lvl(16, 2500, time.Millisecond, 5) // 25,000 requests, 5 s CPU
	if got := l.rps(); math.Abs(got-2500) > 1e-9 {
		t.Errorf("rps = %v, want 2500", got)
	}
	if got := l.cpuPer1k(); math.Abs(got-0.2) > 1e-9 {
		t.Errorf("cpu per 1k = %v, want 0.2 s", got)
	}
	if got := (loadResult{}).cpuPer1k(); got != 0 {
		t.Errorf("cpu per 1k of nothing = %v, want 0", got)
	}
	if got := ratio(700, 1000); got != 0.7 {
		t.Errorf("ratio = %v, want 0.7", got)
	}
	if got := ratio(1, 0); !math.IsNaN(got) || fmtRatio(got) != "–" {
		t.Errorf("ratio over zero = %v (%s), want NaN shown as –", got, fmtRatio(got))
	}
	open, direct := lvl(0, 100, 3*time.Millisecond, 0), lvl(0, 100, 1*time.Millisecond, 0)
	if got := addedP99(&open, &direct); got < 1990*time.Microsecond || got > 2010*time.Microsecond {
		t.Errorf("added p99 = %v, want 2 ms", got)
	}
}

// goalsReport is a run where, against nginx's 10,000 req/s and 0.2 s of CPU
// per 1,000 calls at 64 connections, strict reaches 0.75× at 5× the CPU, 80
// MB under load, and adds 12 ms at half saturation, with 1,000 idle
// connections in 90 MB; async reaches 0.4× at 10× the CPU in 130 MB, adds
// 0.5 ms, and its idle memory was not measured.
func goalsReport() *report {
	openOf := func(lat time.Duration) *loadResult { l := lvl(0, 500, lat, 0); l.rate = 500; return &l }
	at := func(l loadResult, rss int64) loadResult { l.peakRSS = rss << 20; return l }
	fsync := newHistogram()
	for range 100 {
		fsync.record(5 * time.Millisecond)
	}
	return &report{
		fsync: fsyncResult{hist: fsync, samples: 100, fsType: "ext4"},
		targets: []*targetResult{
			{name: "direct", levels: []loadResult{lvl(1, 5000, 200*time.Microsecond, 1), lvl(64, 20000, time.Millisecond, 1)}},
			{name: "nginx", levels: []loadResult{lvl(1, 3000, 300*time.Microsecond, 2), lvl(64, 10000, 2*time.Millisecond, 20)}},
			{name: "consentgate-strict", levels: []loadResult{lvl(1, 500, 2*time.Millisecond, 4), at(lvl(64, 7500, 8*time.Millisecond, 75), 80)},
				open: openOf(13 * time.Millisecond), openDirect: openOf(time.Millisecond),
				idle: &idleResult{conns: 1000, baseRSS: 40 << 20, idleRSS: 90 << 20}},
			{name: "consentgate-async", levels: []loadResult{lvl(1, 600, 2*time.Millisecond, 3), at(lvl(64, 4000, 9*time.Millisecond, 80), 130)},
				open: openOf(1500 * time.Microsecond), openDirect: openOf(time.Millisecond)},
		},
	}
}

func TestGoals(t *testing.T) {
	goals := goalsReport().goals()
	want := []struct{ prefix, met string }{
		{"consentgate-strict ≥ 0.35× nginx", "met"},                  // 0.75×
		{"consentgate-strict CPU per call ≤ 6×", "met"},              // 5×
		{"consentgate-strict p99 added", "**not met**"},              // +12 ms > 8 ms
		{"consentgate-strict RSS ≤ 120 MB under load", "met"},        // 80 MB
		{"consentgate-strict RSS ≤ 100 MB with 1000 idle", "met"},    // 90 MB
		{"consentgate-async ≥ 0.45× nginx", "**not met**"},           // 0.4×
		{"consentgate-async CPU per call ≤ 6×", "**not met**"},       // 10×
		{"consentgate-async p99 added", "met"},                       // +0.5 ms ≤ 5 ms
		{"consentgate-async RSS ≤ 120 MB under load", "**not met**"}, // 130 MB
		{"consentgate-async RSS ≤ 100 MB with 1000 idle", "not measured"},
	}
	if len(goals) != len(want) {
		t.Fatalf("%d goals, want %d: %+v", len(goals), len(want), goals)
	}
	for i, w := range want {
		if !strings.HasPrefix(goals[i].what, w.prefix) || goals[i].met != w.met {
			t.Errorf("goal %d = %q: %q (%s); want %q: %q", i, goals[i].what, goals[i].met, goals[i].measured, w.prefix, w.met)
		}
	}
	if !strings.HasPrefix(goals[0].measured, "0.75×") || !strings.HasPrefix(goals[1].measured, "5.0×") {
		t.Errorf("strict measured %q and %q, want 0.75× and 5.0×", goals[0].measured, goals[1].measured)
	}
}

func TestMarkdownTables(t *testing.T) {
	r := goalsReport()
	r.date = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	r.command, r.warmup, r.dur, r.openDur = "make bench", 2*time.Second, 10*time.Second, 10*time.Second
	md := r.markdown()
	for _, want := range []string{
		"## 2026-11-22 — `make bench`",
		"| consentgate-strict | 64 | 7500 | 8.00 ms |",
		// strict/nginx at 64: 0.75× req/s; CPU per 1k 75/75 vs 20/100 = 5×
		"| 64 | 0.75× | 5.00× |",
		// saturation: 500 → 7500 req/s still grows at the top level
		"| consentgate-strict | > 64 (still growing) | 7500 |",
		"p50 5.00 ms, p99 5.00 ms",
		"| consentgate-strict | 500 |",
		"+12.0 ms",
		"| consentgate-strict | 1000 | 40 MB | 90 MB |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "Preliminary") {
		t.Errorf("a run with no reason to be preliminary is marked so")
	}
}

func TestReplaceSection(t *testing.T) {
	const head = "# Benchmark results\n\nintro\n"
	const older = "## 2026-11-21 — older\n\nold text\n"
	const today = "## 2026-11-22 — `make bench`: x\n\n"
	cases := []struct{ name, doc, section, want string }{
		{"empty file", "", today + "new\n", today + "new\n"},
		{"append after other sections", head + "\n" + older, today + "new\n", head + "\n" + older + "\n" + today + "new\n"},
		{"append to a file without final newline", head + "\n" + strings.TrimSuffix(older, "\n"), today + "new\n",
			head + "\n" + older + "\n" + today + "new\n"},
		{"replace the same heading at the end", head + "\n" + today + "first run\n", today + "second run\n",
			head + "\n" + today + "second run\n"},
		{"replace in the middle, keep what follows", head + "\n" + today + "first\n\n" + older, today + "second\n",
			head + "\n" + today + "second\n\n" + older},
		{"a ### subheading belongs to the section", head + "\n" + today + "### sub\nx\n\n" + older, today + "new\n",
			head + "\n" + today + "new\n\n" + older},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := replaceSection(c.doc, c.section); got != c.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
}

func TestOptions(t *testing.T) {
	o, err := parseOptions(nil, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if o.command() != "make bench" || len(o.preliminary(0.3)) != 0 {
		t.Errorf("defaults: command %q, preliminary %v", o.command(), o.preliminary(0.3))
	}
	if why := o.preliminary(2.4); len(why) != 1 || !strings.Contains(why[0], "2.40") {
		t.Errorf("a busy machine is not marked: %v", why)
	}
	o, err = parseOptions([]string{"-duration", "3s", "-levels", "64,1", "-targets", "direct,nginx", "-keep"}, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if got := o.command(); got != "make bench BENCH_FLAGS='-duration 3s -levels 64,1 -targets direct,nginx'" {
		t.Errorf("command = %q", got)
	}
	if len(o.levels) != 2 || o.levels[0] != 1 || o.levels[1] != 64 {
		t.Errorf("levels = %v, want [1 64]", o.levels)
	}
	if why := o.preliminary(0.1); len(why) != 3 {
		t.Errorf("shortened run: preliminary reasons %v, want 3", why)
	}
	for _, bad := range [][]string{{"-targets", "haproxy"}, {"-levels", "0"}, {"-duration", "0s"}, {"extra"}} {
		if _, err := parseOptions(bad, &strings.Builder{}); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// Other processes' CPU is the machine's busy time less the benchmark's own.
func TestOthersCores(t *testing.T) {
	t0 := time.Now()
	s0 := cpuSnapshot{at: t0, machine: 100 * time.Second, ours: 40 * time.Second}
	cases := []struct {
		name          string
		machine, ours time.Duration
		want          float64
	}{
		{"only the benchmark ran", 118 * time.Second, 58 * time.Second, 0},
		{"a build took half a core", 123 * time.Second, 58 * time.Second, 0.5},
		{"jiffy rounding below zero is zero", 117 * time.Second, 58 * time.Second, 0},
	}
	for _, c := range cases {
		s1 := cpuSnapshot{at: t0.Add(10 * time.Second), machine: c.machine, ours: c.ours}
		if got := othersCores(s0, s1); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s: %v cores, want %v", c.name, got, c.want)
		}
	}
	// A real snapshot reads something.
	if s := takeCPUSnapshot(); s.machine <= 0 || s.ours <= 0 {
		t.Errorf("snapshot read nothing: %+v", s)
	}
}
