package main

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

// The report: the tables printed and written to bench/RESULTS.md, and the
// arithmetic behind them (saturation, ratios, goals).

// targetResult is everything measured of one target.
type targetResult struct {
	name   string
	levels []loadResult // closed loop, by increasing concurrency
	// open is the open-loop phase at half of this target's saturation rate,
	// openDirect the direct call at the same rate (consentgate targets only).
	open, openDirect *loadResult
	idle             *idleResult
}

type report struct {
	date        time.Time
	command     string
	machine     machine
	loadEnd     string
	others      float64  // cores other processes kept busy during the run, on average
	preliminary []string // why this run is not a full one; empty when it is
	warmup, dur time.Duration
	openDur     time.Duration
	consents    int
	fsync       fsyncResult
	targets     []*targetResult
}

// consentsText says whose consents the calls ran under, and so how often the
// policy memo could answer instead of OPA.
func (r *report) consentsText() string {
	if r.consents <= 1 {
		return "one end user's active consent, so the policy memo answers every call after the first"
	}
	return fmt.Sprintf("%d end users' active consents taken in turn, each call another end user's; the policy memo "+
		"answers them with the decision OPA made for the first end user in the same situation", r.consents)
}

// growth is how much more rps the next concurrency level must give for the
// target not to count as saturated: 5%.
const growth = 1.05

// saturation finds where rps stops growing: the first level whose next level
// gives less than 5% more requests/s. reached is false when rps still grew at
// the highest level measured. peak is the highest rps of any level.
func saturation(levels []loadResult) (conns int, peak float64, reached bool) {
	if len(levels) == 0 {
		return 0, 0, false
	}
	for _, l := range levels {
		peak = max(peak, l.rps())
	}
	for i := 0; i+1 < len(levels); i++ {
		if levels[i+1].rps() < growth*levels[i].rps() {
			return levels[i].conns, peak, true
		}
	}
	return levels[len(levels)-1].conns, peak, false
}

// ratio is a/b, NaN when b is zero (shown as "–").
func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

