package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/identity"
	"github.com/consentgate/consentgate/refusal"
)

// leafLifetime is how long a minted vendor-host certificate lives; it is renewed
// an hour before it ends.
const leafLifetime = 24 * time.Hour

// Forward is the forward-proxy listener's handler, for apps that cannot change
// their vendor base URL but can set HTTPS_PROXY. CONNECT to a host a vendor
// profile owns is answered by terminating the app's TLS with a certificate for
// that host minted by the internal CA; the requests inside then run exactly the
// gateway pipeline. Any other host is refused before a tunnel exists.
type Forward struct {
	gw *Gateway
	ca *certs.CA

	mu    sync.Mutex
	leafs map[string]*tls.Certificate
}

// NewForward builds the forward proxy over a gateway; ca mints the per-host
// certificates and must be the CA apps already trust for the gateway.
func NewForward(g *Gateway, ca *certs.CA) *Forward {
	return &Forward{gw: g, ca: ca, leafs: map[string]*tls.Certificate{}}
}

// vendorAt is the vendor a request for host and port reaches: the one whose
// base URL has that port, else, on 443, the host's only vendor. Profiles that
// share a host (sandboxes on one address) are told apart by port, never by
// the order a map happens to give.
func (f *Forward) vendorAt(host, port string) *vendor {
	vs := f.gw.set.Load().hosts[strings.ToLower(host)]
	for _, v := range vs {
		if p := v.base.Port(); p == port || p == "" && port == "443" {
			return v
		}
	}
	if port == "443" && len(vs) == 1 {
		return vs[0]
	}
	return nil
}

// publicHost is the host apps address the vendor by: the TLS server name when a
// profile overrides it (dev points real hosts at sandboxes), else the base URL's.
func (v *vendor) publicHost() string {
	if v.cfg.Upstream.ServerName != "" {
		return v.cfg.Upstream.ServerName
	}
	return v.base.Hostname()
}

func (f *Forward) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ex, w := f.gw.begin(w, r)
	// Any proven identity may open a tunnel; the pipeline inside it lets
	// only apps call vendors, and records who tried. The refusals here are
	// the exchange's own; a tunnel's calls are the gateway's exchanges.
	refuse := func(ref *refusal.Refusal) {
		defer f.gw.logExchange(ex)
		f.gw.answer(r.Context(), w, ex, ref)
	}
	id, ref := identity.Require(r.Context(), identity.RoleApp, identity.RoleAuditor, identity.RoleAdmin)
	if ref != nil {
		refuse(ref)
		return
	}
	ex.app, ex.role = id.Name, id.Role

	host, port := r.Host, "443"
	if h, p, err := net.SplitHostPort(r.Host); err == nil {
		host, port = h, p
	}
	v := f.vendorAt(host, port)
	if v == nil {
		// Deny by default, audited like any refusal; the tunnel never opens.
		ex.err = "forward proxy: host is not owned by any vendor profile"
		refuse(refusal.New(http.StatusForbidden, refusal.NoRoute, "Host not allowed",
			"no vendor profile owns this host and port; consentgate only reaches configured vendors"))
		return
	}
	ctx := r.Context()
	switch {
	case r.Method == http.MethodConnect:
		f.tunnel(w, r.WithContext(ctx), v, host, ex.requestID)
	case r.URL.IsAbs():
		// Absolute-form http://vendor/... : the call still goes out over HTTPS.
		f.pipeline(v).ServeHTTP(w, r.WithContext(ctx))
	default:
		refuse(refusal.New(http.StatusBadRequest, refusal.BadRequest, "Not a proxy request",
			"send CONNECT host:443 or an absolute-form URL"))
	}
}

// pipeline maps a request for the vendor's own URL onto the gateway's
// /v/<vendor>/<path> and runs the gateway pipeline.
func (f *Forward) pipeline(v *vendor) http.Handler {
	basePath := strings.TrimSuffix(v.base.EscapedPath(), "/")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		escaped := r.URL.EscapedPath()
		rest, ok := strings.CutPrefix(escaped, basePath)
		if !ok || (rest != "" && !strings.HasPrefix(rest, "/")) {
			// Refused before the pipeline, recorded as it would be.
			ex, w := f.gw.begin(w, r)
			defer f.gw.logExchange(ex)
			id, _ := identity.From(r.Context())
			ex.app, ex.role, ex.vendor = id.Name, id.Role, v.cfg.ID
			f.gw.answer(r.Context(), w, ex, refusal.New(http.StatusNotFound, refusal.NoRoute, "Not found",
				fmt.Sprintf("vendor %s serves paths under %s", v.cfg.ID, basePath+"/")))
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Scheme, r2.URL.Host = "", ""
		r2.URL.RawPath = gatewayPrefix + v.cfg.ID + rest
		r2.URL.Path = r2.URL.RawPath
		if p, err := url.PathUnescape(r2.URL.RawPath); err == nil {
			r2.URL.Path = p
		}
		r2.RequestURI = ""
		f.gw.ServeHTTP(w, r2)
	})
}

