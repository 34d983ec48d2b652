package ca

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/consentgate/consentgate/certs"
	"github.com/go-chi/chi/v5"
	"github.com/smallstep/certificates/acme"
	acmeapi "github.com/smallstep/certificates/acme/api"
	acmenosql "github.com/smallstep/certificates/acme/db/nosql"
	"github.com/smallstep/certificates/api"
	"github.com/smallstep/certificates/authority"
	"github.com/smallstep/certificates/db"
	"github.com/smallstep/nosql"
)

// CAServer serves an Authority over HTTPS: the ACME directory under /acme and
// the step-ca API (/1.0/sign, /roots, /provisioners, ...) the step CLI uses.
type Server struct {
	a    *Authority
	ln   net.Listener
	srv  *http.Server
	done chan error

	closeOnce sync.Once
	closeErr  error
}

// StartServer binds addr and serves in the background until Close. v says how
// the CA reaches the hosts whose ACME challenges it validates.
func (a *Authority) StartServer(addr string, v Validation) (*Server, error) {
	h, err := a.handler(v.client())
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("internal CA: %w", err)
	}
	s := &Server{a: a, ln: ln, done: make(chan error, 1)}
	s.srv = &http.Server{
		Handler:           h,
		TLSConfig:         a.serverTLS(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		// HTTP/1.1 only: closing an HTTP/2 connection gracefully waits a second
		// for the client after GOAWAY, and CA traffic is a handful of requests.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	go func() { s.done <- s.srv.ServeTLS(ln, "", "") }()
	return s, nil
}

// URL is the CA's base URL: the first DNS name with the bound port.
func (s *Server) URL() string {
	_, port, _ := net.SplitHostPort(s.ln.Addr().String())
	return "https://" + net.JoinHostPort(s.a.o.DNSNames[0], port)
}

// Directory is the ACME directory URL of the ACME provisioner.
func (s *Server) Directory() string { return s.URL() + "/acme/" + ACMEProvisioner + "/directory" }

// Close stops serving, letting requests in flight finish for up to 10 s.
// Calling it again returns the first call's result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.closeErr = s.srv.Shutdown(ctx)
		if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) {
			s.closeErr = errors.Join(s.closeErr, serr)
		}
	})
	return s.closeErr
}

// handler is the CA's routes with what smallstep's handlers expect in every
// request's context: the authority, its database, and the ACME database,
// challenge client and link builder.
func (a *Authority) handler(challenges acme.Client) (http.Handler, error) {
	store, ok := a.auth.GetDatabase().(nosql.DB)
	if !ok {
		return nil, errors.New("internal CA: the database does not support ACME")
	}
	acmeDB, err := acmenosql.New(store)
	if err != nil {
		return nil, fmt.Errorf("internal CA: ACME database: %w", err)
	}
	linker := acme.NewLinker(a.o.DNSNames[0], "acme") // a fallback: links follow the request host
	mux := chi.NewRouter()
	api.Route(mux)
	mux.Route("/1.0", func(r chi.Router) { api.Route(r) })
	mux.Route("/acme", func(r chi.Router) { acmeapi.Route(r) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := authority.NewContext(r.Context(), a.auth)
		ctx = db.NewContext(ctx, a.auth.GetDatabase())
		ctx = acme.NewContext(ctx, acmeDB, challenges, linker, nil)
		mux.ServeHTTP(w, r.WithContext(ctx))
	}), nil
}

// serverTLS is the CA server's TLS: its own certificate from the intermediate,
// and a client certificate verified if given (`step ca renew` authenticates
// with the certificate it renews).
func (a *Authority) serverTLS() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(a.h.Root)
	pool.AddCert(a.h.Intermediate)
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   certs.AEADSuites,
		NextProtos:     []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return a.serverCertificate() },
		ClientAuth:     tls.VerifyClientCertIfGiven,
		ClientCAs:      pool,
	}
}

// serverCertificate returns the CA server's certificate, issuing a new one
// when a third of its 24 hours is left.
func (a *Authority) serverCertificate() (*tls.Certificate, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.tlsCert; c != nil && time.Until(c.Leaf.NotAfter) > 8*time.Hour {
		return c, nil
	}
	c, err := a.auth.GetTLSCertificate()
	if err != nil {
		if a.tlsCert != nil && time.Now().Before(a.tlsCert.Leaf.NotAfter) {
			a.log.Error("renewing the CA server certificate failed; keeping the current one", "error", err.Error())
			return a.tlsCert, nil
		}
		return nil, err
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, err
		}
	}
	a.tlsCert = c
	return c, nil
}
