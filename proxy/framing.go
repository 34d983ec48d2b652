package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/consentgate/consentgate/identity"
	"github.com/consentgate/consentgate/refusal"
	"github.com/google/uuid"
)

// net/http resolves ambiguous HTTP/1.x framing by itself, as RFC 9112 lets an
// intermediary do: with both Content-Length and Transfer-Encoding it drops the
// length, and it merges repeated identical lengths. A handler cannot tell such a
// request happened. Two parsers disagreeing on framing is how request smuggling
// works, so consentgate refuses these requests outright, before net/http parses
// them: the listener terminates TLS itself and HTTP/1.x connections read through
// a requestScanner that follows the framing of every request on the connection.
// HTTP/2 frames bodies itself and is handed to net/http as is.

// errFraming is a request whose framing can be read two ways.
type errFraming string

func (e errFraming) Error() string { return string(e) }

// guardListener hands net/http connections whose TLS handshake is done: h2 ones
// as *tls.Conn, HTTP/1.x ones wrapped in a framingConn.
type guardListener struct {
	net.Listener
	tls              *tls.Config
	handshakeTimeout time.Duration
	maxHead          int
	log              *slog.Logger

	conns chan net.Conn
	errc  chan error
	done  chan struct{}
	once  sync.Once
}

func newGuardListener(ln net.Listener, cfg *tls.Config, srv *http.Server, log *slog.Logger) *guardListener {
	// The handshake gets what net/http would give it: the shortest of the
	// server's read and write timeouts.
	var timeout time.Duration
	for _, d := range []time.Duration{srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout} {
		if d > 0 && (timeout == 0 || d < timeout) {
			timeout = d
		}
	}
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	maxHead := srv.MaxHeaderBytes
	if maxHead <= 0 {
		maxHead = http.DefaultMaxHeaderBytes
	}
	l := &guardListener{
		Listener: ln, tls: cfg, handshakeTimeout: timeout,
		// net/http reads at most MaxHeaderBytes+4096 for a request head, so a head
		// longer than this is refused by it (431) and the connection closed.
		maxHead: maxHead + 4096,
		log:     log,
		conns:   make(chan net.Conn), errc: make(chan error, 1), done: make(chan struct{}),
	}
	go l.acceptLoop()
	return l
}

func (l *guardListener) acceptLoop() {
	var backoff time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				l.errc <- err
				return
			}
			// Out of file descriptors and the like: wait and try again, as
			// net/http does, instead of stopping the listener for good.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.log.Warn("accepting a connection failed", logError, err.Error())
			select {
			case <-time.After(backoff):
				continue
			case <-l.done:
				return
			}
		}
		backoff = 0
		go l.handshake(c)
	}
}

func (l *guardListener) handshake(raw net.Conn) {
	c := tls.Server(raw, l.tls)
	ctx, cancel := context.WithTimeout(context.Background(), l.handshakeTimeout)
	err := c.HandshakeContext(ctx)
	cancel()
	if err != nil {
		// A missing or foreign client certificate ends here; worth seeing.
		l.log.Info("TLS handshake failed", "remote", raw.RemoteAddr().String(), logError, err.Error())
		raw.Close()
		return
	}
	var conn net.Conn = c
	state := c.ConnectionState()
	if state.NegotiatedProtocol != "h2" {
		conn = &framingConn{Conn: c, state: state, scan: requestScanner{maxHead: l.maxHead}, log: l.log}
	}
	select {
	case l.conns <- conn:
	case <-l.done:
		conn.Close()
	}
}

func (l *guardListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errc:
		l.errc <- err // every later Accept fails the same way
		return nil, err
	case <-l.done:
		// Closed while the accept loop waited out a backoff: it sends no error.
		return nil, net.ErrClosed
	}
}