// goal is one target of issue 16, recorded, not asserted.
type goal struct {
	what     string
	measured string
	met      string // "met", "**not met**" or "not measured"
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

// Issue 16's goals on the 2-core development machine, where the load
// generator shares the cores: per mode, req/s and CPU per call against nginx
// at 64 connections, p99 added over the direct call at half saturation, and
// resident memory under load and with 1,000 idle app connections.
var (
	goalRatio    = map[string]float64{"strict": 0.35, "async": 0.45}
	goalCPU      = 6.0
	goalAdded    = map[string]time.Duration{"strict": 8 * time.Millisecond, "async": 5 * time.Millisecond}
	goalLoadRSS  = int64(120 << 20)
	goalIdleRSS  = int64(100 << 20)
	goalIdleConn = 1000
)

// addedP99 is how much p99 latency a target adds over the direct call at the
// same offered rate.
func addedP99(open, direct *loadResult) time.Duration {
	return open.hist.percentile(99) - direct.hist.percentile(99)
}

func (r *report) target(name string) *targetResult {
	for _, t := range r.targets {
		if t.name == name {
			return t
		}
	}
	return nil
}

func level(t *targetResult, conns int) *loadResult {
	if t == nil {
		return nil
	}
	for i := range t.levels {
		if t.levels[i].conns == conns {
			return &t.levels[i]
		}
	}
	return nil
}

func (r *report) goals() []goal {
	var out []goal
	nginx64 := level(r.target("nginx"), 64)
	for _, mode := range []string{"strict", "async"} {
		name := "consentgate-" + mode
		t, l := r.target(name), level(r.target(name), 64)
		rps := goal{what: fmt.Sprintf("%s ≥ %.2f× nginx req/s at 64 connections", name, goalRatio[mode]), met: "not measured"}
		cpu := goal{what: fmt.Sprintf("%s CPU per call ≤ %.0f× nginx's at 64 connections", name, goalCPU), met: "not measured"}
		rss := goal{what: fmt.Sprintf("%s RSS ≤ %s under load at 64 connections", name, fmtMB(goalLoadRSS)), met: "not measured"}
		if l != nil && nginx64 != nil {
			x := ratio(l.rps(), nginx64.rps())
			rps.measured, rps.met = fmt.Sprintf("%.2f× (%.0f vs %.0f req/s)", x, l.rps(), nginx64.rps()), verdict(x >= goalRatio[mode])
			c := ratio(l.cpuPer1k(), nginx64.cpuPer1k())
			cpu.measured, cpu.met = fmt.Sprintf("%.1f× (%.3f vs %.3f s per 1k)", c, l.cpuPer1k(), nginx64.cpuPer1k()), verdict(c <= goalCPU)
			rss.measured, rss.met = fmtMB(l.peakRSS), verdict(l.peakRSS <= goalLoadRSS)
		}
		added := goal{what: fmt.Sprintf("%s p99 added over direct at half saturation ≤ %s", name, fmtLatency(goalAdded[mode])), met: "not measured"}
		if t != nil && t.open != nil && t.openDirect != nil {
			add := addedP99(t.open, t.openDirect)
			added.measured = fmt.Sprintf("%s at %.0f req/s (p99 %s vs direct %s)", fmtSigned(add), t.open.rate,
				fmtLatency(t.open.hist.percentile(99)), fmtLatency(t.openDirect.hist.percentile(99)))
			added.met = verdict(add <= goalAdded[mode])
		}
		idle := goal{what: fmt.Sprintf("%s RSS ≤ %s with %d idle app connections", name, fmtMB(goalIdleRSS), goalIdleConn), met: "not measured"}
		if t != nil && t.idle != nil && t.idle.conns > 0 {
			idle.measured = fmt.Sprintf("%s with %d connections (%s before)", fmtMB(t.idle.idleRSS), t.idle.conns, fmtMB(t.idle.baseRSS))
			idle.met = verdict(t.idle.idleRSS <= goalIdleRSS)
			if t.idle.conns < goalIdleConn {
				idle.met = "not measured (fewer connections)"
			}
		}
		out = append(out, rps, cpu, added, rss, idle)
	}
	return out
}

// heading is the RESULTS.md section this program owns for a day: a rerun the
// same day replaces it.
func (r *report) heading() string {
	return "## " + r.date.Format(time.DateOnly) + " — `make bench`: direct, nginx and consentgate under load"
}

// markdown renders the whole section.
func (r *report) markdown() string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("%s\n\n", r.heading())
	if len(r.preliminary) > 0 {
		p("**Preliminary run**: %s. Rerun the full benchmark with `make bench` on an idle machine.\n\n", strings.Join(r.preliminary, "; "))
	}
	m := r.machine
	p("Machine: %d × %s, %s, %s, %s; %s", m.cpus, m.cpu, m.memory, m.os, m.kernel, m.goVer)
	if m.nginx != "" {
		p(", %s", m.nginx)
	}
	p(". Load average at start %s, at end %s (the benchmark's own processes count in the latter); other processes kept "+
		"%.2f of the %d cores busy on average during the run.\n\n", m.loadavg, r.loadEnd, r.others, m.cpus)
	p("Command:\n\n```sh\n%s\n```\n\n", r.command)
	p("Loopback only. The load generator (Go, HTTP/1.1, kept-alive connections, its own client certificates) and the "+
		"server under test share the %d cores; the upstream is a separate process answering a %d-byte KB identity "+
		"over mTLS (`GET %s`). Closed loop: each level has %s of warm-up (not counted), then %s measured. "+
		"CPU is the server under test's (nginx master and workers; the consentgate process; the upstream for direct), "+
		"from /proc, per 1,000 answered requests; RSS is its peak resident set. consentgate runs the shipped kb profile "+
		"and policy (kyc-onboarding under %s: decision, minimisation, API key, bearer token and company "+
		"seal attached, audit intent and outcome records); nginx verifies the app certificate, presents the company seal "+
		"and adds the same credentials, but decides, minimises and records nothing.\n\n",
		m.cpus, len(kycBody), kbPath, r.warmup, r.dur, r.consentsText())

	p("| target | conns | req/s | p50 | p99 | p99.9 | CPU s / 1k req | peak RSS | audit records / commit | errors |\n")
	p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, t := range r.targets {
		for _, l := range t.levels {
			p("| %s | %d | %.0f | %s | %s | %s | %.3f | %s | %s | %d |\n", t.name, l.conns, l.rps(),
				fmtLatency(l.hist.percentile(50)), fmtLatency(l.hist.percentile(99)), fmtLatency(l.hist.percentile(99.9)),
				l.cpuPer1k(), fmtMB(l.peakRSS), perCommit(l), l.errors)
		}
	}
	p("\n")
	r.writeRatios(p)
	r.writeSaturation(p)
	r.writeStream(p)

	p("### Physical limit\n\n")
	f := r.fsync
	p("fdatasync after a 4 KiB append in the audit log's folder (%s), %d samples: p50 %s, p99 %s, p99.9 %s.",
		f.fsType, f.samples, fmtLatency(f.hist.percentile(50)), fmtLatency(f.hist.percentile(99)), fmtLatency(f.hist.percentile(99.9)))
	if l := level(r.target("direct"), 1); l != nil {
		p(" The direct call on one connection: p50 %s, p99 %s.", fmtLatency(l.hist.percentile(50)), fmtLatency(l.hist.percentile(99)))
	}
	p(" Strict audit writes two records per call (intent, outcome), each durable before the call goes on, so a strict call " +
		"cannot be faster than the direct call plus two group commits.\n\n")

	if r.hasOpen() {
		p("### Open loop at half of saturation\n\n")
		p("Requests offered at a fixed rate for %s after %s of warm-up, latency counted from the scheduled send time; the direct "+
			"call measured at the same rate right after.\n\n", r.openDur, r.warmup)
		p("| target | offered req/s | p50 | p99 | p99.9 | direct p50 | direct p99 | p99 added | errors |\n")
		p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, t := range r.targets {
			if t.open == nil || t.openDirect == nil {
				continue
			}
			o, d := t.open, t.openDirect
			p("| %s | %.0f | %s | %s | %s | %s | %s | %s | %d |\n", t.name, o.rate,
				fmtLatency(o.hist.percentile(50)), fmtLatency(o.hist.percentile(99)), fmtLatency(o.hist.percentile(99.9)),
				fmtLatency(d.hist.percentile(50)), fmtLatency(d.hist.percentile(99)), fmtSigned(addedP99(o, d)), o.errors+d.errors)
		}
		p("\n")
	}
	if r.hasIdle() {
		p("### Idle app connections\n\n")
		p("Each connection made one call, then stayed open and idle; RSS read 2 s later (nginx: master and workers added up).\n\n")
		p("| target | idle connections | RSS before | RSS with them |\n| --- | ---: | ---: | ---: |\n")
		for _, t := range r.targets {
			if t.idle != nil {
				p("| %s | %d | %s | %s |\n", t.name, t.idle.conns, fmtMB(t.idle.baseRSS), fmtMB(t.idle.idleRSS))
			}
		}
		p("\n")
	}
	p("### Goals (issue 16, 2-core figures; recorded, not asserted)\n\n| goal | measured | |\n| --- | --- | --- |\n")
	for _, g := range r.goals() {
		p("| %s | %s | %s |\n", g.what, cmpOrDash(g.measured), g.met)
	}
	p("\n")
	return b.String()
}

