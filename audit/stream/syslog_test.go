package stream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/audit"
	"github.com/consentgate/consentgate/certs"
	"github.com/consentgate/consentgate/internal/rsyslogdev"
	"github.com/consentgate/consentgate/internal/tier"
)

func startRsyslog(t *testing.T) *rsyslogdev.Server {
	t.Helper()
	tier.Needs(t, "rsyslog")
	s, err := rsyslogdev.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// An RFC 5424 message as consentgate frames it: facility log audit (13),
// severity informational, the record's time to the microsecond, the node, the
// app name, no process id, the kind as message id, no structured data, and
// the record's export line as the message.
var syslogMessage = regexp.MustCompile(`^<110>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z node-1 consentgate - (\w+) - (\{.*\})$`)

// received maps the sequence numbers rsyslog got to their lines and counts
// how many arrived more than once; a message that is not consentgate's frame,
// or whose record differs from the stored line, fails the test.
func received(t *testing.T, s *rsyslogdev.Server, stored map[uint64]string) (got map[uint64]bool, dups int) {
	t.Helper()
	msgs, err := s.Messages()
	if err != nil {
		t.Fatal(err)
	}
	got = map[uint64]bool{}
	for _, m := range msgs {
		parts := syslogMessage.FindStringSubmatch(m)
		if parts == nil {
			t.Fatalf("rsyslog got %.300q: not an RFC 5424 message of consentgate's", m)
		}
		seq := seqOf(t, parts[2])
		if want, ok := stored[seq]; ok && want != parts[2] {
			t.Fatalf("record %d arrived as %s, stored as %s", seq, parts[2], want)
		}
		if got[seq] {
			dups++
		}
		got[seq] = true
	}
	return got, dups
}

func syslogStream(s *rsyslogdev.Server, l Source, cursor string) *Stream {
	return &Stream{Name: "siem", Source: l, Cursor: NewCursor(cursor), Batch: 100, MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		Sink: &Syslog{Address: s.Addr, TLS: s.TLS(), Hostname: "node-1"}}
}

// Every record reaches rsyslog once, in order, as its stored line; a stream
// started again resumes at its cursor.
func TestSyslogDeliversEveryRecordInOrder(t *testing.T) {
	rs := startRsyslog(t)
	l := openLog(t)
	appendN(t, l, 250)
	cursor := filepath.Join(t.TempDir(), "siem.cursor")
	stop := run(t, syslogStream(rs, l, cursor))
	stored := lines(t, l)
	eventually(t, 10*time.Second, "rsyslog has every record", func() bool {
		got, _ := received(t, rs, stored)
		return len(got) == len(stored)
	})
	stop()
	appendN(t, l, 10)
	run(t, syslogStream(rs, l, cursor))
	stored = lines(t, l)
	eventually(t, 10*time.Second, "rsyslog has the records added while the stream was stopped", func() bool {
		got, _ := received(t, rs, stored)
		return len(got) == len(stored)
	})
	msgs, _ := rs.Messages()
	var last uint64
	for _, m := range msgs {
		seq := seqOf(t, syslogMessage.FindStringSubmatch(m)[2])
		if seq <= last {
			t.Fatalf("record %d after %d: out of order or sent again after a clean restart", seq, last)
		}
		last = seq
	}
}

// The receiver goes away for a while under load (CONSENTGATE_OUTAGE, default
// 10s; make reliability runs a minute): records keep being written, the stream
// shows lag and failures, and once rsyslog is back every record arrives: none
// lost, a few perhaps twice.
func TestSyslogReceiverAwayUnderLoad(t *testing.T) {
	outage := 10 * time.Second
	if d, err := time.ParseDuration(os.Getenv("CONSENTGATE_OUTAGE")); err == nil {
		outage = d
	}
	rs := startRsyslog(t)
	l := openLog(t)
	s := syslogStream(rs, l, filepath.Join(t.TempDir(), "siem.cursor"))
	run(t, s)
	ctx, stopLoad := context.WithCancel(context.Background())
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		for ctx.Err() == nil {
			appendN(t, l, 20)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	time.Sleep(time.Second)
	rs.Stop()
	time.Sleep(outage)
	if st := s.Stats(); st.Lag == 0 || st.Failures == 0 || st.Up {
		t.Errorf("while the receiver is away: %+v; want lag, failures, down", st)
	}
	if err := rs.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	stopLoad()
	<-loaded
	stored := lines(t, l)
	eventually(t, 30*time.Second, "every record arrived after the outage", func() bool {
		got, _ := received(t, rs, stored)
		return len(got) == len(stored)
	})
	got, dups := received(t, rs, stored)
	for seq := range stored {
		if !got[seq] {
			t.Errorf("record %d lost", seq)
		}
	}
	if st := s.Stats(); st.Lag != 0 || !st.Up {
		t.Errorf("after the outage: %+v", st)
	}
	t.Logf("%d records, %d sent twice, outage %s", len(stored), dups, outage)
}

// A receiver that accepts and never reads: stopping the stream does not wait
// for the send timeout.
func TestSyslogStopsPromptlyWhenTheReceiverDoesNotRead(t *testing.T) {
	ca, err := certs.NewCA(pkix.Name{CommonName: "test"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue(&x509.Certificate{Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake() // and then never a read
			defer c.Close()
		}
	}()
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	// More than the socket buffers hold (a few MB on loopback): the write
	// blocks. Without the cancel it would take the two minutes of the context;
	// building 24 MB of frames under -race on a busy machine takes seconds.
	big := audit.Line{Seq: 1, Data: []byte(`{"seq":1,"kind":"outcome","time":"2026-12-06T10:00:00Z","error":"` + strings.Repeat("x", 1<<20) + `"}`)}
	batch := make([]audit.Line, 24)
	for i := range batch {
		batch[i] = big
	}
	sink := &Syslog{Address: ln.Addr().String(), TLS: &tls.Config{RootCAs: pool}, Hostname: "node-1"}
	defer sink.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	time.AfterFunc(500*time.Millisecond, cancel)
	start := time.Now()
	err = sink.Send(ctx, batch)
	if took := time.Since(start); err == nil || took > 20*time.Second {
		t.Errorf("Send to a receiver that does not read: %v after %s; want an error soon after the cancel", err, took)
	}
}
