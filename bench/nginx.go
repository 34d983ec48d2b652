package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/consentgate/consentgate/internal/freeport"

	"github.com/consentgate/consentgate/certs"
)

// nginx is what many teams would put in front of a vendor instead: Debian's
// nginx as a TLS reverse proxy that verifies the app's client certificate,
// presents the company seal to the vendor (proxy_ssl_certificate), verifies
// the vendor's certificate and adds the API key and bearer token. It runs as
// a child process with a generated configuration in its own folder, never as
// the system service.

// nginxConfig is the generated nginx.conf. Access log on, as consentgate
// writes its canonical line per request.
const nginxConfig = `%[1]sworker_processes auto;
worker_rlimit_nofile 16384;
error_log %[2]s/error.log warn;
pid %[2]s/nginx.pid;
events {
    worker_connections 8192;
}
http {
    access_log %[2]s/access.log;
    client_body_temp_path %[2]s/client_body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;

    upstream kb {
        server %[3]s;
        keepalive 256;
    }
    server {
        listen 127.0.0.1:%[4]d ssl;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate %[5]s;
        ssl_certificate_key %[6]s;
        ssl_client_certificate %[7]s;
        ssl_verify_client on;
        ssl_verify_depth 2;

        location /v/kb/ {
            proxy_pass https://kb/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host %[8]s;
            proxy_set_header apikey "%[9]s";
            proxy_set_header Authorization "Bearer %[10]s";
            proxy_ssl_certificate %[11]s;
            proxy_ssl_certificate_key %[12]s;
            proxy_ssl_trusted_certificate %[13]s;
            proxy_ssl_verify on;
            proxy_ssl_verify_depth 2;
            proxy_ssl_name %[8]s;
            proxy_ssl_server_name on;
            proxy_ssl_session_reuse on;
            proxy_ssl_protocols TLSv1.2 TLSv1.3;
        }
    }
}
`

// startNginx writes the configuration under s.dir/nginx and runs
// bin -p prefix -c conf -g 'daemon off;'.
func startNginx(s *stack, bin string) (*child, *target, error) {
	dir := filepath.Join(s.dir, "nginx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	// As root, the master reads keys and opens logs; its workers drop to an
	// unprivileged user, as the Debian package's configuration does.
	userLine := ""
	if os.Geteuid() == 0 {
		userLine = "user nobody nogroup;\n"
		if _, err := user.Lookup("www-data"); err == nil {
			userLine = "user www-data;\n"
		}
	}
	port, err := freeport.Loopback()
	if err != nil {
		return nil, nil, err
	}
	gw := s.pki.Path(gatewayCert)
	seal := s.pki.Path(certs.DevKBCert)
	conf := fmt.Sprintf(nginxConfig, userLine, dir, strings.TrimPrefix(s.upstreamURL, "https://"), port,
		gw, certs.KeyFile(gw), s.pki.Path(certs.DevRootCert),
		kbHost, s.apiKey, s.token,
		seal, certs.KeyFile(seal), s.pki.Path(certs.DevSandboxRootCert))
	confFile := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		return nil, nil, err
	}
	test := exec.Command(bin, "-t", "-q", "-p", dir, "-c", confFile)
	if out, err := test.CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("nginx -t: %w: %s", err, out)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", confFile, "-g", "daemon off;")
	cmd.Stderr = os.Stderr
	c, err := startChild("nginx", cmd, "", 0)
	if err != nil {
		return nil, nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := waitListening(addr, 30*time.Second); err != nil {
		c.stop()
		return nil, nil, fmt.Errorf("nginx: %w (see %s/error.log)", err, dir)
	}
	h := http.Header{}
	t := &target{name: "nginx", url: "https://" + addr + "/v/kb" + kbPath, header: h, tls: s.appTLS,
		pid: c.pid(), check: checkFullBody}
	return c, t, nil
}

// findNginx is the nginx binary: on PATH, or where Debian installs it.
func findNginx() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx", nil
	}
	return "", fmt.Errorf("nginx not found: run deploy/scripts/install-nginx.sh, or leave nginx out with -targets")
}

// freePort is a loopback port nothing listens on right now (nginx cannot
// report the port it bound, so it is chosen here).
func waitListening(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %s", addr, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
