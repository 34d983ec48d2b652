package proxy

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/identity"
	"github.com/consentgate/consentgate/refusal"
)

// nested is a JSON object nested depth deep: {"a":{"a":...{"a":1}...}}.
func nested(depth int) string {
	return strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
}

// tripwire is a request body that must not be read.
type tripwire struct{ read bool }

func (w *tripwire) Read([]byte) (int, error) { w.read = true; return 0, io.ErrUnexpectedEOF }

// Issue 14 finding 1: a call that can be refused without its body (here the
// policy denies it) costs no reading and no parsing of the body. Before, an
// app with no consent still paid 0.6 s of CPU per deep body before its 403.
func TestRefusedCallReadsNoBody(t *testing.T) {
	env := newTestEnv(t)
	for name, header := range map[string]map[string]string{
		"policy denies":     {"X-Consent-Id": "deny-me"},
		"malformed consent": {"X-Consent-Id": "../x"},
		"too large":         {"Content-Length": "999999999"},
	} {
		body := &tripwire{}
		req := httptest.NewRequestWithContext(identity.With(t.Context(), identity.Identity{Name: "web", Role: identity.RoleApp}),
			"POST", "/v/echo/verify", body)
		req.Header.Set("Content-Type", "application/json")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		req.ContentLength = -1
		if cl := header["Content-Length"]; cl != "" {
			fmt.Sscan(cl, &req.ContentLength)
		}
		w := httptest.NewRecorder()
		env.gw.ServeHTTP(w, req)
		if w.Code/100 != 4 {
			t.Errorf("%s: status %d %s", name, w.Code, w.Body)
		}
		if body.read {
			t.Errorf("%s: the body was read before the call was refused", name)
		}
	}
}

