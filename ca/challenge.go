package ca

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/smallstep/certificates/acme"
)

// Validation says how the internal CA reaches a host to validate its ACME
// challenge. The zero value is the ACME standard: resolve the name in DNS and
// connect to port 80 (http-01) or 443 (tls-alpn-01).
type Validation struct {
	// Host, if set, is dialled for every identifier instead of resolving it:
	// `consentgate dev` and tests validate on loopback. Only use it where
	// every process that can listen on Host is trusted.
	Host string
	// HTTPPort and TLSALPNPort replace 80 and 443, for gateways whose
	// challenge solver listens on another port.
	HTTPPort, TLSALPNPort int
}

// client is the acme.Client smallstep validates challenges with. It only
// changes where it connects: the Host header and the TLS server name stay the
// identifier's, which is what the solver answers for.
func (v Validation) client() acme.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	c := &challengeClient{v: v, dialer: d}
	c.http = &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return d.DialContext(ctx, network, c.target(addr, v.HTTPPort))
			},
			DisableKeepAlives: true,
		},
	}
	return c
}

type challengeClient struct {
	v      Validation
	dialer *net.Dialer
	http   *http.Client
}

var _ acme.Client = (*challengeClient)(nil)

// target rewrites host:port to where the challenge is really answered.
func (c *challengeClient) target(addr string, port int) string {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if c.v.Host != "" {
		host = c.v.Host
	}
	if port != 0 {
		p = strconv.Itoa(port)
	}
	return net.JoinHostPort(host, p)
}

func (c *challengeClient) Get(url string) (*http.Response, error) { return c.http.Get(url) }

func (c *challengeClient) LookupTxt(name string) ([]string, error) { return net.LookupTXT(name) }

func (c *challengeClient) TLSDial(network, addr string, config *tls.Config) (*tls.Conn, error) {
	return tls.DialWithDialer(c.dialer, network, c.target(addr, c.v.TLSALPNPort), config)
}
