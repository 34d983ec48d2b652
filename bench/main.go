package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	if cfg := os.Getenv(upstreamRoleEnv); cfg != "" {
		if err := serveUpstream(cfg); err != nil {
			fmt.Fprintln(os.Stderr, "bench upstream:", err)
			os.Exit(1)
		}
		return
	}
	if cfg := os.Getenv(goProxyRoleEnv); cfg != "" {
		if err := serveGoProxy(cfg); err != nil {
			fmt.Fprintln(os.Stderr, "bench go-proxy:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the flags. The defaults are the full benchmark; shorter runs
// are marked preliminary in the report.
type options struct {
	targets      []string
	levels       []int
	warmup, dur  time.Duration
	openDur      time.Duration
	openWorkers  int
	idleConns    int
	fsyncSamples int
	consents     int
	dir          string
	keep         bool
	consentgate  string
	nginx        string
	results      string
	profile      string
	json         bool
	set          []string // flags given, for the command line shown in the report
}

var allTargets = []string{"direct", "nginx", "go-proxy", "consentgate-strict", "consentgate-async", "consentgate-tokens", "consentgate-stream"}

// disturbed is how many cores other processes may keep busy on average
// before a run counts as disturbed.
const disturbed = 0.25

const (
	defaultLevels = "1,16,64,256"
	defaultDur    = 10 * time.Second
	defaultWarmup = 2 * time.Second
)

func parseOptions(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	targets := fs.String("targets", strings.Join(allTargets, ","), "targets to measure, comma-separated: "+strings.Join(allTargets, ", "))
	levels := fs.String("levels", defaultLevels, "closed-loop concurrency levels (connections), comma-separated")
	fs.DurationVar(&o.dur, "duration", defaultDur, "measured time per concurrency level")
	fs.DurationVar(&o.warmup, "warmup", defaultWarmup, "warm-up before each measured phase, not counted")
	fs.DurationVar(&o.openDur, "open-duration", defaultDur, "measured time of each open-loop phase at half saturation (0 skips them)")
	fs.IntVar(&o.openWorkers, "open-workers", 256, "connections the open-loop phase may use")
	fs.IntVar(&o.idleConns, "idle-conns", 1000, "idle app connections opened to nginx and consentgate to measure their memory (0 skips)")
	fs.IntVar(&o.consents, "consents", 1, "end users' consents the consentgate calls take turns under: 1 repeats one input, "+
		"which the policy memo answers after the first call of each second; many (e.g. 20000) make nearly every call a new "+
		"question that OPA evaluates")
	fs.IntVar(&o.fsyncSamples, "fsync-samples", 2000, "fdatasync samples of the physical limit")
	fs.StringVar(&o.dir, "dir", "", "work folder, on the disk the audit log should use (default: a new folder under ./.cache)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work folder (configs, logs, audit logs) after the run")
	fs.StringVar(&o.consentgate, "consentgate", "", "consentgate binary (default: build ./cmd/consentgate)")
	fs.StringVar(&o.nginx, "nginx", "", "nginx binary (default: nginx on PATH or /usr/sbin/nginx)")
	fs.StringVar(&o.profile, "profile", "", "folder to write consentgate's CPU profiles to (consentgate-<mode>.pprof; see go tool pprof)")
	fs.StringVar(&o.results, "results", "bench/RESULTS.md", "file to write the report section to (empty: print only)")
	fs.BoolVar(&o.json, "json", false, "print, as the last line, one JSON object: each target at 64 connections and consentgate's ratios to nginx")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, t := range strings.Split(*targets, ",") {
		t = strings.TrimSpace(t)
		if !slices.Contains(allTargets, t) {
			return nil, fmt.Errorf("-targets: unknown target %q (known: %s)", t, strings.Join(allTargets, ", "))
		}
		o.targets = append(o.targets, t)
	}
	for _, l := range strings.Split(*levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(l))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-levels: %q is not a positive number", l)
		}
		o.levels = append(o.levels, n)
	}
	slices.Sort(o.levels)
	o.levels = slices.Compact(o.levels)
	if o.consents < 1 {
		return nil, errors.New("-consents must be at least 1")
	}
	if o.dur <= 0 || o.warmup < 0 || o.openDur < 0 {
		return nil, errors.New("-duration must be positive, -warmup and -open-duration not negative")
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "dir", "keep", "consentgate", "nginx", "results", "profile", "json":
		default:
			o.set = append(o.set, "-"+f.Name+" "+f.Value.String())
		}
	})
	return o, nil
}