func (l *guardListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// framingConn is an HTTP/1.x connection after TLS. A request head reaches
// net/http only once it is complete and unambiguous. The first ambiguous one is
// replaced by a stand-in request that net/http routes like any other, so the
// 400 is answered in order after the requests before it, and the connection
// then ends.
type framingConn struct {
	*tls.Conn
	state   tls.ConnectionState
	scan    requestScanner
	log     *slog.Logger
	ready   []byte  // scanned bytes net/http has not read yet
	readyAt *[]byte // ready's whole array, from readyArrays; nil once drained
	err     error   // a read error that came with data, reported next
	refused atomic.Pointer[string]
}

// refusedPath is the stand-in request's path. It only has an effect on a
// connection whose scanner refused a request: an app sending it gets a 404.
const refusedPath = "/.consentgate/refused-framing"

// Read reads from TLS straight into p, net/http's buffer, and hands back
// what the scanner let through. The scanned bytes wait in a pooled array that
// goes back to the pool once net/http has them, so a connection kept alive and
// idle, blocked in this read, holds no buffer of its own.
func (c *framingConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for len(c.ready) == 0 {
		if err := c.err; err != nil {
			// Not sticky: net/http interrupts reads with a past deadline
			// and then reads on.
			c.err = nil
			return 0, err
		}
		n, err := c.Conn.Read(p)
		c.err = err
		if n == 0 {
			// Mostly net/http interrupting its background read: nothing to
			// scan, and no array taken for it.
			continue
		}
		if c.readyAt == nil {
			c.readyAt = readyArrays.Get().(*[]byte)
		}
		var ferr error
		c.ready, ferr = c.scan.feed((*c.readyAt)[:0], p[:n])
		*c.readyAt = c.ready[:0]
		if ferr != nil {
			reason := ferr.Error()
			c.refused.Store(&reason)
			c.log.Info("request refused: ambiguous framing", "remote", c.RemoteAddr().String(), "reason", reason)
			c.ready = append(c.ready, "GET "+refusedPath+" HTTP/1.1\r\nHost: consentgate\r\nConnection: close\r\n\r\n"...)
			// What follows is never served: the stand-in closes the connection.
			c.scan.state = scanDiscard
		}
	}
	n := copy(p, c.ready)
	c.ready = c.ready[n:]
	if len(c.ready) == 0 {
		readyArrays.Put(c.readyAt)
		c.readyAt = nil
	}
	return n, nil
}

var readyArrays = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// connTLSKey carries an HTTP/1.x connection's TLS state to its requests:
// net/http only fills Request.TLS for a *tls.Conn.
type connTLSKey struct{}

// connContext is a listener's connection context: the framing guard's state
// for HTTP/1.x, and the identity the connection's verified chain proves,
// read once for all its requests.
func connContext(trustDomain string, recheck func([]*x509.Certificate) error) func(context.Context, net.Conn) context.Context {
	return func(ctx context.Context, c net.Conn) context.Context {
		var cs tls.ConnectionState
		switch c := c.(type) {
		case *framingConn:
			ctx, cs = context.WithValue(ctx, connTLSKey{}, c), c.state
		case *tls.Conn:
			cs = c.ConnectionState()
		default:
			return ctx
		}
		return identity.ForConnection(ctx, &cs, trustDomain, recheck)
	}
}

// withConnTLS gives every request its connection's TLS state, whichever way
// the connection reached net/http, and answers the stand-in of a refused one.
func withConnTLS(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fc, ok := r.Context().Value(connTLSKey{}).(*framingConn); ok {
			if reason := fc.refused.Load(); reason != nil && r.URL.Path == refusedPath {
				// Refused before any handler, so before any exchange: logged by
				// the guard, answered with a request id like every answer.
				id := uuid.NewString()
				w.Header().Set("Connection", "close")
				w.Header().Set("X-Request-Id", id)
				refusal.New(http.StatusBadRequest, refusal.BadRequest, "Ambiguous request framing", *reason).Write(w, id)
				return
			}
			if r.TLS == nil && fc.state.HandshakeComplete {
				r.TLS = &fc.state // shared by the connection's requests, as net/http does
			}
		}
		h.ServeHTTP(w, r)
	})
}

type scanState int

const (
	scanHead scanState = iota
	scanBody
	scanChunkSize
	scanChunkData
	scanChunkCRLF
	scanTrailer
	// scanPassthrough stops checking: after CONNECT (the bytes are a tunnel) or
	// after framing net/http refuses itself, which ends the connection.
	scanPassthrough
	// scanDiscard drops everything after a refused request.
	scanDiscard
)

// requestScanner follows HTTP/1.x request framing over a byte stream, the
// way net/http reads it, and reports a request head whose framing is ambiguous.
type requestScanner struct {
	state   scanState
	maxHead int
	buf     []byte // the head, or the chunk-size or trailer line, so far
	seen    bool   // a non-empty line started the head
	remain  int64  // body or chunk bytes still to come
	crlf    int    // bytes of a chunk's closing CRLF seen
}

// feed scans p and appends to dst the bytes net/http may read: everything but
// an incomplete request head. On a framing error the refused head is dropped.
func (s *requestScanner) feed(dst, p []byte) ([]byte, error) {
	i := 0
	for i < len(p) {
		switch s.state {
		case scanPassthrough:
			return append(dst, p[i:]...), nil
		case scanDiscard:
			return dst, nil
		case scanBody, scanChunkData:
			n := min(int64(len(p)-i), s.remain)
			dst = append(dst, p[i:i+int(n)]...)
			i += int(n)
			s.remain -= n
			if s.remain == 0 {
				if s.state == scanBody {
					s.state = scanHead
				} else {
					s.state, s.crlf = scanChunkCRLF, 0
				}
			}
		case scanChunkCRLF:
			if p[i] != "\r\n"[s.crlf] {
				s.state = scanPassthrough // net/http fails the body itself
				continue
			}
			dst = append(dst, p[i])
			i++
			if s.crlf++; s.crlf == 2 {
				s.state = scanChunkSize
			}
		case scanChunkSize, scanTrailer, scanHead:
			end := len(p)
			if j := bytes.IndexByte(p[i:], '\n'); j >= 0 {
				end = i + j + 1
			}
			s.buf = append(s.buf, p[i:end]...)
			inBody := s.state != scanHead
			if inBody {
				// Lines inside a body go on at once; only where they end matters.
				dst = append(dst, p[i:end]...)
			}
			i = end
			if len(s.buf) > s.maxHead {
				// net/http answers 431 (or fails the body) and closes.
				if !inBody {
					dst = append(dst, s.buf...)
				}
				s.state, s.buf = scanPassthrough, nil
				continue
			}
			if s.buf[len(s.buf)-1] != '\n' {
				continue
			}
			done, err := s.line()
			if err != nil {
				s.buf = s.buf[:0]
				return dst, err
			}
			if done {
				if !inBody {
					dst = append(dst, s.buf...)
				}
				s.buf = s.buf[:0]
			}
		}
	}
	return dst, nil
}

