package sandbox

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/consentgate/consentgate/certs"
)

// Config is what Start needs. Certificates and credentials have no defaults: a sandbox that
// invented its own would prove nothing about what consentgate holds.
type Config struct {
	// Certificate is the serving certificate of every sandbox (127.0.0.1); callers trust its
	// issuer the way consentgate pins a vendor's CA.
	Certificate tls.Certificate
	// ICARoots stand for the CAs Komerční banka trusts (I.CA, PostSignum). The kb client
	// certificate must chain to them and carry an IČO (certs.ICO) and an organisation name.
	ICARoots *x509.CertPool
	// BanqwareRoots is the CA that signs the client certificate from the CSR given to Banqware.
	BanqwareRoots *x509.CertPool
	// BanqwareSources is banqware's allowlist of client addresses (its production API takes
	// calls only from the addresses a company lists). A connection from another peer is
	// closed before TLS, as a firewall would, and counted (Server.RefusedPeers). Empty: any.
	BanqwareSources []netip.Prefix
	// CallbackRoots verify the server banqware posts its update callbacks to (consentgate's
	// callbacks listener). Nil: callbacks are not sent.
	CallbackRoots *x509.CertPool
	Credentials   Credentials
	// KBAPIKeyHeader names the header carrying kb's API key; KB does not document it.
	// Default "apikey".
	KBAPIKeyHeader string
	// FinIDTokenTTL is how long a FinID access token is honoured; older tokens get 401.
	// Default 5 minutes.
	FinIDTokenTTL time.Duration
	// AirbankRateLimit is how many requests per minute the Air Bank API answers before 429.
	// Default 600.
	AirbankRateLimit int
	// AirbankTokenTTL and KBTokenTTL are how long an access token from the vendor's token
	// endpoint lives. Defaults: 20 minutes (what Air Bank documents) and 10 minutes (KB
	// documents none). Tests shorten them to see refreshes.
	AirbankTokenTTL, KBTokenTTL time.Duration
	// Logger gets one line per request: vendor, method, path, status. Never a query string
	// (biometric carries its key there), a header or a body. Nil discards.
	Logger *slog.Logger

	// now is the clock of session expiry, token lifetime and rate windows; tests move it.
	now func() time.Time
}

func (c *Config) provision() error {
	if c.KBAPIKeyHeader == "" {
		c.KBAPIKeyHeader = "apikey"
	}
	if c.FinIDTokenTTL == 0 {
		c.FinIDTokenTTL = 5 * time.Minute
	}
	if c.AirbankRateLimit == 0 {
		c.AirbankRateLimit = 600
	}
	if c.AirbankTokenTTL == 0 {
		c.AirbankTokenTTL = 20 * time.Minute
	}
	if c.KBTokenTTL == 0 {
		c.KBTokenTTL = 10 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c.validate()
}

func (c *Config) validate() error {
	if len(c.Certificate.Certificate) == 0 || c.Certificate.PrivateKey == nil {
		return errors.New("sandbox config: Certificate has no certificate or no private key")
	}
	// A nil pool would make crypto/tls verify client certificates against the system roots.
	if c.ICARoots == nil {
		return errors.New("sandbox config: ICARoots is nil")
	}
	if c.BanqwareRoots == nil {
		return errors.New("sandbox config: BanqwareRoots is nil")
	}
	if c.FinIDTokenTTL < 0 {
		return fmt.Errorf("sandbox config: FinIDTokenTTL %s is negative", c.FinIDTokenTTL)
	}
	if c.AirbankTokenTTL < time.Second || c.KBTokenTTL < time.Second {
		return errors.New("sandbox config: token lifetimes must be at least a second (expires_in counts seconds)")
	}
	if c.AirbankRateLimit < 0 {
		return fmt.Errorf("sandbox config: AirbankRateLimit %d is negative", c.AirbankRateLimit)
	}
	return c.Credentials.validate()
}

// Set is the five running sandboxes.
type Set struct {
	KB, Airbank, Biometric, FinID, Banqware *Server

	// logins are the OAuth2 authorization servers of kb and airbank, by vendor.
	logins map[string]*authServer
}

// RegisterRedirectURI registers a redirect URI for the vendor's OAuth2 client, as the
// developer portal (Air Bank) or the contract (KB) does. Air Bank accepts any redirect_uri
// that starts with a registered one; KB the registered one exactly.
func (s *Set) RegisterRedirectURI(vendor, uri string) error {
	a := s.logins[vendor]
	if a == nil {
		return fmt.Errorf("vendor %q has no OAuth2 login", vendor)
	}
	return a.register(uri)
}

// Start starts the five sandboxes on 127.0.0.1:0, each with its own listener and TLS
// configuration (TLS 1.2 minimum, HTTP/2 enabled). kb and banqware verify a client
// certificate when one is given, so one from another CA fails the handshake (kb takes a
// TLS server certificate as the client's, as KB's terms ask for one); a request
// without one reaches the handler and is refused there, where it is recorded. Note that a
// crypto/tls client does not send a certificate whose issuer the server did not name: it
// gets that refusal, not a failed handshake.
func Start(cfg Config) (*Set, error) {
	if err := cfg.provision(); err != nil {
		return nil, err
	}
	kb, airbank := newKB(cfg), newAirbank(cfg)
	set := &Set{logins: map[string]*authServer{"kb": kb.login, "airbank": airbank.login}}
	for _, v := range []struct {
		vendor    string
		clientCAs *x509.CertPool
		usages    []x509.ExtKeyUsage
		handler   func(origin string) http.Handler
		dst       **Server
		sources   []netip.Prefix
	}{
		{"kb", cfg.ICARoots, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
			func(string) http.Handler { return kb }, &set.KB, nil},
		{"airbank", nil, nil, func(string) http.Handler { return airbank }, &set.Airbank, nil},
		{"biometric", nil, nil, func(string) http.Handler { return newBiometric(cfg) }, &set.Biometric, nil},
		{"finid", nil, nil, func(string) http.Handler { return newFinID(cfg) }, &set.FinID, nil},
		{"banqware", cfg.BanqwareRoots, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			func(origin string) http.Handler { return newBanqware(cfg, origin) }, &set.Banqware, cfg.BanqwareSources},
	} {
		srv, err := startServer(v.vendor, cfg, v.clientCAs, v.usages, v.sources, v.handler)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("starting %s sandbox: %w", v.vendor, err), set.Close())
		}
		*v.dst = srv
	}
	return set, nil
}

