package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// raw sends bytes over an app's mTLS connection and reads one response.
func (e *testEnv) raw(t *testing.T, request string) (*http.Response, error) {
	t.Helper()
	cfg := e.client.Transport.(*http.Transport).TLSClientConfig.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	conn, err := tls.Dial("tcp", strings.TrimPrefix(e.gatewayURL, "https://"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, request); err != nil {
		return nil, err
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

func TestRequestHygiene(t *testing.T) {
	env := newTestEnv(t)
	tests := []struct {
		name    string
		request string
		status  int
		// problem: consentgate's framing guard answers (problem+json); net/http
		// answers the others.
		problem bool
	}{
		{"two different Content-Length headers",
			"POST /v/echo/sessions/ HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400, true},
		{"headers beyond the limit",
			"GET /v/echo/things/1 HTTP/1.1\r\nHost: gw\r\nX-Big: " + strings.Repeat("a", 70<<10) + "\r\n\r\n", 431, false},
		{"Content-Length that is not a number",
			"POST /v/echo/sessions/ HTTP/1.1\r\nHost: gw\r\nContent-Length: 1e3\r\n\r\n", 400, false},
		// net/http alone would accept the next ones, resolving them its own way.
		{"Content-Length and Transfer-Encoding",
			"POST /v/echo/sessions/ HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n" +
				"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{\"a\":1}\r\n0\r\n\r\n", 400, true},
		{"Transfer-Encoding before Content-Length, lower case",
			"POST /v/echo/sessions/ HTTP/1.1\r\nHost: gw\r\ntransfer-encoding: chunked\r\ncontent-length: 7\r\n\r\n7\r\n{\"a\":1}\r\n0\r\n\r\n", 400, true},
		{"the same Content-Length twice",
			"POST /v/echo/sessions/ HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}", 400, true},
		{"Transfer-Encoding in HTTP/1.0",
			"POST /v/echo/sessions/ HTTP/1.0\r\nHost: gw\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 400, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := env.raw(t, tt.request)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.problem && resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("Content-Type %q, want application/problem+json", resp.Header.Get("Content-Type"))
			}
			if tt.problem && resp.Header.Get("X-Request-Id") == "" {
				t.Error("the guard's answer has no X-Request-Id")
			}
		})
	}
	if env.seen.count() != 0 {
		t.Error("a malformed request reached the vendor")
	}
}

// Requests pipelined on one connection keep their framing, so the guard finds
// the ambiguous one after valid bodies of every kind, and only that one is refused.
func TestPipelinedRequestsKeepTheirFraming(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.client.Transport.(*http.Transport).TLSClientConfig.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	conn, err := tls.Dial("tcp", strings.TrimPrefix(env.gatewayURL, "https://"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The first body holds a fake request head: a guard that lost count of the
	// body would refuse the call there.
	fake := `{"a":"\r\nPOST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"}`
	stream := "POST /v/echo/sessions/ HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(fake)) + "\r\n\r\n" + fake +
		"\r\n" + // an empty line between requests is allowed
		"POST /v/echo/sessions/ HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"3;ext=1\r\n{\"b\r\n4\r\n\":2}\r\n0\r\nX-Trailer: 1\r\n\r\n" +
		"GET /v/echo/things/1 HTTP/1.1\r\nHost: gw\r\n\r\n" +
		"POST /v/echo/sessions/ HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n" +
		"GET /v/echo/things/2 HTTP/1.1\r\nHost: gw\r\n\r\n"
	if _, err := io.WriteString(conn, stream); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	for i, want := range []int{200, 200, 200, 400} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("response %d: status %d, want %d: %s", i, resp.StatusCode, want, body)
		}
	}
	if _, err := http.ReadResponse(br, nil); err == nil {
		t.Error("the request after the refused one was answered")
	}
	if n := env.seen.count(); n != 3 {
		t.Errorf("vendor called %d times, want 3", n)
	}
}

// A client that sends its headers too slowly is cut off (slowloris).
func TestSlowHeadersAreCutOff(t *testing.T) {
	env := newTestEnv(t)
	start := time.Now()
	_, err := env.raw(t, "GET /v/echo/things/1 HTTP/1.1\r\nHost: gw\r\n") // never finishes
	if err == nil {
		t.Fatal("a request with unfinished headers was answered")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("cut off after %s, want about the 1s read_header_timeout", took)
	}
	if env.seen.count() != 0 {
		t.Error("the vendor was called")
	}
}

// Forwarding headers from the app are not passed on: the vendor learns nothing
// about the app's network, and nothing the app claims about it.
func TestForwardingHeadersFromAppsAreDropped(t *testing.T) {
	env := newTestEnv(t)
	do(t, env.client, "GET", env.gatewayURL+"/v/echo/things/1", "", map[string]string{
		"X-Forwarded-For": "10.9.8.7", "X-Forwarded-Host": "evil", "Forwarded": "for=10.9.8.7", "X-Real-Ip": "10.9.8.7"})
	got, _ := env.seen.last(t)
	for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Host", "Forwarded", "X-Real-Ip"} {
		if v := got.Header.Get(h); v != "" {
			t.Errorf("vendor got %s: %q", h, v)
		}
	}
}

// Issue 14 finding 5: inside a forward-proxy tunnel a body trickled at one byte
// every few seconds stayed open for minutes. The tunnel has the listeners' read
// and idle limits (read_timeout is 3s in the test configuration).
func TestTunnelBodiesAreCutOff(t *testing.T) {
	env := newTestEnv(t)
	appTLS := env.client.Transport.(*http.Transport).TLSClientConfig
	conn, err := tls.Dial("tcp", env.forwardAddr, appTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	host := "127.0.0.1:" + vendorPort(t, env)
	fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", host, host)
	br := bufio.NewReader(conn)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	inner := tls.Client(bufferedConn{Conn: conn, r: br}, &tls.Config{InsecureSkipVerify: true}) // the minted leaf is not what this test is about
	fmt.Fprintf(inner, "POST /base/verify HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", host)
	start := time.Now()
	inner.SetReadDeadline(start.Add(20 * time.Second))
	_, err = io.ReadAll(inner)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the tunnel still waited for the body after %s", time.Since(start))
	}
	if took := time.Since(start); took > 12*time.Second {
		t.Errorf("cut off after %s, want about the 3s read_timeout", took)
	}
	if env.seen.count() != 0 {
		t.Error("the vendor was called")
	}
}

// vendorPort is the port of the echo vendor's base URL.
func vendorPort(t *testing.T, env *testEnv) string {
	t.Helper()
	for _, v := range env.gw.vendorsNow() {
		if v.cfg.ID == "echo" {
			return v.base.Port()
		}
	}
	t.Fatal("no echo vendor")
	return ""
}
