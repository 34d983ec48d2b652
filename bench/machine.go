package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// machine is what a reader needs to compare a run with theirs.
type machine struct {
	cpus    int
	cpu     string // model name
	kernel  string
	os      string
	memory  string
	goVer   string
	nginx   string
	loadavg string // 1, 5 and 15 minute load averages
}

func readMachine(nginxBin string) machine {
	m := machine{cpus: runtime.NumCPU(), goVer: runtime.Version(), cpu: "unknown", os: "unknown", memory: "unknown"}
	m.cpu = firstValue("/proc/cpuinfo", "model name", m.cpu)
	m.memory = firstValue("/proc/meminfo", "MemTotal", m.memory)
	if kb, err := strconv.ParseInt(strings.TrimSuffix(m.memory, " kB"), 10, 64); err == nil {
		m.memory = fmt.Sprintf("%d GiB", (kb+1<<19)>>20)
	}
	if raw, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = "Linux " + strings.TrimSpace(string(raw))
	}
	if raw, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				m.os = strings.Trim(v, `"`)
			}
		}
	}
	m.loadavg = loadAverage()
	if nginxBin != "" {
		// nginx -v writes "nginx version: nginx/1.22.1" to stderr.
		out, _ := exec.Command(nginxBin, "-v").CombinedOutput()
		m.nginx = strings.TrimPrefix(strings.TrimSpace(string(out)), "nginx version: ")
	}
	return m
}

// loadAverage is the 1, 5 and 15 minute load averages, as uptime shows them.
func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// load1 is the 1-minute load average, or -1.
func load1() float64 {
	f := strings.Fields(loadAverage())
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// firstValue is the value of the first "key: value" line of a /proc file.
func firstValue(file, key, def string) string {
	raw, err := os.ReadFile(file)
	if err != nil {
		return def
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return def
}

// cpuSnapshot is the CPU the whole machine and this benchmark (this process
// and its waited-for children) had used at one moment. Between two snapshots
// the difference is what other processes used: a run they disturbed is
// marked preliminary.
type cpuSnapshot struct {
	at      time.Time
	machine time.Duration // busy time of all CPUs, from /proc/stat
	ours    time.Duration // getrusage of self and children
}

func takeCPUSnapshot() cpuSnapshot {
	s := cpuSnapshot{at: time.Now()}
	if raw, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(raw), "\n")
		f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
		for i, v := range f {
			// idle (4) and iowait (5) are not busy; guest time is already in user.
			if i == 0 || i == 4 || i == 5 || i > 8 {
				continue
			}
			n, _ := strconv.ParseInt(v, 10, 64)
			s.machine += time.Duration(n) * time.Second / clockTicks
		}
	}
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			s.ours += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return s
}

// othersCores is how many cores other processes kept busy on average since s0.
func othersCores(s0, s1 cpuSnapshot) float64 {
	wall := s1.at.Sub(s0.at)
	if wall <= 0 {
		return 0
	}
	others := (s1.machine - s0.machine) - (s1.ours - s0.ours)
	return max(0, others.Seconds()/wall.Seconds())
}