func (r *report) writeRatios(p func(string, ...any)) {
	var peers [][2]string
	// go-proxy against nginx is the Go platform's own cost; consentgate against
	// go-proxy is what consentgate adds to it.
	if r.target("go-proxy") != nil && r.target("nginx") != nil {
		peers = append(peers, [2]string{"go-proxy", "nginx"})
	}
	for _, gw := range []string{"consentgate-strict", "consentgate-async", "consentgate-tokens", "consentgate-stream"} {
		for _, peer := range []string{"nginx", "go-proxy", "direct"} {
			if r.target(gw) != nil && r.target(peer) != nil {
				peers = append(peers, [2]string{gw, peer})
			}
		}
	}
	if len(peers) == 0 {
		return
	}
	p("### Ratios at equal concurrency\n\nreq/s ratio, then CPU per request ratio (lower is cheaper).\n\n| conns |")
	for _, pr := range peers {
		p(" %s / %s req/s | CPU |", strings.TrimPrefix(pr[0], "consentgate-"), pr[1])
	}
	p("\n| ---: |%s\n", strings.Repeat(" ---: | ---: |", len(peers)))
	for _, c := range r.concurrencies() {
		p("| %d |", c)
		for _, pr := range peers {
			a, b := level(r.target(pr[0]), c), level(r.target(pr[1]), c)
			if a == nil || b == nil {
				p(" – | – |")
				continue
			}
			p(" %s | %s |", fmtRatio(ratio(a.rps(), b.rps())), fmtRatio(ratio(a.cpuPer1k(), b.cpuPer1k())))
		}
		p("\n")
	}
	p("\n")
}

