package sandbox

import (
	"bytes"
	"cmp"
	"crypto/tls"
	"maps"
	"net"
	"net/http"
	"strconv"
	"time"
)

// FaultKind is how a sandbox misbehaves.
type FaultKind int

const (
	// FaultNone: the sandbox answers as its vendor documents.
	FaultNone FaultKind = iota
	// FaultHang reads the request and never answers, until the caller gives up or the
	// sandbox closes.
	FaultHang
	// FaultDrop resets the TCP connection without answering.
	FaultDrop
	// FaultReset sends the status, the headers and the first Cut bytes of the vendor's
	// real answer, then resets the TCP connection.
	FaultReset
	// FaultTrickle sends the vendor's real answer slowly: Chunk bytes of the body every
	// Interval.
	FaultTrickle
	// FaultAnswer answers Status, ContentType and Body to every request: a 5xx, an HTML
	// error page, malformed or truncated JSON.
	FaultAnswer
)

// Fault makes a sandbox misbehave the way real vendors sometimes do, for reliability
// tests. The zero Fault is none. FaultReset and FaultTrickle cut or slow the vendor's
// real answer, refusals included, sent uncompressed so that what a cut leaves is
// readable; the other kinds answer whatever the request carries.
type Fault struct {
	Kind        FaultKind
	Cut         int           // FaultReset: body bytes sent before the reset
	Chunk       int           // FaultTrickle: body bytes per write; default 1
	Interval    time.Duration // FaultTrickle: pause between writes; default 100 ms
	Status      int           // FaultAnswer: default 200
	ContentType string        // FaultAnswer: default application/json
	Body        []byte        // FaultAnswer
	// Certificate, when set, is served in the TLS handshake instead of the sandbox's
	// own (one from another CA, or for another host name), with any Kind.
	Certificate *tls.Certificate
}

// SetFault makes the sandbox misbehave from the next request on; SetFault(Fault{}) ends
// it. A certificate fault applies from the next handshake: a caller keeps using a
// connection it already holds until it opens a new one.
func (s *Server) SetFault(f Fault) { s.fault.Store(&f) }

type connKey struct{}

// resetConn closes the request's TCP connection with an RST, as a crashing vendor
// host or a middlebox does.
func resetConn(r *http.Request) {
	c, ok := r.Context().Value(connKey{}).(net.Conn)
	if !ok {
		return
	}
	// Under TLS: the TCP connection, so no close_notify alert goes out first.
	raw := c
	if tc, ok := c.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		tcp.SetLinger(0)
	}
	raw.Close()
}

// misbehave answers r as the fault says. The request is recorded like any other; with
// no answer at all (hang, drop) its status is 0.
func (s *Server) misbehave(w *recordingWriter, r *http.Request, next http.Handler, f *Fault) {
	switch f.Kind {
	case FaultHang:
		w.commit(0)
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
	case FaultDrop:
		w.commit(0)
		resetConn(r)
	case FaultAnswer:
		writeBody(w, cmp.Or(f.Status, http.StatusOK), cmp.Or(f.ContentType, "application/json"), f.Body)
	case FaultReset, FaultTrickle:
		r.Header.Del("Accept-Encoding")
		ans := &bufferedAnswer{header: http.Header{}}
		next.ServeHTTP(ans, r)
		body := ans.body.Bytes()
		maps.Copy(w.Header(), ans.header)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(cmp.Or(ans.status, http.StatusOK))
		rc := http.NewResponseController(w)
		if f.Kind == FaultReset {
			w.Write(body[:min(f.Cut, len(body))])
			rc.Flush()
			// Let the caller read what was sent, so the reset lands mid-body rather
			// than discarding the bytes in flight.
			s.pause(r, 100*time.Millisecond)
			resetConn(r)
			return
		}
		chunk, every := cmp.Or(f.Chunk, 1), cmp.Or(f.Interval, 100*time.Millisecond)
		for len(body) > 0 {
			n := min(chunk, len(body))
			if _, err := w.Write(body[:n]); err != nil {
				return
			}
			rc.Flush()
			if body = body[n:]; len(body) > 0 && !s.pause(r, every) {
				return
			}
		}
	}
}

// pause waits d and reports whether the request and the sandbox are still there.
func (s *Server) pause(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-s.closing:
	}
	return false
}

// bufferedAnswer holds a handler's answer for a fault to send as it pleases.
type bufferedAnswer struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (a *bufferedAnswer) Header() http.Header { return a.header }

func (a *bufferedAnswer) WriteHeader(status int) {
	if a.status == 0 {
		a.status = status
	}
}

func (a *bufferedAnswer) Write(b []byte) (int, error) {
	a.WriteHeader(http.StatusOK)
	return a.body.Write(b)
}