// All returns the started sandboxes in the order kb, airbank, biometric, finid, banqware.
func (s *Set) All() []*Server {
	var out []*Server
	for _, srv := range []*Server{s.KB, s.Airbank, s.Biometric, s.FinID, s.Banqware} {
		if srv != nil {
			out = append(out, srv)
		}
	}
	return out
}

// Server returns the sandbox of a vendor id ("kb", "airbank", "biometric", "finid",
// "banqware"), or nil if the id is unknown.
func (s *Set) Server(vendor string) *Server {
	for _, srv := range s.All() {
		if srv.Vendor == vendor {
			return srv
		}
	}
	return nil
}

// Close stops every sandbox and waits for them to finish.
func (s *Set) Close() error {
	var errs []error
	for _, srv := range s.All() {
		if err := srv.close(); err != nil {
			errs = append(errs, fmt.Errorf("closing %s sandbox: %w", srv.Vendor, err))
		}
	}
	return errors.Join(errs...)
}

// Server is one running sandbox.
type Server struct {
	Vendor string // "kb", "airbank", "biometric", "finid" or "banqware"
	URL    string // origin, e.g. https://127.0.0.1:40123 (no path)

	httpServer *http.Server
	handler    http.Handler // the vendor's, under the recorder
	served     chan struct{}
	closing    chan struct{} // closed by close: a hung fault lets go
	logger     *slog.Logger
	fault      atomic.Pointer[Fault]

	peers *allowlist

	mu       sync.Mutex
	count    int       // requests that reached the handler since start or Reset
	requests []Request // the latest keptRequests of them
}

// Request is one request as it reached a sandbox handler. It holds credentials exactly as
// they arrived, which is what tests inspect; keep it out of logs.
type Request struct {
	Method, Path, RawQuery string
	Header                 http.Header       // clone of what arrived
	Body                   []byte            // first 64 KiB
	ClientCert             *x509.Certificate // leaf presented in TLS, nil if none
	RemoteAddr             string            // the peer's IP address, as an allowlist sees it
	Status                 int               // status the sandbox answered; 0: a fault gave no answer
}

const (
	recordedBodyLimit = 64 << 10
	// keptRequests bounds the history, so a `consentgate dev` left running (or a soak
	// test) does not grow without end; Count still counts every request. Between
	// keptRequests and twice as many are held, so trimming is rare.
	keptRequests = 1000
	// A base64 face photo for biometric or finid runs to a few megabytes.
	maxRequestBody = 32 << 20
)

func startServer(vendor string, cfg Config, clientCAs *x509.CertPool, usages []x509.ExtKeyUsage, sources []netip.Prefix, handler func(origin string) http.Handler) (*Server, error) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening: %w", err)
	}
	ln := &allowlist{Listener: tcp, sources: sources}
	logger := cfg.Logger.With("vendor", vendor)
	s := &Server{
		Vendor:  vendor,
		URL:     "https://" + ln.Addr().String(),
		served:  make(chan struct{}),
		closing: make(chan struct{}),
		logger:  logger,
		peers:   ln,
	}
	serving := cfg.Certificate
	tlsConfig := &tls.Config{
		// A certificate fault replaces the serving certificate at the next handshake.
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if f := s.fault.Load(); f != nil && f.Certificate != nil {
				return f.Certificate, nil
			}
			return &serving, nil
		},
		MinVersion: tls.VersionTLS12,
	}
	if clientCAs != nil {
		certs.VerifyClientsFor(tlsConfig, clientCAs, false, usages...)
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	s.handler = handler(s.URL)
	s.httpServer = &http.Server{
		Handler:           s.record(s.handler),
		TLSConfig:         tlsConfig,
		Protocols:         &protocols,
		ReadHeaderTimeout: 10 * time.Second,
		// Refused handshakes are expected in tests; keep them out of stderr.
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		// A reset fault closes the request's connection.
		ConnContext: func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) },
	}
	go func() {
		defer close(s.served)
		if err := s.httpServer.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
			logger.Error("sandbox stopped serving", "error", err)
		}
	}()
	return s, nil
}