// A body nested past the operation's limits is refused before anything walks
// it; so are too many keys, too long a path, too long an array.
func TestBodyShapeLimits(t *testing.T) {
	env := newTestEnv(t)
	longKey := strings.Repeat("k", 600)
	tests := []struct{ name, body string }{
		{"10,000 deep", nested(10000)},
		{"33 deep", nested(33)},
		{"too many keys", "{" + strings.TrimSuffix(strings.Repeat(`"k":1,`, 10001), ",") + "}"},
		{"path too long", `{"` + longKey + `":1}`},
		{"array too long", `{"tags":[` + strings.TrimSuffix(strings.Repeat("1,", 10001), ",") + `]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := env.seen.count()
			start := time.Now()
			resp, body := do(t, env.client, "POST", env.gatewayURL+"/v/echo/verify", tt.body, map[string]string{"Content-Type": "application/json"})
			var p problem
			json.Unmarshal([]byte(body), &p)
			if resp.StatusCode != http.StatusBadRequest || p.Type != refusal.TooComplex.Type() {
				t.Errorf("status %d %s", resp.StatusCode, body)
			}
			if env.seen.count() != before {
				t.Error("the vendor was called")
			}
			t.Logf("refused in %s", time.Since(start))
		})
	}
	// At the limit, accepted.
	if resp, body := do(t, env.client, "POST", env.gatewayURL+"/v/echo/verify", `{"meta":{"tags":[1,2,3]},"iin":"1"}`+strings.Repeat(" ", 10), map[string]string{"Content-Type": "application/json"}); resp.StatusCode != http.StatusOK {
		t.Errorf("a plain body: %d %s", resp.StatusCode, body)
	}
}

func TestCheckShape(t *testing.T) {
	l := shapeLimits{depth: 3, keys: 4, pathBytes: 10, arrayLen: 3}
	tests := []struct {
		body string
		ok   bool
	}{
		{`{"a":{"b":{}}}`, true},
		{`{"a":{"b":{"c":{}}}}`, false},
		{`{"a":[[1]]}`, true},
		{`{"a":[[[1]]]}`, false},
		{`{"a":1,"b":2,"c":3,"d":4}`, true},
		{`{"a":1,"b":2,"c":3,"d":4,"e":5}`, false},
		{`{"a":[1,2,3]}`, true},
		{`{"a":[1,2,3,4]}`, false},
		{`{"abcd":{"ef":1}}`, true}, // path "abcd.ef" (counted as 4+2+2)
		{`{"abcd":{"efghi":1}}`, false},
		{`{"a\"{{{{":"}}}]]]{{{"}`, true}, // brackets in strings do not count
		{`{"a":"[[[[[[","b":"\\\\"}`, true},
	}
	for _, tt := range tests {
		if err := checkShape([]byte(tt.body), l); (err == nil) != tt.ok {
			t.Errorf("%s: %v, want ok=%v", tt.body, err, tt.ok)
		}
	}
}

// Linear: reading a body at the limits costs about the same per byte at 60 KB
// as at 1.2 MB. The ratio of ns/op between the two sizes is printed; it stays
// near their size ratio (20).
func BenchmarkReadRequestBody(b *testing.B) {
	v, op := testOperation(b, "json", "", configs.Fields{Request: map[string]string{"photo": "biometric"}})
	op.cfg.MaxRequestBytes = 8 << 20
	// The default limits refuse a large deep body outright (10,000 keys): lift
	// them to measure the walk itself at the deepest nesting allowed.
	op.limits = shapeLimits{depth: 32, keys: 1 << 20, pathBytes: 512, arrayLen: 1 << 20}
	for _, size := range []int{60 << 10, 1200 << 10} {
		for _, shape := range []string{"deep", "wide"} {
			body := shapedBody(shape, size)
			b.Run(fmt.Sprintf("%s/%dKB", shape, size>>10), func(b *testing.B) {
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					req, err := readRequest(newAppRequest("POST", "/x", body, map[string]string{"Content-Type": "application/json"}), v, op)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := req.minimize(nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// shapedBody is a JSON object of about size bytes: deep, an array of objects
// nested to the default depth limit; wide, one long string (a photo).
func shapedBody(shape string, size int) string {
	if shape == "wide" {
		return `{"photo":"` + strings.Repeat("A", size) + `"}`
	}
	one := nested(30)
	n := size / (len(one) + 1)
	return `{"items":[` + strings.TrimSuffix(strings.Repeat(one+",", n), ",") + `]}`
}

// deepBody is about size bytes of JSON nested close to encoding/json's own
// limit (10,000): an array of objects each nested 9,000 deep.
func deepBody(size int) string {
	one := nested(9000)
	n := max(1, size/(len(one)+1))
	return `{"a":[` + strings.TrimSuffix(strings.Repeat(one+",", n), ",") + `]}`
}

// BenchmarkNestedBodyThroughGateway is issue 14's finding 1 end to end: a
// deeply nested body of 60 KB and of 1.2 MB sent to an allowed operation. It
// reports the CPU seconds the process spent per call and its peak RSS (MB);
// bench/RESULTS.md has the figures before and after the fix.
func BenchmarkNestedBodyThroughGateway(b *testing.B) {
	env := newTestEnv(b)
	for _, size := range []int{60 << 10, 1200 << 10} {
		body := deepBody(size)
		b.Run(fmt.Sprintf("%dKB", len(body)>>10), func(b *testing.B) {
			cpu := processCPU()
			for i := 0; i < b.N; i++ {
				req, _ := http.NewRequest("POST", env.gatewayURL+"/v/echo/verify", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := env.client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			b.ReportMetric((processCPU()-cpu).Seconds()/float64(b.N), "cpu-s/op")
			b.ReportMetric(peakRSSMB(), "peak-rss-MB")
		})
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSSMB is the process's peak resident set (VmHWM), in MB.
func peakRSSMB() float64 {
	data, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(data), "\n") {
		if kb, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var n float64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(kb), " kB"), &n)
			return n / 1024
		}
	}
	return 0
}

// One app busy with bodies waits for its own slots; another app's call does
// not wait behind it.
func TestParseSlotsPerApp(t *testing.T) {
	p := &parseSlots{all: make(chan struct{}, 3), apps: map[string]chan struct{}{}, each: 2, wait: 50 * time.Millisecond}
	ctx := t.Context()
	var releases []func()
	for i := 0; i < 2; i++ {
		release, ok := p.acquire(ctx, "greedy")
		if !ok {
			t.Fatalf("greedy slot %d refused", i)
		}
		releases = append(releases, release)
	}
	if _, ok := p.acquire(ctx, "greedy"); ok {
		t.Fatal("a third greedy body was let in")
	}
	release, ok := p.acquire(ctx, "other")
	if !ok {
		t.Fatal("another app waited behind the greedy one")
	}
	// The total is bounded too: three in flight, a fourth app waits.
	if _, ok := p.acquire(ctx, "third"); ok {
		t.Fatal("more bodies in flight than the total allows")
	}
	release()
	for _, r := range releases {
		r()
	}
	if r, ok := p.acquire(ctx, "greedy"); !ok {
		t.Fatal("slots not given back")
	} else {
		r()
	}
}