// tunnel answers CONNECT, then speaks TLS as the vendor host to the app and
// serves the requests inside through the pipeline.
func (f *Forward) tunnel(w http.ResponseWriter, r *http.Request, v *vendor, host, requestID string) {
	leaf, err := f.leaf(host)
	if err != nil {
		f.gw.log.Error("forward proxy: minting a certificate failed", "vendor", v.cfg.ID, logError, err.Error())
		refusal.New(http.StatusInternalServerError, refusal.Internal, "Cannot intercept", "").Write(w, requestID)
		return
	}
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		refusal.New(http.StatusInternalServerError, refusal.Internal, "CONNECT needs HTTP/1.1", "").Write(w, requestID)
		return
	}
	if _, err := rw.WriteString("HTTP/1.1 200 Connection Established\r\n\r\n"); err != nil || rw.Flush() != nil {
		conn.Close()
		return
	}
	inner := tls.Server(bufferedConn{Conn: conn, r: rw.Reader}, &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: certs.AEADSuites,
		Certificates: []tls.Certificate{*leaf},
		NextProtos:   []string{"http/1.1"},
	})
	ctx := r.Context()
	// The requests inside the tunnel get the same framing guard and the same
	// limits as the listeners' (a body trickled byte by byte is cut off as
	// there); the identity is the outer connection's, so no TLS state.
	lim := f.gw.cfg.Listen
	guarded := &framingConn{Conn: inner, scan: requestScanner{maxHead: lim.MaxHeaderBytes + 4096}, log: f.gw.log}
	srv := &http.Server{
		Handler:           withConnTLS(f.pipeline(v)),
		ReadHeaderTimeout: lim.ReadHeaderTimeout.Duration,
		ReadTimeout:       lim.ReadTimeout.Duration,
		IdleTimeout:       lim.IdleTimeout.Duration,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		ConnContext: func(context.Context, net.Conn) context.Context {
			return context.WithValue(context.WithoutCancel(ctx), connTLSKey{}, guarded)
		},
		ErrorLog: slog.NewLogLogger(f.gw.log.Handler(), slog.LevelInfo),
	}
	srv.Serve(&oneConnListener{conn: guarded, done: make(chan struct{})})
}

// leaf returns the cached certificate for host, minting a new one when none is
// valid for at least another hour.
func (f *Forward) leaf(host string) (*tls.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.leafs[host]; c != nil && time.Until(c.Leaf.NotAfter) > time.Hour {
		return c, nil
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: host},
		DNSNames:    []string{host},
		NotAfter:    time.Now().Add(leafLifetime),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	cert, key, err := f.ca.Issue(tmpl)
	if err != nil {
		return nil, err
	}
	chain := [][]byte{cert.Raw}
	if !bytes.Equal(f.ca.Cert.RawIssuer, f.ca.Cert.RawSubject) {
		// An intermediate (the interception CA): apps trust its issuer.
		chain = append(chain, f.ca.Cert.Raw)
	}
	c := &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: cert}
	f.leafs[host] = c
	return c, nil
}

// bufferedConn keeps bytes the HTTP server read ahead of the TLS handshake.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// oneConnListener serves exactly one connection, then reports closed once that
// connection ends, so http.Server.Serve returns.
type oneConnListener struct {
	conn net.Conn
	once sync.Once
	done chan struct{}
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	var c net.Conn
	l.once.Do(func() { c = &closeNotifier{Conn: l.conn, done: l.done} })
	if c != nil {
		return c, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error   { return nil }
func (l *oneConnListener) Addr() net.Addr { return l.conn.LocalAddr() }

type closeNotifier struct {
	net.Conn
	once sync.Once
	done chan struct{}
}

func (c *closeNotifier) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.done) })
	return err
}