// command is how to run this benchmark again as it was run.
func (o *options) command() string {
	if len(o.set) == 0 {
		return "make bench"
	}
	return "make bench BENCH_FLAGS='" + strings.Join(o.set, " ") + "'"
}

// preliminary lists why a run is not the full benchmark on an idle machine.
func (o *options) preliminary(load float64) []string {
	var why []string
	if load >= 1.5 {
		why = append(why, fmt.Sprintf("the machine was busy (1-minute load average %.2f at start)", load))
	}
	if o.dur < defaultDur || o.warmup < defaultWarmup {
		why = append(why, fmt.Sprintf("shortened phases (%s measured, %s warm-up)", o.dur, o.warmup))
	}
	if strings.Join(intStrings(o.levels), ",") != defaultLevels {
		why = append(why, "concurrency levels "+strings.Join(intStrings(o.levels), ", "))
	}
	if len(o.targets) < len(allTargets) {
		why = append(why, "targets "+strings.Join(o.targets, ", ")+" only")
	}
	return why
}

func intStrings(v []int) []string {
	out := make([]string, len(v))
	for i, n := range v {
		out[i] = strconv.Itoa(n)
	}
	return out
}

func run(args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	start := takeCPUSnapshot()
	r, err := benchmark(o, stderr)
	if err != nil {
		return err
	}
	// After benchmark returns, every child has been stopped and waited for,
	// so its CPU is in getrusage(RUSAGE_CHILDREN).
	r.others = othersCores(start, takeCPUSnapshot())
	if r.others > disturbed {
		r.preliminary = append(r.preliminary, fmt.Sprintf("other processes kept %.2f cores busy on average during the run", r.others))
	}
	md := r.markdown()
	fmt.Fprint(stdout, md)
	if o.results != "" {
		if err := writeResults(o.results, r); err != nil {
			return fmt.Errorf("writing %s: %w", o.results, err)
		}
		fmt.Fprintf(stderr, "bench: section %q written to %s\n", r.heading(), o.results)
	}
	if o.json {
		fmt.Fprintln(stdout, r.summary().line())
	}
	return nil
}

// benchmark runs everything o asks for and returns the report.
func benchmark(o *options, log io.Writer) (*report, error) {
	logf := func(format string, a ...any) { fmt.Fprintf(log, "bench: "+format+"\n", a...) }
	needNginx := slices.Contains(o.targets, "nginx")
	if needNginx && o.nginx == "" {
		var err error
		if o.nginx, err = findNginx(); err != nil {
			return nil, err
		}
	}
	r := &report{date: time.Now(), command: o.command(), warmup: o.warmup, dur: o.dur, openDur: o.openDur, consents: o.consents}
	r.machine = readMachine(o.nginx)
	r.preliminary = o.preliminary(load1())

	// The work folder holds the audit logs, so it must be on the disk being
	// measured: under ./.cache, not in a temp folder that may be tmpfs.
	created := o.dir == ""
	if created {
		if err := os.MkdirAll(".cache", 0o755); err != nil {
			return nil, err
		}
		var err error
		if o.dir, err = os.MkdirTemp(".cache", "bench-"); err != nil {
			return nil, err
		}
	}
	var err error
	if o.dir, err = filepath.Abs(o.dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return nil, err
	}
	if created && !o.keep {
		defer os.RemoveAll(o.dir)
	} else {
		defer logf("work folder kept: %s", o.dir)
	}

	logf("fdatasync of 4 KiB appends in %s", o.dir)
	if r.fsync, err = measureFsync(o.dir, o.fsyncSamples); err != nil {
		return nil, err
	}
	s, err := newStack(o.dir)
	if err != nil {
		return nil, err
	}
	defer s.close()
	direct := s.directTarget()
	if err := probe(direct); err != nil {
		return nil, err
	}
	needGateway := slices.ContainsFunc(o.targets, func(t string) bool { return strings.HasPrefix(t, "consentgate-") })
	if needGateway && o.consentgate == "" {
		logf("building ./cmd/consentgate")
		if o.consentgate, err = buildConsentgate(o.dir); err != nil {
			return nil, err
		}
	}
	for _, name := range o.targets {
		var tr *targetResult
		switch name {
		case "direct":
			tr = measure(direct, o, logf)
		case "nginx", "go-proxy":
			start := func(s *stack) (*child, *target, error) { return startNginx(s, o.nginx) }
			if name == "go-proxy" {
				start = startGoProxy
			}
			c, t, err := start(s)
			if err != nil {
				return nil, err
			}
			tr, err = measureServer(t, nil, o, logf)
			if serr := c.stop(); err == nil && serr != nil {
				logf("stopping %s: %v", name, serr)
			}
			if err != nil {
				return nil, err
			}
		default:
			mode := strings.TrimPrefix(name, "consentgate-")
			g, err := startGateway(s, o.consentgate, mode, o.profile)
			if err != nil {
				return nil, err
			}
			var t *target
			ids, err := g.grantConsents(s, o.consents)
			if err == nil {
				t = g.target(s, ids)
				tr, err = measureServer(t, direct, o, logf)
			}
			if serr := g.stop(); serr != nil {
				logf("stopping %s: %v", name, serr)
			}
			if err != nil {
				return nil, fmt.Errorf("%w (log: %s)", err, filepath.Join(g.dir, "consentgate.log"))
			}
		}
		r.targets = append(r.targets, tr)
	}
	r.loadEnd = loadAverage()
	return r, nil
}

