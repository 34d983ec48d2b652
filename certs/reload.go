package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// watch calls reload every interval until ctx ends. A refusal is logged once
// per distinct reason (a half-copied file is refused on every poll until the
// copy completes; the log says so once) and again when it clears.
func watch(ctx context.Context, every time.Duration, log *slog.Logger, what string, reload func(context.Context) (bool, error)) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	last := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, err := reload(ctx)
		switch {
		case err != nil && err.Error() != last:
			last = err.Error()
			log.Error("reload refused; keeping the current one", "what", what, "error", last)
		case err == nil && last != "":
			last = ""
			log.Info("reload problem cleared", "what", what)
		}
	}
}

// CABundle is a reloadable pool of CAs a vendor's server certificate must
// chain to (a profile's upstream.ca_file). Each new connection is verified
// against the pool current at its handshake; open connections are untouched.
type CABundle struct {
	name     string
	load     func(context.Context) ([]byte, error)
	now      func() time.Time
	cur      atomic.Pointer[caBundleState]
	onChange func()
}

type caBundleState struct {
	raw   []byte
	pool  *x509.CertPool
	certs []*x509.Certificate
}

// NewCABundle loads the bundle once; name says whose it is in errors.
func NewCABundle(ctx context.Context, name string, load func(context.Context) ([]byte, error)) (*CABundle, error) {
	b := &CABundle{name: name, load: load, now: time.Now}
	if _, err := b.reload(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// OnChange sets what runs after a new pool is swapped in; set it before Watch.
func (b *CABundle) OnChange(f func()) { b.onChange = f }

// Reload reads the bundle again; a bundle that does not parse, holds no
// certificate or only expired ones keeps the current pool.
func (b *CABundle) Reload(ctx context.Context) error {
	_, err := b.reload(ctx)
	return err
}

func (b *CABundle) reload(ctx context.Context) (bool, error) {
	raw, err := b.load(ctx)
	if err != nil {
		return false, fmt.Errorf("loading %s: %w", b.name, err)
	}
	if old := b.cur.Load(); old != nil && string(old.raw) == string(raw) {
		return false, nil
	}
	list, err := ParseCertificates(raw)
	if err != nil {
		return false, fmt.Errorf("%s: %w", b.name, err)
	}
	pool := x509.NewCertPool()
	valid := 0
	for _, c := range list {
		if b.now().Before(c.NotAfter) {
			valid++
		}
		pool.AddCert(c)
	}
	if valid == 0 {
		return false, fmt.Errorf("%s: every certificate in it has expired", b.name)
	}
	first := b.cur.Load() == nil
	b.cur.Store(&caBundleState{raw: raw, pool: pool, certs: list})
	if !first && b.onChange != nil {
		b.onChange()
	}
	return true, nil
}

// Certificates are the CAs of the bundle in use.
func (b *CABundle) Certificates() []*x509.Certificate { return b.cur.Load().certs }

// Watch reloads every interval until ctx ends (see ClientIdentity.Watch).
func (b *CABundle) Watch(ctx context.Context, every time.Duration, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	watch(ctx, every, log, b.name, func(ctx context.Context) (bool, error) {
		changed, err := b.reload(ctx)
		if changed {
			log.Info("CA bundle replaced", "what", b.name)
		}
		return changed, err
	})
}

// Verifier is the VerifyConnection of a client tls.Config whose built-in
// verification is switched off (InsecureSkipVerify) because its RootCAs cannot
// change: it verifies the server's chain against the current pool, and its
// name against serverName, and fails the handshake otherwise. The name is the
// configured one, not the connection state's: crypto/tls leaves that empty
// when the server is addressed by IP, and an empty name would check none.
func (b *CABundle) Verifier(serverName string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if serverName == "" {
			return errors.New("no server name to verify the certificate against")
		}
		if len(cs.PeerCertificates) == 0 {
			return errors.New("the server sent no certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
			Roots:         b.cur.Load().pool,
			Intermediates: inter,
			DNSName:       serverName,
			CurrentTime:   b.now(),
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		return err
	}
}
