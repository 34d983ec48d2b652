package main

import (
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/consentgate/consentgate/certs"
)

// inbox stands, in dev, for the app that receives vendor callbacks: it logs
// what arrives and keeps it for tests. On /siem it stands for a SIEM instead:
// the dev audit stream's JSON lines are counted there, not kept.
type inbox struct {
	url string
	srv *http.Server

	mu       sync.Mutex
	received []inboxMessage
	// siemRecords counts the audit records the dev SIEM stream delivered.
	siemRecords atomic.Int64
}

type inboxMessage struct {
	Path   string
	Header http.Header
	Body   string
}

func startInbox(pki *certs.DevPKI, log *slog.Logger) (*inbox, error) {
	pair, err := tls.LoadX509KeyPair(pki.Path(certs.DevSandboxCert), certs.KeyFile(pki.Path(certs.DevSandboxCert)))
	if err != nil {
		return nil, err
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, err
	}
	in := &inbox{url: "https://" + ln.Addr().(*net.TCPAddr).String()}
	in.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		if r.URL.Path == "/siem" {
			n := bytes.Count(body, []byte("\n"))
			in.siemRecords.Add(int64(n))
			log.Debug("dev SIEM: audit records received", "records", n)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		in.mu.Lock()
		in.received = append(in.received, inboxMessage{Path: r.URL.Path, Header: r.Header.Clone(), Body: string(body)})
		in.mu.Unlock()
		log.Info("dev app inbox: callback received", "path", r.URL.Path, "vendor", r.Header.Get("X-Consentgate-Vendor"), "bytes", len(body))
		w.WriteHeader(http.StatusNoContent)
	})}
	go in.srv.Serve(ln)
	return in, nil
}

func (in *inbox) messages() []inboxMessage {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]inboxMessage(nil), in.received...)
}

func (in *inbox) close() { in.srv.Close() }
