package stream

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/consentgate/consentgate/audit"
)

// Syslog sends each record as an RFC 5424 message over TLS with RFC 5425's
// octet-counting frames: <PRI>1 TIME HOST consentgate - KIND - RECORD.
//
// Syslog has no acknowledgement. A batch counts as delivered once written
// and the connection is still open a moment later (ProbeWait): a receiver that
// closed it meanwhile gets the batch again on the next connection. A receiver
// that dies with bytes it had not yet read loses them; where that matters,
// use OTLP or HTTP, which acknowledge.
type Syslog struct {
	Address string
	TLS     *tls.Config
	// Hostname is the HOSTNAME field (default: this machine's name); Facility
	// the syslog facility (default 13, log audit).
	Hostname  string
	Facility  int
	ProbeWait time.Duration // default 10ms

	mu   sync.Mutex
	conn *tls.Conn
}

func (s *Syslog) Send(ctx context.Context, lines []audit.Line) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil && !s.alive(0) {
		s.drop()
	}
	if s.conn == nil {
		d := tls.Dialer{Config: s.TLS}
		c, err := d.DialContext(ctx, "tcp", s.Address)
		if err != nil {
			return err
		}
		s.conn = c.(*tls.Conn)
	}
	if dl, ok := ctx.Deadline(); ok {
		s.conn.SetWriteDeadline(dl)
	}
	// A stop must not wait for a receiver that does not read.
	conn := s.conn
	defer context.AfterFunc(ctx, func() { conn.SetWriteDeadline(time.Now()) })()
	if _, err := s.conn.Write(s.frames(lines)); err != nil {
		s.drop()
		return err
	}
	if !s.alive(cmp.Or(s.ProbeWait, 10*time.Millisecond)) {
		s.drop()
		return errors.New("the receiver closed the connection: the batch is sent again")
	}
	return nil
}

// alive reads with a short deadline: a receiver never writes, so a timeout
// means the connection is open and anything else that it is not.
func (s *Syslog) alive(wait time.Duration) bool {
	s.conn.SetReadDeadline(time.Now().Add(max(wait, time.Millisecond)))
	var b [1]byte
	_, err := s.conn.Read(b[:])
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (s *Syslog) drop() {
	s.conn.Close()
	s.conn = nil
}

// frames writes each line as "<length> <message>".
func (s *Syslog) frames(lines []audit.Line) []byte {
	host := s.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	pri := strconv.Itoa(cmp.Or(s.Facility, 13)*8 + 6) // informational
	var out, msg bytes.Buffer
	for _, l := range lines {
		m := metaOf(l)
		msg.Reset()
		fmt.Fprintf(&msg, "<%s>1 %s %s consentgate - %s - ", pri, m.Time.UTC().Format("2006-01-02T15:04:05.000000Z"),
			printable(host, 255), printable(m.Kind, 32))
		msg.Write(l.Data)
		out.WriteString(strconv.Itoa(msg.Len()))
		out.WriteByte(' ')
		out.Write(msg.Bytes())
	}
	return out.Bytes()
}

func (s *Syslog) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		s.drop()
	}
	return nil
}

// printable is s as an RFC 5424 header field: printable US-ASCII, at most n
// characters, "-" when empty.
func printable(s string, n int) string {
	b := make([]byte, 0, min(len(s), n))
	for i := 0; i < len(s) && len(b) < n; i++ {
		if s[i] > 32 && s[i] < 127 {
			b = append(b, s[i])
		}
	}
	if len(b) == 0 {
		return "-"
	}
	return string(b)
}