func (s *Server) close() error {
	close(s.closing)
	err := s.httpServer.Close()
	<-s.served
	return err
}

// Count returns how many requests reached the handler, accepted or refused.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// Requests returns copies of the recorded requests, oldest first: at least the latest 1,000
// (older ones are forgotten).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		r.Header = r.Header.Clone()
		r.Body = bytes.Clone(r.Body)
		out[i] = r
	}
	return out
}

// Reset forgets the recorded requests; vendor state (sessions, tokens, consents) stays.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests, s.count = nil, 0
}

func (s *Server) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := Request{
			Method:   r.Method,
			Path:     r.URL.Path,
			RawQuery: r.URL.RawQuery,
			Header:   r.Header.Clone(),
		}
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			req.ClientCert = r.TLS.PeerCertificates[0]
		}
		if peer, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			req.RemoteAddr = peer.Addr().Unmap().String()
		}
		rw := &recordingWriter{ResponseWriter: w, ctx: r.Context(), server: s, req: req}
		// The whole body is read up front so the record holds it even when a handler refuses
		// the request before looking at it.
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
		rw.req.Body = bytes.Clone(body[:min(len(body), recordedBodyLimit)])
		if err != nil {
			status := http.StatusBadRequest
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				status = http.StatusRequestEntityTooLarge
			}
			http.Error(rw, http.StatusText(status), status)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if f := s.fault.Load(); f != nil && f.Kind != FaultNone {
			s.misbehave(rw, r, next, f)
			return
		}
		next.ServeHTTP(rw, r)
		rw.commit(http.StatusOK)
	})
}

// recordingWriter records the request when the status is decided, before any byte of the
// response leaves: a test that has read the response therefore always finds it recorded.
type recordingWriter struct {
	http.ResponseWriter
	ctx       context.Context
	server    *Server
	req       Request
	committed bool
}

func (w *recordingWriter) WriteHeader(status int) {
	w.commit(status)
	w.ResponseWriter.WriteHeader(status)
}

func (w *recordingWriter) Write(b []byte) (int, error) {
	w.commit(http.StatusOK)
	return w.ResponseWriter.Write(b)
}

func (w *recordingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *recordingWriter) commit(status int) {
	if w.committed {
		return
	}
	w.committed = true
	w.req.Status = status
	s := w.server
	s.mu.Lock()
	s.count++
	if len(s.requests) == 2*keptRequests {
		s.requests = slices.Clone(s.requests[keptRequests:])
	}
	s.requests = append(s.requests, w.req)
	s.mu.Unlock()
	s.logger.LogAttrs(w.ctx, slog.LevelInfo, "sandbox request",
		slog.String("method", w.req.Method),
		slog.String("path", w.req.Path),
		slog.Int("status", status),
		slog.Bool("client_cert", w.req.ClientCert != nil))
}

// verifiedClientCert returns the client certificate leaf. Every sandbox either requests no
// certificate or verifies a given one in the handshake (certs.VerifyClientsFor), which a
// certificate that fails ends: a certificate on a request is a verified one.
func verifiedClientCert(r *http.Request) *x509.Certificate {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil
	}
	return r.TLS.PeerCertificates[0]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	writeBody(w, status, "application/json", mustJSON(v))
}

func writeBody(w http.ResponseWriter, status int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// mustJSON encodes what this package builds from strings, numbers, booleans, slices and
// maps with string keys, which cannot fail to encode.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("sandbox: encoding %T: %v", v, err))
	}
	return b
}

// jsonProblem names what is wrong with a request body without quoting it, since the body may
// hold a key or a photo. fieldPrefix locates a nested value that was decoded on its own.
func jsonProblem(fieldPrefix string, err error) string {
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		field := strings.TrimSuffix(fieldPrefix+te.Field, ".")
		if field == "" {
			field = "body"
		}
		return fmt.Sprintf("%s: a JSON %s is not allowed here", field, te.Value)
	}
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Sprintf("the body is not valid JSON (at byte %d)", se.Offset)
	}
	return "the body is not a valid JSON object"
}

// RefusedPeers is how many connections came from an address the sandbox's allowlist
// does not hold.
func (s *Server) RefusedPeers() int64 { return s.peers.refused.Load() }

// allowlist closes connections from peers outside sources, when there are any.
type allowlist struct {
	net.Listener
	sources []netip.Prefix
	refused atomic.Int64
}

func (l *allowlist) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || len(l.sources) == 0 {
			return c, err
		}
		peer, err := netip.ParseAddrPort(c.RemoteAddr().String())
		if err == nil && slices.ContainsFunc(l.sources, func(p netip.Prefix) bool { return p.Contains(peer.Addr().Unmap()) }) {
			return c, nil
		}
		l.refused.Add(1)
		c.Close()
	}
}