// writeStream says whether the audit stream kept up: its lag when each load
// level stopped, and how long the SIEM then took to have every record.
func (r *report) writeStream(p func(string, ...any)) {
	t := r.target("consentgate-stream")
	if t == nil {
		return
	}
	p("### Audit stream and archive\n\nconsentgate-stream is consentgate-strict with its audit log streamed (JSON lines over HTTPS) to a SIEM " +
		"on loopback, sealed into a segment every 32 MiB and each segment uploaded at once to an S3 store (versitygw, object lock) " +
		"on loopback. Lag: records committed and not yet acknowledged when the level's load stopped. Segments: sealed and uploaded " +
		"during the level. p99 against consentgate-strict's at the same connections is what streaming, sealing and uploading add.\n\n")
	p("| conns | req/s | audit records/s | lag at stop | delivered within | segments | p99 | strict p99 |\n" +
		"| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	strict := r.target("consentgate-strict")
	for _, l := range t.levels {
		sp := "–"
		if sl := level(strict, l.conns); sl != nil {
			sp = fmtLatency(sl.hist.percentile(99))
		}
		p("| %d | %.0f | %.0f | %.0f | %s | %.0f | %s | %s |\n", l.conns, l.rps(), float64(l.auditRecords)/l.duration.Seconds(), l.streamLag,
			l.streamDrain.Round(time.Millisecond), l.archived, fmtLatency(l.hist.percentile(99)), sp)
	}
	p("\n")
}

func (r *report) writeSaturation(p func(string, ...any)) {
	p("### Saturation\n\nWhere req/s stops growing by more than 5%% from one concurrency level to the next.\n\n")
	p("| target | saturates at conns | peak req/s |\n| --- | ---: | ---: |\n")
	for _, t := range r.targets {
		c, peak, reached := saturation(t.levels)
		at := fmt.Sprintf("%d", c)
		if !reached {
			at = fmt.Sprintf("> %d (still growing)", c)
		}
		p("| %s | %s | %.0f |\n", t.name, at, peak)
	}
	p("\n")
}

func (r *report) concurrencies() []int {
	var out []int
	for _, t := range r.targets {
		for _, l := range t.levels {
			if !slices.Contains(out, l.conns) {
				out = append(out, l.conns)
			}
		}
	}
	slices.Sort(out)
	return out
}

func (r *report) hasOpen() bool {
	return slices.ContainsFunc(r.targets, func(t *targetResult) bool { return t.open != nil })
}

func (r *report) hasIdle() bool {
	return slices.ContainsFunc(r.targets, func(t *targetResult) bool { return t.idle != nil })
}

func perCommit(l loadResult) string {
	if l.auditCommits == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f", float64(l.auditRecords)/float64(l.auditCommits))
}

// fmtLatency shows three significant figures in µs or ms.
func fmtLatency(d time.Duration) string {
	us := float64(d) / float64(time.Microsecond)
	switch {
	case us < 1000:
		return fmt.Sprintf("%.0f µs", us)
	case us < 10000:
		return fmt.Sprintf("%.2f ms", us/1000)
	case us < 100000:
		return fmt.Sprintf("%.1f ms", us/1000)
	default:
		return fmt.Sprintf("%.0f ms", us/1000)
	}
}

func fmtSigned(d time.Duration) string {
	if d < 0 {
		return "−" + fmtLatency(-d)
	}
	return "+" + fmtLatency(d)
}

func fmtMB(b int64) string {
	if b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f MB", float64(b)/(1<<20))
}

func fmtRatio(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "–"
	}
	return fmt.Sprintf("%.2f×", x)
}

func cmpOrDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// replaceSection puts section into doc: in place of the section that starts
// with the same heading line (up to the next "## " heading), or at the end.
// Everything else in doc is kept as it was.
func replaceSection(doc, section string) string {
	heading, _, _ := strings.Cut(section, "\n")
	section = strings.TrimRight(section, "\n") + "\n"
	lines := strings.SplitAfter(doc, "\n")
	start := slices.IndexFunc(lines, func(l string) bool { return strings.TrimRight(l, "\n") == heading })
	if start < 0 {
		if doc == "" {
			return section
		}
		return strings.TrimRight(doc, "\n") + "\n\n" + section
	}
	end := len(lines)
	for i := start + 1; i < len(lines); i++ {
		if strings.HasPrefix(lines[i], "## ") {
			end = i
			break
		}
	}
	rest := strings.Join(lines[end:], "")
	if rest != "" {
		section += "\n"
	}
	return strings.Join(lines[:start], "") + section + rest
}

// writeResults replaces or appends this run's section of file.
func writeResults(file string, r *report) error {
	raw, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.WriteFile(file, []byte(replaceSection(string(raw), r.markdown())), 0o644)
}
