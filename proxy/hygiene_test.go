package proxy

import (
	"bufio"
	"crypto/tls"
	"io"
	"net/http"
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
	}{
		{"two different Content-Length headers",
			"POST /v/echo/sessions/ HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400},
		{"headers beyond the limit",
			"GET /v/echo/things/1 HTTP/1.1\r\nHost: gw\r\nX-Big: " + strings.Repeat("a", 70<<10) + "\r\n\r\n", 431},
		{"Content-Length that is not a number",
			"POST /v/echo/sessions/ HTTP/1.1\r\nHost: gw\r\nContent-Length: 1e3\r\n\r\n", 400},
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
		})
	}
	if env.seen.count() != 0 {
		t.Error("a malformed request reached the vendor")
	}
}

// Transfer-Encoding wins over Content-Length (RFC 9112 §6.3) and consentgate
// re-frames the body it forwards with an exact Content-Length, so what the
// vendor receives cannot be read two ways.
func TestChunkedWithContentLengthIsReframed(t *testing.T) {
	env := newTestEnv(t)
	body := `{"a":1}`
	resp, err := env.raw(t, "POST /v/echo/sessions/ HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"+
		"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n"+body+"\r\n0\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got, sent := env.seen.last(t)
	if len(got.TransferEncoding) != 0 || got.ContentLength != int64(len(sent)) || !strings.Contains(sent, `"a":1`) {
		t.Errorf("vendor got TE %v, CL %d, body %q", got.TransferEncoding, got.ContentLength, sent)
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
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("cut off after %s, want about the 300ms read_header_timeout", took)
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
