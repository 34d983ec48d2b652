package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The servers under test are child processes, measured from /proc: CPU as
// utime+stime of the process and its descendants (nginx's master and
// workers), memory as the sum of their resident sets.

const terminate = syscall.SIGTERM

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat. It
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// processTree is pid and its descendants, read from /proc/<pid>/task/*/children.
func processTree(pid int) []int {
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", out[i]))
		for _, t := range tasks {
			raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", out[i], t.Name()))
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(raw)) {
				if n, err := strconv.Atoi(f); err == nil {
					out = append(out, n)
				}
			}
		}
	}
	return out
}

// cpuTime is the user plus system CPU a process has used so far.
func cpuTime(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields are counted after it.
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// rssBytes is a process's resident set (VmRSS).
func rssBytes(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// treeUsage is the CPU and resident memory of a process tree right now.
// Processes that vanish between listing and reading are skipped.
func treeUsage(pid int) (cpu time.Duration, rss int64) {
	for _, p := range processTree(pid) {
		if c, err := cpuTime(p); err == nil {
			cpu += c
		}
		if r, err := rssBytes(p); err == nil {
			rss += r
		}
	}
	return cpu, rss
}

// rssSampler records the largest resident set of a process tree while it runs.
type rssSampler struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	peak int64
}

func sampleRSS(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			_, rss := treeUsage(pid)
			s.mu.Lock()
			s.peak = max(s.peak, rss)
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// finish stops sampling and returns the peak.
func (s *rssSampler) finish() int64 {
	close(s.stop)
	<-s.done
	return s.peak
}

// child is a server process the benchmark started and stops.
type child struct {
	name string
	cmd  *exec.Cmd
	addr string // what its ready line said, if it has one
}

// startChild starts cmd and, when ready is not empty, waits for a stdout line
// starting with ready; the rest of that line is returned as addr.
func startChild(name string, cmd *exec.Cmd, ready string, timeout time.Duration) (*child, error) {
	c := &child{name: name, cmd: cmd}
	var lines chan string
	if ready != "" {
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		lines = make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if rest, ok := strings.CutPrefix(sc.Text(), ready); ok {
					lines <- strings.TrimSpace(rest)
					break
				}
			}
			close(lines)
			io.Copy(io.Discard, out)
		}()
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	if ready == "" {
		return c, nil
	}
	select {
	case line, ok := <-lines:
		if !ok {
			c.stop()
			return nil, fmt.Errorf("%s exited before it was ready", name)
		}
		c.addr = line
		return c, nil
	case <-time.After(timeout):
		c.stop()
		return nil, fmt.Errorf("%s was not ready within %s", name, timeout)
	}
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop ends the child with SIGTERM (a graceful stop that lets consentgate
// close its audit log), then SIGKILL after 10 s.
func (c *child) stop() error {
	if c.cmd.Process == nil {
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	c.cmd.Process.Signal(terminate)
	select {
	case err := <-done:
		var exit *exec.ExitError
		if errors.As(err, &exit) && !exit.Exited() {
			return nil // ended by the signal, as asked
		}
		return err
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s did not stop on SIGTERM; killed", c.name)
	}
}
