package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/consentgate/consentgate/certs"
)

// go-proxy is nginx's job done with Go's standard library: mTLS from the app,
// the company seal, API key and bearer token to the vendor over HTTP/2, as
// consentgate's transport does, and nothing else. It is the floor any Go
// gateway built on net/http and crypto/tls stands on, measured in the same
// run, so that consentgate's own cost can be told from the platform's.

// goProxyRoleEnv, set to a config file, makes the benchmark binary serve as
// go-proxy.
const goProxyRoleEnv = "CONSENTGATE_BENCH_GOPROXY"

type goProxyConfig struct {
	CertFile, ClientCAFile  string // serving certificate, app CA
	SealFile, VendorCAFile  string // the company seal, the vendor's CA
	Upstream, APIKey, Token string
}

func serveGoProxy(configFile string) error {
	var c goProxyConfig
	if err := readRoleConfig(configFile, &c); err != nil {
		return err
	}
	pair, err := tls.LoadX509KeyPair(c.CertFile, certs.KeyFile(c.CertFile))
	if err != nil {
		return err
	}
	apps, err := certs.LoadPool(c.ClientCAFile)
	if err != nil {
		return err
	}
	vendorTLS, err := clientTLS(c.SealFile, c.VendorCAFile, kbHost)
	if err != nil {
		return err
	}
	vendorTLS.NextProtos = nil
	target, err := url.Parse(c.Upstream)
	if err != nil {
		return err
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.URL.Path = kbPath
			r.Out.Host = kbHost
			r.Out.Header.Set(apiKeyHeader, c.APIKey)
			r.Out.Header.Set("Authorization", "Bearer "+c.Token)
		},
		Transport: &http.Transport{TLSClientConfig: vendorTLS, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 64},
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler: proxy,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert,
			ClientCAs: apps, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	fmt.Printf("listening %s\n", ln.Addr())
	return srv.ServeTLS(ln, "", "")
}

// startGoProxy runs go-proxy as a child process and returns its target.
func startGoProxy(s *stack) (*child, *target, error) {
	gw := s.pki.Path(gatewayCert)
	raw, _ := json.Marshal(goProxyConfig{CertFile: gw, ClientCAFile: s.pki.Path(certs.DevRootCert),
		SealFile: s.pki.Path(certs.DevKBCert), VendorCAFile: s.pki.Path(certs.DevSandboxRootCert),
		Upstream: s.upstreamURL, APIKey: s.apiKey, Token: s.token})
	cfgFile := filepath.Join(s.dir, "goproxy.json")
	if err := os.WriteFile(cfgFile, raw, 0o600); err != nil {
		return nil, nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), goProxyRoleEnv+"="+cfgFile)
	cmd.Stderr = os.Stderr
	c, err := startChild("go-proxy", cmd, "listening ", 30*time.Second)
	if err != nil {
		return nil, nil, err
	}
	t := &target{name: "go-proxy", url: "https://" + c.addr + "/v/kb" + kbPath, header: http.Header{}, tls: s.appTLS,
		pid: c.pid(), check: checkFullBody}
	return c, t, nil
}
