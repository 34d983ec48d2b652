package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/freeport"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/internal/logsink"
)

// freeAddr is a loopback address nothing listens on right now, kept across
// restarts of a child gateway. It comes from below the ephemeral range (see
// freeport.Loopback): the clients' own connections take local ports from that
// range, and one that took the port while the child was down would keep the
// restarted child from binding it.
func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := freeport.Loopback()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// startProcess runs `consentgate dev` as a child process, with extra flags, and
// waits for its ready line.
func startProcess(t *testing.T, dir, gw, fw, admin string, extra ...string) *exec.Cmd {
	t.Helper()
	policies, err := devPolicies(filepath.Join(dir, "no-such-dir"), false, dir) // a copy of the shipped ones
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"dev", "--dir", dir, "--gateway", gw, "--forward", fw, "--admin", admin, "--callbacks", "127.0.0.1:0",
		"--policies", policies, "--log-level", "error"}, extra...)
	return startCommand(t, args...)
}

// startCommand runs this binary as `consentgate args...` and waits for its ready line.
func startCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "CONSENTGATE_RUN_MAIN=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// The last of stderr, to say why a start failed.
	stderr := &logsink.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A child the test forgot would hold its ports into the next test.
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ok := sc.Scan() && strings.HasPrefix(sc.Text(), "ready ")
		ready <- ok
		io.Copy(io.Discard, stdout)
	}()
	select {
	case ok := <-ready:
		if !ok {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the gateway did not start:\n%s", tail(stderr.String()))
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the gateway did not become ready in 60 s:\n%s", tail(stderr.String()))
	}
	return cmd
}

func tail(s string) string { return s[max(0, len(s)-4000):] }

// processClient is the dev app's client of a gateway process whose dev folder is dir.
func processClient(t *testing.T, dir string) *http.Client {
	t.Helper()
	return processClientAs(t, dir, "onboarding-web")
}

// processClientAs is the client of one of the dev folder's certificates
// (onboarding-web, auditor, secops).
func processClientAs(t *testing.T, dir, name string) *http.Client {
	t.Helper()
	pki := &certs.DevPKI{Dir: filepath.Join(dir, "pki")}
	pair, err := tls.LoadX509KeyPair(pki.Path(certs.AppCert(name)), certs.KeyFile(pki.Path(certs.AppCert(name))))
	if err != nil {
		t.Fatal(err)
	}
	pool, err := certs.LoadPool(pki.Path(certs.DevRootCert))
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}}}
}

// The gateway is killed with SIGKILL at random moments under load: 10 times in
// `make test`, 20 in `make reliability` (CONSENTGATE_CRASH_ROUNDS overrides).
// Afterwards the chain verifies, and every call the client saw answered has its
// outcome record: strict mode writes it before the answer.
func TestReliabilityCrashLoop(t *testing.T) {
	rounds := reliabilityCount(t, "CONSENTGATE_CRASH_ROUNDS", 10, 20)
	dir := t.TempDir()
	gw, fw, admin := freeAddr(t), freeAddr(t), freeAddr(t)

	var mu sync.Mutex
	answered := map[string]bool{}
	var client *http.Client
	for round := 0; round < rounds; round++ {
		cmd := startProcess(t, dir, gw, fw, admin)
		if client == nil {
			client = processClient(t, dir)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+gw+"/v/kb/v1/clients/me/identity", nil)
					req.Header.Set("X-Consent-Id", "dev-kyc")
					req.Header.Set("X-Purpose", "kyc-onboarding")
					resp, err := client.Do(req)
					if err != nil {
						continue
					}
					_, rerr := io.ReadAll(resp.Body)
					resp.Body.Close()
					if rerr == nil && resp.StatusCode == http.StatusOK {
						mu.Lock()
						answered[resp.Header.Get("X-Request-Id")] = true
						mu.Unlock()
					}
				}
			}()
		}
		// Let at least a few calls through in every round (a busy machine starts
		// the process slowly), then kill it at a random moment.
		count := func() int { mu.Lock(); defer mu.Unlock(); return len(answered) }
		roundStart := count()
		for deadline := time.Now().Add(20 * time.Second); count() < roundStart+5 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(time.Duration(rand.IntN(400)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		cancel()
		wg.Wait()
		client.CloseIdleConnections()
	}
	if len(answered) < 50 {
		t.Fatalf("only %d calls were answered across the rounds: the load did not run", len(answered))
	}

	raw, err := os.ReadFile(filepath.Join(dir, "audit.pub"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := audit.ParsePublicKeyPEM(raw)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.VerifyDB(filepath.Join(dir, "audit.db"), pub)
	if err != nil {
		t.Fatalf("after %d SIGKILLs the chain does not verify: %v", rounds, err)
	}
	outcomes := map[string]bool{}
	pr := audit.ExportReader(context.Background(), []string{filepath.Join(dir, "audit.db")}, audit.Filter{})
	defer pr.Close()
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r audit.Record
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Kind == audit.KindOutcome {
			outcomes[r.RequestID] = true
		}
	}
	var missing []string
	for id := range answered {
		if !outcomes[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d answered calls have no outcome record, e.g. %s", len(missing), len(answered), missing[0])
	}
	t.Logf("%d SIGKILLs: %d answered calls, %d records, %d incomplete (killed in flight), all outcomes present", rounds, len(answered), rep.Records, len(rep.Incomplete))
}