// line handles the complete line at the end of s.buf and reports whether
// s.buf is done with: a body line, a whole head, or an empty line between
// requests. Head lines accumulate until the head is complete.
func (s *requestScanner) line() (done bool, err error) {
	start := bytes.LastIndexByte(s.buf[:len(s.buf)-1], '\n') + 1
	line := bytes.TrimSuffix(s.buf[start:len(s.buf)-1], []byte("\r"))
	switch s.state {
	case scanChunkSize:
		size, ok := chunkSize(line)
		switch {
		case !ok:
			s.state = scanPassthrough
		case size == 0:
			s.state = scanTrailer
		default:
			s.state, s.remain = scanChunkData, size
		}
		return true, nil
	case scanTrailer:
		if len(line) == 0 {
			s.state = scanHead
		}
		return true, nil
	}
	if len(line) == 0 && !s.seen {
		return true, nil
	}
	if len(line) > 0 {
		s.seen = true
		return false, nil
	}
	s.seen = false
	return true, s.head(s.buf)
}

// head checks a complete request head and sets up reading its body.
func (s *requestScanner) head(head []byte) error {
	lines := bytes.Split(head, []byte("\n"))
	for len(lines) > 0 && len(bytes.TrimSuffix(lines[0], []byte("\r"))) == 0 {
		lines = lines[1:] // leading empty lines
	}
	if len(lines) == 0 {
		return nil
	}
	reqLine := string(bytes.TrimSuffix(lines[0], []byte("\r")))
	method, rest, _ := strings.Cut(reqLine, " ")
	proto := rest[strings.LastIndexByte(rest, ' ')+1:]
	var lengths, encodings [][]byte
	for _, l := range lines[1:] {
		l = bytes.TrimSuffix(l, []byte("\r"))
		if len(l) == 0 {
			continue // the end
		}
		if l[0] == ' ' || l[0] == '\t' {
			// A folded line (obs-fold, RFC 9112 §5.2, which lets a server
			// refuse it): net/http joins it to the field above, so a folded
			// Content-Length would be read one way here and another there.
			return errFraming("a folded header line")
		}
		name, value, found := bytes.Cut(l, []byte(":"))
		if !found {
			continue
		}
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			lengths = append(lengths, bytes.TrimSpace(value))
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			encodings = append(encodings, bytes.TrimSpace(value))
		}
	}
	switch {
	case len(lengths) > 1:
		return errFraming("more than one Content-Length header")
	case len(lengths) > 0 && len(encodings) > 0:
		return errFraming("both Content-Length and Transfer-Encoding")
	case len(encodings) > 0 && proto != "HTTP/1.1":
		// net/http ignores Transfer-Encoding before HTTP/1.1; a hop that does
		// not would read a different body.
		return errFraming("Transfer-Encoding in an " + proto + " request")
	}
	// A framing header the guard cannot read is refused, never passed through:
	// passing through would leave the rest of the connection unguarded.
	switch {
	case method == http.MethodConnect:
		s.state = scanPassthrough
	case len(encodings) == 1 && bytes.EqualFold(encodings[0], []byte("chunked")):
		s.state = scanChunkSize
	case len(encodings) > 0:
		return errFraming("a Transfer-Encoding other than chunked")
	case len(lengths) == 1:
		n, err := strconv.ParseUint(string(lengths[0]), 10, 63)
		if err != nil {
			return errFraming("a Content-Length that is not a number")
		}
		if n > 0 {
			s.state, s.remain = scanBody, int64(n)
		}
	}
	return nil
}

// chunkSize parses a chunk-size line as net/http does: hex digits, then
// optional extensions after ';', trailing whitespace ignored.
func chunkSize(line []byte) (int64, bool) {
	line = bytes.TrimRight(line, " \t")
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = bytes.TrimRight(line[:i], " \t")
	}
	if len(line) == 0 || len(line) > 16 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(line), 16, 64)
	if err != nil || n > 1<<62 {
		return 0, false
	}
	return int64(n), true
}
