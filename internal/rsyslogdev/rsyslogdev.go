// Package rsyslogdev runs a real syslog receiver (Debian's rsyslog with its
// GnuTLS driver, which deploy/scripts/test-deps.sh installs) for the audit
// stream tests: RFC 5425 over TLS on 127.0.0.1, every message to a file.
package rsyslogdev

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/consentgate/consentgate/internal/freeport"

	"github.com/consentgate/consentgate/certs"
)

// Server is a running rsyslogd.
type Server struct {
	// Addr is 127.0.0.1:<port>, the same across Stop and Start.
	Addr string
	dir  string
	pool *x509.CertPool
	bin  string
	cmd  *exec.Cmd
	done chan error
}

// Start runs rsyslogd in dir (a fresh directory) until Stop. It fails, naming
// the packages to install, when rsyslogd or its TLS driver is missing.
func Start(dir string) (*Server, error) {
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		return nil, fmt.Errorf("rsyslog is not installed (apt-get install rsyslog rsyslog-gnutls; make test does): %w", err)
	}
	if m, _ := filepath.Glob("/usr/lib/*/rsyslog/lmnsd_gtls.so"); len(m) == 0 {
		return nil, errors.New("rsyslog's TLS driver is not installed (apt-get install rsyslog-gnutls; make test does)")
	}
	ca, err := certs.NewCA(pkix.Name{CommonName: "rsyslogdev CA"}, time.Hour)
	if err != nil {
		return nil, err
	}
	cert, key, err := ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		return nil, err
	}
	keyPEM, err := certs.EncodePrivateKey(key)
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, pool: x509.NewCertPool(), bin: bin}
	s.pool.AddCert(ca.Cert)
	for name, data := range map[string][]byte{"ca.pem": certs.EncodeCertificates(ca.Cert), "server.pem": certs.EncodeCertificates(cert), "server.key": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	port, err := freeport.Loopback()
	if err != nil {
		return nil, err
	}
	s.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	if err := os.WriteFile(filepath.Join(dir, "rsyslog.conf"), []byte(s.config(port)), 0o600); err != nil {
		return nil, err
	}
	return s, s.Start()
}

// config takes RFC 5425 over TLS (no client certificate asked) and writes each
// message's raw form, one per line.
func (s *Server) config(port int) string {
	return fmt.Sprintf(`global(workDirectory=%[1]q
  defaultNetstreamDriver="gtls"
  defaultNetstreamDriverCAFile=%[2]q
  defaultNetstreamDriverCertFile=%[3]q
  defaultNetstreamDriverKeyFile=%[4]q
  maxMessageSize="64k")
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imtcp" address="127.0.0.1" port="%[5]d")
template(name="raw" type="string" string="%%rawmsg%%\n")
action(type="omfile" file=%[6]q template="raw")
`, s.dir, filepath.Join(s.dir, "ca.pem"), filepath.Join(s.dir, "server.pem"), filepath.Join(s.dir, "server.key"), port,
		filepath.Join(s.dir, "received.log"))
}

// Start (again, after Stop) runs rsyslogd and waits until it listens.
func (s *Server) Start() error {
	s.cmd = exec.Command(s.bin, "-n", "-f", filepath.Join(s.dir, "rsyslog.conf"), "-i", filepath.Join(s.dir, "rsyslogd.pid"))
	s.cmd.Stdout, s.cmd.Stderr = nil, nil
	out, err := os.Create(filepath.Join(s.dir, "rsyslogd.out"))
	if err != nil {
		return err
	}
	s.cmd.Stdout, s.cmd.Stderr = out, out
	if err := s.cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("starting rsyslogd: %w", err)
	}
	out.Close()
	s.done = make(chan error, 1)
	go func() { s.done <- s.cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			b, _ := os.ReadFile(filepath.Join(s.dir, "rsyslogd.out"))
			return fmt.Errorf("rsyslogd exited: %v: %s", err, b)
		default:
		}
		if c, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Stop()
	return errors.New("rsyslogd did not listen within 10 s")
}

// Stop ends rsyslogd as a service stop does (SIGTERM: it writes out what it
// has read) and waits for it.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case <-s.done:
	case <-ctx.Done():
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// TLS is a client configuration that trusts the server's certificate.
func (s *Server) TLS() *tls.Config {
	return &tls.Config{RootCAs: s.pool, MinVersion: tls.VersionTLS12}
}

// Messages are the raw messages received so far, in order.
func (s *Server) Messages() ([]string, error) {
	f, err := os.Open(filepath.Join(s.dir, "received.log"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			out = append(out, line)
		}
	}
	return out, sc.Err()
}
