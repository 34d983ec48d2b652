package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/configs"
)

// Vendor profiles reload without a restart: a vendor is added, changed and
// removed while the others keep their compiled state, a call in flight
// finishes under the profile it started with, and a reload that fails leaves
// every profile in service as it was.
func TestReloadVendorsLive(t *testing.T) {
	env := newTestEnv(t)
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	slow := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":"s-1","name":"Jan Novák"}`))
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	writeFile(t, filepath.Join(env.dir, "slow.crt"), certs.EncodeCertificates(slow.Certificate()), 0o644)
	profile := func(extra string) string {
		return "id: slow\nbase_url: " + slow.URL + "\nupstream:\n  ca_file: " + filepath.Join(env.dir, "slow.crt") +
			"\n  pin: [127.0.0.1]\n" + extra + "operations:\n  - id: slow.get\n    method: GET\n    path: /x\n"
	}
	mainFile := filepath.Join(env.dir, "main.yaml")
	listed, err := os.ReadFile(mainFile)
	if err != nil {
		t.Fatal(err)
	}
	list := regexp.MustCompile(`(?m)^vendors: \[(.*)\]$`)
	original := list.FindSubmatch(listed)[1]
	reload := func(extra ...string) (VendorChanges, error) {
		t.Helper()
		files := strings.Join(append([]string{string(original)}, extra...), ", ")
		writeFile(t, mainFile, list.ReplaceAll(listed, []byte("vendors: ["+files+"]")), 0o644)
		cfg, err := configs.Load(mainFile)
		if err != nil {
			t.Fatal(err)
		}
		return env.gw.ReloadVendors(context.Background(), cfg.Vendors)
	}
	get := func(path string) int {
		resp, _ := do(t, env.client, "GET", env.gatewayURL+path, "", nil)
		return resp.StatusCode
	}
	echo := env.gw.vendorsNow()["echo"]

	writeFile(t, filepath.Join(env.dir, "slow.yaml"), []byte(profile("")), 0o644)
	if ch, err := reload("slow.yaml"); err != nil || !slices.Equal(ch.Added, []string{"slow"}) || len(ch.Changed)+len(ch.Removed) != 0 {
		t.Fatalf("adding slow: %+v %v", ch, err)
	}
	if env.gw.vendorsNow()["echo"] != echo {
		t.Error("an unchanged profile was compiled again (its connections and quota lost)")
	}
	if ch, err := reload("slow.yaml"); err != nil || !ch.Empty() {
		t.Errorf("reloading the same files: %+v %v", ch, err)
	}
	// New content behind a path a profile names and only compiling reads
	// (echo's callback forward_ca_file) compiles that vendor again.
	caFile := filepath.Join(env.dir, "upstream.crt")
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, caFile, append(caPEM, certs.EncodeCertificates(env.ca.Cert)...), 0o644)
	if ch, err := reload("slow.yaml"); err != nil || !slices.Equal(ch.Changed, []string{"echo"}) {
		t.Errorf("after the callback's CA file changed: %+v %v", ch, err)
	}

	// A call in flight when its vendor is changed, then removed, finishes.
	done := make(chan int, 1)
	go func() {
		resp, _ := do(t, env.client, "GET", env.gatewayURL+"/v/slow/x", "", nil)
		done <- resp.StatusCode
	}()
	<-arrived
	writeFile(t, filepath.Join(env.dir, "slow.yaml"), []byte(profile("quota:\n  requests_per_second: 100\n  burst: 10\n")), 0o644)
	if ch, err := reload("slow.yaml"); err != nil || !slices.Equal(ch.Changed, []string{"slow"}) {
		t.Fatalf("changing slow: %+v %v", ch, err)
	}
	if ch, err := reload(); err != nil || !slices.Equal(ch.Removed, []string{"slow"}) {
		t.Fatalf("removing slow: %+v %v", ch, err)
	}
	close(release)
	if code := <-done; code != http.StatusOK {
		t.Errorf("the call in flight ended with %d", code)
	}
	if code := get("/v/slow/x"); code != http.StatusNotFound {
		t.Errorf("a removed vendor answered %d", code)
	}

	// A profile whose certificate cannot be loaded refuses the whole reload.
	writeFile(t, filepath.Join(env.dir, "slow.yaml"), []byte(profile("client_certificate:\n  cert: {secret: vendors/slow#cert}\n  key: {secret: vendors/slow#key}\n")), 0o644)
	before := env.gw.set.Load()
	if _, err := reload("slow.yaml"); err == nil || !strings.Contains(err.Error(), "vendor slow") {
		t.Fatalf("a profile that cannot be compiled: %v", err)
	}
	if env.gw.set.Load() != before {
		t.Error("a failed reload changed the profiles in service")
	}
	if code := get("/v/echo/things/1"); code != http.StatusOK {
		t.Errorf("echo after a failed reload: %d", code)
	}
}
