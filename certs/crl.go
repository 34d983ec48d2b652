package certs

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// Revocation errors: a certificate the issuer revoked, and one whose status
// cannot be known (no current CRL).
var (
	ErrRevoked           = errors.New("certificate revoked")
	ErrRevocationUnknown = errors.New("revocation status unknown")
)

// RevocationList keeps a CA's CRL current: it is fetched again every
// refresh and checked on every handshake from memory. A certificate is
// refused when the CRL lists it, and also, failing closed, when no CRL is
// current: none was ever fetched, or the last one fetched is past its
// NextUpdate (the CA has been out of reach for that long).
type RevocationList struct {
	name  string
	fetch func(context.Context) ([]byte, error)
	now   func() time.Time
	cur   atomic.Pointer[crlState]
}

type crlState struct {
	list    *x509.RevocationList
	revoked map[string]bool // serial numbers, decimal
	fetched time.Time
}

// NewRevocationList reads a CRL (DER or PEM) with fetch; name says where
// from in logs and errors. Call Refresh or Watch to fetch it.
func NewRevocationList(name string, fetch func(context.Context) ([]byte, error)) *RevocationList {
	return &RevocationList{name: name, fetch: fetch, now: time.Now}
}

// Refresh fetches the CRL and puts it in service if it parses and is not
// older than the one in service. Its signature is checked per certificate,
// against that certificate's issuer (Check).
func (l *RevocationList) Refresh(ctx context.Context) error {
	data, err := l.fetch(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", l.name, err)
	}
	if block, _ := pem.Decode(data); block != nil {
		data = block.Bytes
	}
	list, err := x509.ParseRevocationList(data)
	if err != nil {
		return fmt.Errorf("%s: %w", l.name, err)
	}
	if old := l.cur.Load(); old != nil && list.ThisUpdate.Before(old.list.ThisUpdate) {
		return fmt.Errorf("%s: the CRL fetched (of %s) is older than the one in service (of %s)", l.name,
			list.ThisUpdate.UTC().Format(time.RFC3339), old.list.ThisUpdate.UTC().Format(time.RFC3339))
	}
	st := &crlState{list: list, revoked: map[string]bool{}, fetched: l.now()}
	for _, e := range list.RevokedCertificateEntries {
		st.revoked[e.SerialNumber.String()] = true
	}
	l.cur.Store(st)
	return nil
}

// Check reports whether leaf, issued by issuer, may be used: nil, ErrRevoked,
// or ErrRevocationUnknown (wrapped with why).
func (l *RevocationList) Check(leaf, issuer *x509.Certificate) error {
	st := l.cur.Load()
	switch {
	case st == nil:
		return fmt.Errorf("%w: %s was never fetched", ErrRevocationUnknown, l.name)
	case l.now().After(st.list.NextUpdate):
		return fmt.Errorf("%w: the CRL from %s expired at %s", ErrRevocationUnknown, l.name, st.list.NextUpdate.UTC().Format(time.RFC3339))
	case !bytes.Equal(st.list.RawIssuer, leaf.RawIssuer):
		return fmt.Errorf("%w: the CRL from %s is not of %s's issuer", ErrRevocationUnknown, l.name, leaf.Subject)
	}
	if err := st.list.CheckSignatureFrom(issuer); err != nil {
		return fmt.Errorf("%w: the CRL from %s is not signed by %s: %v", ErrRevocationUnknown, l.name, issuer.Subject, err)
	}
	if st.revoked[leaf.SerialNumber.String()] {
		return fmt.Errorf("%w: serial %s", ErrRevoked, leaf.SerialNumber)
	}
	return nil
}

// Status is what /readyz and `certs status` say of the list.
func (l *RevocationList) Status() error {
	st := l.cur.Load()
	switch {
	case st == nil:
		return fmt.Errorf("%s: never fetched: every client certificate is refused", l.name)
	case l.now().After(st.list.NextUpdate):
		return fmt.Errorf("%s: expired at %s: every client certificate is refused", l.name, st.list.NextUpdate.UTC().Format(time.RFC3339))
	}
	return nil
}

// Watch refreshes every interval until ctx ends, logging a failure once
// until it changes.
func (l *RevocationList) Watch(ctx context.Context, every time.Duration, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	watch(ctx, every, log, l.name, func(ctx context.Context) (bool, error) { return true, l.Refresh(ctx) })
}
