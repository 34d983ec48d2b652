package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentgate/consentgate/refusal"
)

// A tunnel goes only to the profile's port, and a proxy credential that cannot
// be read stops the call before the proxy is even dialled: the app is told a
// secret is unavailable, not that the vendor is unreachable.
func TestTunnelDialerRefusesBeforeDialling(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	d := &tunnelDialer{proxy: &url.URL{Scheme: "http", Host: ln.Addr().String()}, dialer: &net.Dialer{}, port: "443",
		auth: func(context.Context) (string, string, error) { return "", "", errors.New("vault sealed") }}
	if _, err := d.DialContext(context.Background(), "tcp", "vendor.example:22"); !errors.Is(err, ErrAddressRefused) {
		t.Errorf("other port: %v", err)
	}
	_, err = d.DialContext(context.Background(), "tcp", "vendor.example:443")
	if !errors.Is(err, errEgressCredentials) {
		t.Fatalf("unreadable credentials: %v", err)
	}
	if r := upstreamRefusal(err); r.Kind != refusal.Credentials || r.Status != http.StatusServiceUnavailable {
		t.Errorf("refusal %s %d, want %s 503", r.Kind, r.Status, refusal.Credentials)
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("the proxy was dialled %d times", n)
	}
}

// What a proxy says instead of opening the tunnel is the error; bytes it sends
// after "200" (before the vendor could have spoken) end the connection.
func TestConnectReadsTheProxysAnswer(t *testing.T) {
	tests := []struct {
		name, answer, want string
	}{
		{"refused", "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", "refused the tunnel to vendor.example:443: 403 Forbidden"},
		{"bytes after 200", "HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 200 OK\r\n", "bytes after accepting"},
		{"not HTTP", "SSH-2.0-OpenSSH\r\n", "reading the answer"},
		{"opened", "HTTP/1.1 200 Connection established\r\n\r\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ours, theirs := net.Pipe()
			defer ours.Close()
			got := make(chan string, 1)
			go func() {
				buf := make([]byte, 4096)
				n, _ := theirs.Read(buf)
				got <- string(buf[:n])
				theirs.Write([]byte(tt.answer))
			}()
			err := connect(context.Background(), ours, "vendor.example:443", http.Header{"Proxy-Authorization": {"Basic dTpw"}})
			if req := <-got; !strings.HasPrefix(req, "CONNECT vendor.example:443 HTTP/1.1\r\nHost: vendor.example:443\r\n") || !strings.Contains(req, "Proxy-Authorization: Basic dTpw\r\n") {
				t.Errorf("request %q", req)
			}
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// A proxy that accepts and then stalls, answers with endless headers, or
// refuses with an endless body holds a dial no longer than the profile's
// dial and handshake timeouts, and is not read past a few KiB.
func TestTunnelDialerBoundsTheProxy(t *testing.T) {
	tests := []struct {
		name   string
		answer func(c net.Conn)
		want   string
	}{
		{"silent", func(c net.Conn) { io.Copy(io.Discard, c) }, "reading the answer"},
		{"endless headers", func(c net.Conn) {
			c.Write([]byte("HTTP/1.1 407 Proxy Authentication Required\r\nX-Pad: "))
			for {
				if _, err := c.Write(bytes.Repeat([]byte("a"), 4096)); err != nil {
					return
				}
			}
		}, "reading the answer"},
		{"refusal with an endless body", func(c net.Conn) {
			c.Write([]byte("HTTP/1.1 407 Proxy Authentication Required\r\nTransfer-Encoding: chunked\r\n\r\n"))
			for {
				if _, err := c.Write([]byte("1000\r\n" + strings.Repeat("a", 4096) + "\r\n")); err != nil {
					return
				}
			}
		}, "407"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				tt.answer(c)
			}()
			d := &tunnelDialer{proxy: &url.URL{Scheme: "http", Host: ln.Addr().String()}, dialer: &net.Dialer{}, port: "443", timeout: 300 * time.Millisecond}
			start := time.Now()
			// The transport dials with a context that has no deadline.
			_, err = d.DialContext(context.Background(), "tcp", "vendor.example:443")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("the dial took %s", took)
			}
		})
	}
}
