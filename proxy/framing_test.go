package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/certs"
)

// refusedAt reads stream as net/http does, request by request, and returns
// the offset of the first request whose framing is ambiguous, or -1 if there
// is none before net/http itself fails (or a CONNECT turns the rest into a
// tunnel). next is where net/http stopped understanding the stream.
func refusedAt(stream []byte) (at, headEnd, next int) {
	off := 0
	for off < len(stream) {
		// The raw header, before net/http merges or drops anything.
		rest := stream[off:]
		tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(rest)))
		line, err := tp.ReadLine()
		for err == nil && line == "" {
			line, err = tp.ReadLine()
		}
		if err != nil {
			return -1, 0, off
		}
		hdr, err := tp.ReadMIMEHeader()
		if err != nil {
			return -1, 0, off
		}
		cl, te := len(hdr["Content-Length"]), len(hdr["Transfer-Encoding"])
		if cl > 1 || (cl > 0 && te > 0) || (te > 0 && !strings.HasSuffix(line, " HTTP/1.1")) || folded(rest) {
			// The head ends at the first empty line after the request line
			// (empty lines before it are allowed and released).
			lead := len(rest) - len(bytes.TrimLeft(rest, "\r\n"))
			head := rest[lead:]
			end := bytes.Index(head, []byte("\n\r\n"))
			if e := bytes.Index(head, []byte("\n\n")); e >= 0 && (end < 0 || e < end) {
				end = e
			}
			return off, off + lead + end + 2, off
		}
		cr := &countingReader{r: bytes.NewReader(rest)}
		br := bufio.NewReader(cr)
		req, err := http.ReadRequest(br)
		if err != nil {
			return -1, 0, off
		}
		if req.Method == http.MethodConnect {
			return -1, 0, off
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return -1, 0, off
		}
		off += cr.n - br.Buffered()
	}
	return -1, 0, off
}

// folded reports whether the first request head in stream has a folded line
// (obs-fold), which net/http joins to the field above and the guard refuses.
func folded(stream []byte) bool {
	lines := strings.Split(string(stream), "\n")
	for len(lines) > 0 && strings.TrimSuffix(lines[0], "\r") == "" {
		lines = lines[1:]
	}
	for _, l := range lines[min(1, len(lines)):] {
		l = strings.TrimSuffix(l, "\r")
		if l == "" {
			return false
		}
		if l[0] == ' ' || l[0] == '\t' {
			return true
		}
	}
	return false
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// scan feeds stream to a scanner in pieces of size step and returns how many
// bytes it released and the error it found.
func scan(stream []byte, step int) (int, error) {
	s := requestScanner{maxHead: 1 << 20}
	released := 0
	for i := 0; i < len(stream); i += step {
		out, err := s.feed(nil, stream[i:min(i+step, len(stream))])
		released += len(out)
		if err != nil {
			return released, err
		}
	}
	return released, nil
}

// The scanner must find exactly the request net/http would have resolved on
// its own, after releasing every request before it and none of its head, and
// must not refuse anything net/http reads unambiguously.
func checkScanner(t *testing.T, stream []byte) {
	at, headEnd, next := refusedAt(stream)
	for _, step := range []int{len(stream) + 1, 1, 7} {
		released, err := scan(stream, step)
		switch {
		case at >= 0 && err == nil:
			t.Fatalf("step %d: request at %d not refused in %q", step, at, stream)
		case at >= 0 && (released < at || released >= headEnd):
			t.Fatalf("step %d: released %d bytes, want from %d to before %d in %q", step, released, at, headEnd, stream)
		case at < 0 && err != nil && released < next:
			t.Fatalf("step %d: refused (%v) at %d, before %d where net/http stops, in %q", step, err, released, next, stream)
		}
	}
}

var framingSeeds = []string{
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n" +
		"POST / HTTP/1.1\r\nHost: a\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 40\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 1\r\n\r\n" +
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
	"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"\r\nGET / HTTP/1.1\nHost: a\nX: b\n c\n\n" + "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx",
	"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
	// Issue 14 finding 4: a folded or unreadable framing header used to switch
	// the guard to passthrough for the rest of the connection, after which
	// smuggling requests went through.
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n 3\r\n\r\nabc" +
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\tchunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: x3\r\n\r\n" +
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" +
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
}

func TestRequestScanner(t *testing.T) {
	for _, s := range framingSeeds {
		checkScanner(t, []byte(s))
	}
	// The seeds must exercise both outcomes, or the check proves nothing.
	var refused, clean int
	for _, s := range framingSeeds {
		if at, _, _ := refusedAt([]byte(s)); at >= 0 {
			refused++
		} else {
			clean++
		}
	}
	if refused < 5 || clean < 3 {
		t.Fatalf("seeds: %d refused, %d clean", refused, clean)
	}
}

func FuzzRequestScanner(f *testing.F) {
	for _, s := range framingSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		if len(stream) > 4096 {
			return
		}
		checkScanner(t, stream)
	})
}

// tlsPipe is a TLS connection pair over memory, the server side wrapped as
// the guard listener wraps HTTP/1.x connections.
func tlsPipe(t *testing.T) (*framingConn, *tls.Conn) {
	t.Helper()
	ca, err := certs.NewCA(pkix.Name{CommonName: "framing test CA"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, key, err := ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "gateway"}, DNSNames: []string{"gateway"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	server := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Raw}, PrivateKey: key}}})
	client := tls.Client(b, &tls.Config{ServerName: "gateway", RootCAs: pool})
	go client.Handshake()
	if err := server.Handshake(); err != nil {
		t.Fatal(err)
	}
	return &framingConn{Conn: server, scan: requestScanner{maxHead: 1 << 16}, log: slog.New(slog.DiscardHandler)}, client
}

// A kept-alive connection waiting for its next request holds no buffer of
// its own: a fleet of idle app connections costs what TLS and net/http keep.
func TestIdleFramingConnHoldsNoBuffer(t *testing.T) {
	fc, client := tlsPipe(t)
	req := "GET /v/kb/identity HTTP/1.1\r\nHost: gateway\r\nContent-Length: 5\r\n\r\nhello"
	go client.Write([]byte(req))
	var got []byte
	p := make([]byte, 7) // smaller than the request: it is handed over in parts
	for len(got) < len(req) {
		n, err := fc.Read(p)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p[:n]...)
	}
	if string(got) != req {
		t.Fatalf("read %q, want %q", got, req)
	}
	if fc.readyAt != nil || len(fc.ready) != 0 {
		t.Fatalf("after the request was read the connection holds %d bytes of buffer", cap(*fc.readyAt))
	}
	// net/http ends its background read by setting a deadline in the past:
	// nothing is read then, and nothing is kept for it.
	fc.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := fc.Read(p); err == nil {
		t.Fatal("a read past its deadline returned no error")
	}
	if fc.readyAt != nil {
		t.Errorf("an interrupted read left the connection holding %d bytes of buffer", cap(*fc.readyAt))
	}
}
