package archive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/consentgate/consentgate/audit"
)

// Retention applies a retention policy to a log's sealed segments: those sealed
// KeepLocal ago are verified, copied to Store, read back and compared, and only
// then deleted here; the store deletes them KeepArchive after they arrived.
type Retention struct {
	SegmentDir string
	Store      Store
	// PublicKey verifies a segment before it leaves: one that does not verify
	// stays here, and every attempt says why.
	PublicKey   audit.PublicKey
	KeepLocal   time.Duration
	KeepArchive time.Duration
	// Delivered is the last record every audit stream has delivered. A segment
	// holding records after it stays here until they are. Nil: no streams.
	Delivered func() uint64
	Now       func() time.Time // nil: time.Now
	Log       *slog.Logger     // nil: discard
	// Idle is how long the policy rests for each unit of time it works on a
	// segment (verifying, hashing, uploading), so that it takes at most
	// 1/(1+Idle) of a core from the gateway's calls. Zero: no rest (tests).
	Idle float64

	archived, expired, failures atomic.Uint64
}

// Stats count what Retention did since it started.
type Stats struct {
	Archived, Expired, Failures uint64
}

func (r *Retention) Stats() Stats {
	return Stats{Archived: r.archived.Load(), Expired: r.expired.Load(), Failures: r.failures.Load()}
}

// Run applies the policy now and then every interval until ctx ends.
func (r *Retention) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := r.Once(ctx); err != nil && ctx.Err() == nil {
			r.logger().Error("audit retention: a segment stays here", "archive", r.Store.String(), "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once archives the segments that are due, oldest first, stopping at the first
// that cannot go (so the local history always ends in one unbroken run), then
// deletes from the archive what it has kept for KeepArchive.
func (r *Retention) Once(ctx context.Context) error {
	segs, err := audit.Segments(r.SegmentDir)
	if err != nil {
		return err
	}
	now := r.now()
	for _, s := range segs {
		sealed, err := s.Sealed()
		if err != nil {
			r.failures.Add(1)
			return fmt.Errorf("segment %s: %w", s.Name(), err)
		}
		if now.Sub(sealed) < r.KeepLocal {
			break
		}
		if r.Delivered != nil && s.Last > r.Delivered() {
			r.logger().Warn("audit segment due for the archive stays here: a stream has not delivered it yet",
				"segment", s.Name(), "delivered_seq", r.Delivered())
			break
		}
		if err := r.archive(ctx, s, now); err != nil {
			r.failures.Add(1)
			return err
		}
	}
	return r.expire(ctx, now)
}

// archive copies s to the store unless an identical copy is there (an attempt
// that stopped before deleting), compares what the store returns, then deletes s.
func (r *Retention) archive(ctx context.Context, s audit.Segment, now time.Time) error {
	p := newPacer(r.Idle)
	if _, err := audit.VerifyDB(s.Path, r.PublicKey, audit.RequireVouched(), audit.ByBytes(), audit.Pace(p.rest)); err != nil {
		return fmt.Errorf("segment %s does not verify, so it is not archived: %w", s.Name(), err)
	}
	if d, ok := r.Store.(Dir); ok && SameFile(filepath.Join(d.Path, s.Name()), s.Path) {
		return fmt.Errorf("the archive %s is where the segments are: %s would be deleted with no copy", d.Path, s.Name())
	}
	stored, err := storedSum(ctx, r.Store, s.Name(), p)
	switch {
	case err == nil:
		// A copy is there (an attempt stopped before deleting): it must be this one.
		local, err := fileSum(s.Path, p)
		if err != nil {
			return err
		}
		if stored != local {
			return fmt.Errorf("%s already holds a different %s: the local one is kept; compare them", r.Store, s.Name())
		}
	case errors.Is(err, os.ErrNotExist):
		local, err := r.put(ctx, s, now, p)
		if err != nil {
			return err
		}
		if stored, err = storedSum(ctx, r.Store, s.Name(), p); err != nil {
			return err
		}
		if stored != local {
			return fmt.Errorf("the copy of %s in %s differs from the segment: the local one is kept", s.Name(), r.Store)
		}
	default:
		return err
	}
	if err := os.Remove(s.Path); err != nil {
		return err
	}
	if err := audit.SyncDir(r.SegmentDir); err != nil {
		return err
	}
	r.archived.Add(1)
	r.logger().Info("audit segment archived and deleted here", "segment", s.Name(), "archive", r.Store.String(),
		"first_seq", s.First, "last_seq", s.Last)
	return nil
}

// put uploads the segment, paced, and returns the SHA-256 of what it sent (of the
// file read again, if the upload did not read it once in order).
func (r *Retention) put(ctx context.Context, s audit.Segment, now time.Time, p *pacer) ([32]byte, error) {
	f, err := os.Open(s.Path)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return [32]byte{}, err
	}
	u := p.upload(f)
	if err := r.Store.Put(ctx, s.Name(), u, info.Size(), now.Add(r.KeepArchive)); err != nil {
		return [32]byte{}, err
	}
	if sum, ok := u.sum(info.Size()); ok {
		return sum, nil
	}
	return fileSum(s.Path, p)
}

// expire deletes the objects the archive has kept for KeepArchive. One it cannot
// delete (still locked: the clocks disagree) is left for the next round.
func (r *Retention) expire(ctx context.Context, now time.Time) error {
	objs, err := r.Store.List(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, o := range objs {
		if now.Sub(o.Stored) < r.KeepArchive {
			continue
		}
		if err := r.Store.Delete(ctx, o.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		r.expired.Add(1)
		r.logger().Info("archived audit segment deleted: its retention ended", "segment", o.Name, "archive", r.Store.String(),
			"stored", o.Stored)
	}
	return errors.Join(errs...)
}

func (r *Retention) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

func (r *Retention) logger() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

// SameFile reports whether a and b are one file or folder (a link, a bind mount,
// the same path).
func SameFile(a, b string) bool {
	ia, errA := os.Stat(a)
	ib, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(ia, ib)
}
