package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// errEgressCredentials means the egress proxy's username or password could
// not be read: the call is not made, as with any other missing credential.
var errEgressCredentials = errors.New("egress proxy credentials unavailable")

// tunnelDialer reaches a vendor through an HTTP CONNECT proxy. It dials the
// proxy (from the profile's source address; over TLS for an https proxy),
// asks for a tunnel to the vendor's host and port by name, and returns the
// tunnel: the transport then runs TLS with the vendor inside it, end to end.
// The proxy resolves the vendor's name, so checking where that name leads
// (upstream.pin, internal addresses) is the proxy's job on this path.
type tunnelDialer struct {
	proxy  *url.URL
	dialer *net.Dialer
	tls    *tls.Config // nil: plain TCP to the proxy
	port   string      // the only vendor port a tunnel may go to
	// timeout bounds the whole dial: TCP, TLS with the proxy and its answer.
	// The transport dials without a deadline, and a proxy that accepts and
	// then says nothing would otherwise hold the dial forever.
	timeout time.Duration
	// auth returns the Basic credentials for each CONNECT; nil sends none.
	auth func(context.Context) (user, password string, err error)
}

// DialContext opens a tunnel to address (host:port).
func (d *tunnelDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if _, port, err := net.SplitHostPort(address); err != nil || port != d.port {
		return nil, fmt.Errorf("%w: %s is not on the profile's port %s", ErrAddressRefused, address, d.port)
	}
	header := http.Header{}
	if d.auth != nil {
		user, password, err := d.auth(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errEgressCredentials, err)
		}
		if strings.Contains(user, ":") {
			return nil, fmt.Errorf("%w: egress.proxy.username contains a colon, which Basic authentication cannot carry", errEgressCredentials)
		}
		header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+password)))
	}
	if d.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.timeout)
		defer cancel()
	}
	conn, err := d.dialer.DialContext(ctx, network, d.proxy.Host)
	if err != nil {
		return nil, fmt.Errorf("dialling egress proxy %s: %w", d.proxy.Host, err)
	}
	if d.tls != nil {
		tc := tls.Client(conn, d.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS with egress proxy %s: %w", d.proxy.Host, err)
		}
		conn = tc
	}
	if err := connect(ctx, conn, address, header); err != nil {
		conn.Close()
		return nil, fmt.Errorf("egress proxy %s: %w", d.proxy.Host, err)
	}
	return conn, nil
}

// maxConnectAnswer bounds a proxy's answer to CONNECT.
const maxConnectAnswer = 16 << 10

// connect asks the proxy on conn for a tunnel to address and reads its answer,
// within ctx's deadline and until ctx is cancelled.
func connect(ctx context.Context, conn net.Conn, address string, header http.Header) error {
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	// The tunnel outlives the dial: its deadline ends with the CONNECT.
	defer func() {
		stop()
		conn.SetDeadline(time.Time{})
	}()
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: address}, Host: address, Header: header}
	if err := req.Write(conn); err != nil {
		return fmt.Errorf("asking for a tunnel to %s: %w", address, err)
	}
	// An answer is a status line and a few headers: a proxy that sends more
	// is not read on. Nor is the body of a refusal: the connection is closed.
	br := bufio.NewReader(io.LimitReader(conn, maxConnectAnswer))
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return fmt.Errorf("reading the answer to CONNECT %s: %w", address, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("refused the tunnel to %s: %s", address, resp.Status)
	}
	// The vendor speaks first only after our ClientHello: bytes already here
	// would come from the proxy, not the vendor.
	if br.Buffered() > 0 {
		return fmt.Errorf("sent %d bytes after accepting the tunnel to %s", br.Buffered(), address)
	}
	return nil
}