// measure runs the closed-loop levels of t.
func measure(t *target, o *options, logf func(string, ...any)) *targetResult {
	tr := &targetResult{name: t.name}
	for _, c := range o.levels {
		before := archivedSoFar(t)
		l := closedLoop(t, c, o.warmup, o.dur)
		if t.streamLag != nil {
			l.streamLag, l.streamDrain = drainStream(t)
			logf("%-19s %4d conns  audit stream: lag %.0f records when the load stopped, all delivered %s later",
				t.name, c, l.streamLag, l.streamDrain.Round(time.Millisecond))
		}
		if t.archived != nil {
			l.archived = archivedSoFar(t) - before
			logf("%-19s %4d conns  %.0f audit segments sealed and uploaded during the level", t.name, c, l.archived)
		}
		logf("%-19s %4d conns  %8.0f req/s  p50 %-9s p99 %-9s p99.9 %-9s cpu %.3f s/1k  rss %s  errors %d %s",
			t.name, c, l.rps(), fmtLatency(l.hist.percentile(50)), fmtLatency(l.hist.percentile(99)),
			fmtLatency(l.hist.percentile(99.9)), l.cpuPer1k(), fmtMB(l.peakRSS), l.errors, l.firstErr)
		tr.levels = append(tr.levels, l)
	}
	return tr
}

// archivedSoFar is the target's count of archived segments (0 without one).
func archivedSoFar(t *target) float64 {
	if t.archived == nil {
		return 0
	}
	n, _ := t.archived()
	return n
}

// drainStream reads the stream's lag as the load stops, then waits (at most a
// minute) until the SIEM has every record.
func drainStream(t *target) (lag float64, drain time.Duration) {
	lag, _ = t.streamLag()
	start := time.Now()
	for time.Since(start) < time.Minute {
		if l, err := t.streamLag(); err == nil && l == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return lag, time.Since(start)
}

// measureServer is measure for a proxy: first the probe and the idle
// connections on the fresh process, then the load levels, then, when direct
// is given (consentgate), the open-loop phase at half of the saturation rate
// and the direct call at the same rate.
func measureServer(t, direct *target, o *options, logf func(string, ...any)) (*targetResult, error) {
	if err := probe(t); err != nil {
		return nil, err
	}
	var idle *idleResult
	if o.idleConns > 0 {
		i := idleConnections(t, o.idleConns)
		logf("%-19s %d idle connections: RSS %s -> %s %s", t.name, i.conns, fmtMB(i.baseRSS), fmtMB(i.idleRSS), i.firstErr)
		idle = &i
	}
	tr := measure(t, o, logf)
	tr.idle = idle
	if direct != nil && o.openDur > 0 {
		_, peak, _ := saturation(tr.levels)
		rate := peak / 2
		if rate < 1 {
			return nil, fmt.Errorf("%s: no saturation rate to halve (%.0f req/s)", t.name, peak)
		}
		open := openLoop(t, rate, o.openWorkers, o.warmup, o.openDur)
		d := openLoop(direct, rate, o.openWorkers, o.warmup, o.openDur)
		logf("%-19s open loop %.0f req/s: p99 %s, direct p99 %s, added %s, errors %d+%d %s%s", t.name, rate,
			fmtLatency(open.hist.percentile(99)), fmtLatency(d.hist.percentile(99)), fmtSigned(addedP99(&open, &d)),
			open.errors, d.errors, open.firstErr, d.firstErr)
		tr.open, tr.openDirect = &open, &d
	}
	return tr, nil
}
