// Package tinyproxy runs a real HTTP CONNECT proxy (Debian's tinyproxy, which
// deploy/scripts/test-deps.sh installs) for tests of egress through a
// company's outbound proxy: Basic credentials, a fixed outgoing address.
package tinyproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/consentgate/consentgate/internal/freeport"
)

// Options are the proxy's settings; the zero value asks for no credentials
// and connects out from any address.
type Options struct {
	// User and Password, when set, are required as Proxy-Authorization Basic.
	User, Password string
	// Bind is the local address the proxy connects to upstreams from.
	Bind string
}

// Proxy is a running tinyproxy on 127.0.0.1.
type Proxy struct {
	// URL is http://127.0.0.1:<port>.
	URL  string
	dir  string
	cmd  *exec.Cmd
	done chan error
}

// Start runs tinyproxy in dir with o until Close. It fails, naming the
// package to install, when tinyproxy is not on PATH.
func Start(dir string, o Options) (*Proxy, error) {
	bin, err := exec.LookPath("tinyproxy")
	if err != nil {
		return nil, fmt.Errorf("tinyproxy is not installed (apt-get install tinyproxy; make test does): %w", err)
	}
	// tinyproxy cannot be told to pick a port; a freed one is taken again at
	// once, and another is tried if something else took it meanwhile.
	for attempt := 0; ; attempt++ {
		p, err := start(bin, dir, o)
		if err == nil || attempt == 2 {
			return p, err
		}
	}
}

func start(bin, dir string, o Options) (*Proxy, error) {
	port, err := freeport.Loopback()
	if err != nil {
		return nil, err
	}
	conf := []string{
		fmt.Sprintf("Port %d", port), "Listen 127.0.0.1", "Allow 127.0.0.1", "Timeout 30", "MaxClients 64",
		"LogLevel Connect", "DisableViaHeader Yes",
		fmt.Sprintf("LogFile %q", filepath.Join(dir, "tinyproxy.log")),
	}
	if o.User != "" {
		conf = append(conf, fmt.Sprintf("BasicAuth %s %s", o.User, o.Password))
	}
	if o.Bind != "" {
		conf = append(conf, "Bind "+o.Bind)
	}
	file := filepath.Join(dir, "tinyproxy.conf")
	if err := os.WriteFile(file, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	p := &Proxy{URL: fmt.Sprintf("http://127.0.0.1:%d", port), dir: dir, cmd: exec.Command(bin, "-d", "-c", file), done: make(chan error, 1)}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting tinyproxy: %w", err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			return nil, fmt.Errorf("tinyproxy exited: %v; its log: %s", err, p.Log())
		default:
		}
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			c.Close()
			return p, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Close()
	return nil, errors.New("tinyproxy did not listen within 10 s")
}

// Log is what the proxy logged so far: its tunnels and refusals.
func (p *Proxy) Log() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "tinyproxy.log"))
	return string(b)
}

// Close stops the proxy and waits for it.
func (p *Proxy) Close() {
	if p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	select {
	case <-p.done:
	case <-ctx.Done():
	}
}
