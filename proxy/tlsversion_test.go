package proxy

import (
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"
)

// Every listener speaks TLS 1.2 or newer with AEAD suites only: a client that
// offers TLS 1.0/1.1, or only CBC or RC4-era suites, does not get a session,
// and a modern client with a certificate does (callbacks: without one).
func TestListenersRefuseOldTLSAndNonAEADSuites(t *testing.T) {
	env := newTestEnv(t)
	cert := env.client.Transport.(*http.Transport).TLSClientConfig.Certificates
	listeners := map[string]string{"gateway": env.srv.Addr(ListenGateway), "forward": env.srv.Addr(ListenForward), "admin": env.srv.Addr(ListenAdmin), "callbacks": env.srv.Addr(ListenCallbacks)}
	nonAEAD := []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
		tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_256_CBC_SHA, tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_RC4_128_SHA, tls.TLS_ECDHE_RSA_WITH_RC4_128_SHA,
	}
	for name, addr := range listeners {
		cases := []struct {
			what string
			cfg  *tls.Config
			ok   bool
		}{
			{"TLS 1.0", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}, false},
			{"TLS 1.1", &tls.Config{MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11}, false},
			{"TLS 1.2 with non-AEAD suites only", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: nonAEAD}, false},
			{"TLS 1.2 with AEAD suites", &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12}, true},
			{"TLS 1.3", &tls.Config{MinVersion: tls.VersionTLS13}, true},
		}
		for _, c := range cases {
			c.cfg.RootCAs, c.cfg.Certificates, c.cfg.ServerName = env.trust, cert, "127.0.0.1"
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, c.cfg)
			if err == nil {
				// The server may only refuse after the handshake (TLS 1.3 client
				// certificates): a read tells.
				conn.SetReadDeadline(time.Now().Add(2 * time.Second))
				_, err = conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
				if err == nil {
					buf := make([]byte, 16)
					_, err = conn.Read(buf)
				}
				conn.Close()
			}
			switch {
			case c.ok && err != nil:
				t.Errorf("%s: %s refused: %v", name, c.what, err)
			case !c.ok && err == nil:
				t.Errorf("%s: %s accepted", name, c.what)
			}
		}
	}
}
