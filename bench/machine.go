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
