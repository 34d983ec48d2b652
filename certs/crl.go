package certs

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync/atomic"
	"time"
)

// Revocation errors: a certificate the issuer revoked; one whose status
// cannot be known (no current CRL, or no answer); one the CRL does not speak
// for (another issuer signed it), which failing open never lets through.
var (
	ErrRevoked           = errors.New("certificate revoked")
	ErrRevocationUnknown = errors.New("revocation status unknown")
	ErrNotCovered        = errors.New("certificate not covered by the CRL")
)

// crlClockSkew is how far in the future a CRL's ThisUpdate may lie.
const crlClockSkew = 5 * time.Minute

// RevocationList keeps a CA's CRL current: it is fetched again every
// refresh, taken only when its issuer signed it, and checked from memory on
// every use. A certificate is refused when the CRL lists it, when the CRL's
// issuer did not issue it, and, failing closed, when no CRL is current: none
// was ever fetched, or the last one is past its NextUpdate (the CA has been
// out of reach that long).
type RevocationList struct {
	name   string
	issuer *x509.Certificate
	fetch  func(context.Context) ([]byte, error)
	now    func() time.Time
	cur    atomic.Pointer[crlState]
}

type crlState struct {
	list    *x509.RevocationList
	revoked map[string]bool // serial numbers (serialKey)
}

// NewRevocationList reads issuer's CRL (DER or PEM) with fetch; name says
// where from in logs and errors. Call Refresh or Watch to fetch it.
func NewRevocationList(name string, issuer *x509.Certificate, fetch func(context.Context) ([]byte, error)) *RevocationList {
	return &RevocationList{name: name, issuer: issuer, fetch: fetch, now: time.Now}
}

// Refresh fetches the CRL and puts it in service if its issuer signed it, it
// is not dated in the future, and it is not older than the one in service
// (by number and date): a stale or foreign CRL cannot displace a current one.
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
	if err := list.CheckSignatureFrom(l.issuer); err != nil {
		return fmt.Errorf("%s: not signed by %s: %w", l.name, l.issuer.Subject, err)
	}
	if list.ThisUpdate.After(l.now().Add(crlClockSkew)) {
		return fmt.Errorf("%s: the CRL is dated in the future (%s)", l.name, list.ThisUpdate.UTC().Format(time.RFC3339))
	}
	if old := l.cur.Load(); old != nil && (list.ThisUpdate.Before(old.list.ThisUpdate) ||
		list.Number != nil && old.list.Number != nil && list.Number.Cmp(old.list.Number) < 0) {
		return fmt.Errorf("%s: the CRL fetched (number %v, of %s) is older than the one in service (number %v, of %s)", l.name,
			list.Number, list.ThisUpdate.UTC().Format(time.RFC3339), old.list.Number, old.list.ThisUpdate.UTC().Format(time.RFC3339))
	}
	st := &crlState{list: list, revoked: map[string]bool{}}
	for _, e := range list.RevokedCertificateEntries {
		var buf [serialBytes]byte
		st.revoked[string(serialKey(&buf, e.SerialNumber))] = true
	}
	l.cur.Store(st)
	return nil
}

// Check reports whether leaf, issued by issuer (from its verified chain),
// may be used: nil, ErrRevoked, ErrNotCovered, or ErrRevocationUnknown.
func (l *RevocationList) Check(leaf, issuer *x509.Certificate) error {
	if issuer == nil || !issuer.Equal(l.issuer) {
		return fmt.Errorf("%w: %s was not issued by %s, whose CRL is %s", ErrNotCovered, leaf.Subject, l.issuer.Subject, l.name)
	}
	st := l.cur.Load()
	switch {
	case st == nil:
		return fmt.Errorf("%w: %s was never fetched", ErrRevocationUnknown, l.name)
	case l.now().After(st.list.NextUpdate):
		return fmt.Errorf("%w: the CRL from %s expired at %s", ErrRevocationUnknown, l.name, st.list.NextUpdate.UTC().Format(time.RFC3339))
	}
	// Checked on every request of an app's connection: no allocation.
	var buf [serialBytes]byte
	if st.revoked[string(serialKey(&buf, leaf.SerialNumber))] {
		return fmt.Errorf("%w: serial %s", ErrRevoked, leaf.SerialNumber)
	}
	return nil
}

// NextUpdate is when the CRL in service expires; false before any was fetched.
func (l *RevocationList) NextUpdate() (time.Time, bool) {
	if st := l.cur.Load(); st != nil {
		return st.list.NextUpdate, true
	}
	return time.Time{}, false
}

// Issuer is the certificate that signs the CRL.
func (l *RevocationList) Issuer() *x509.Certificate { return l.issuer }

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

// serialBytes is room for any serial number RFC 5280 allows (20 octets) and
// more; a longer one is keyed by its decimal text.
const serialBytes = 32

// serialKey is n as a map key, in buf when it fits.
func serialKey(buf *[serialBytes]byte, n *big.Int) []byte {
	if n.Sign() >= 0 && n.BitLen() <= 8*serialBytes {
		return n.FillBytes(buf[:])
	}
	return []byte("text:" + n.String())
}
