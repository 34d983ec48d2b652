package stream

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/consentgate/consentgate/audit"
)

// Source is the audit log a stream reads (*audit.Log).
type Source interface {
	LogID() string
	Head() audit.Head
	Lines(after uint64, max int) ([]audit.Line, error)
}

// Sink delivers records to one receiver. Send returns nil only once the
// receiver has the whole batch; on an error the same records (and perhaps
// more) come again, so a receiver may see a record twice but never miss one.
type Sink interface {
	Send(ctx context.Context, lines []audit.Line) error
	Close() error
}

// Stream delivers the records of Source to Sink from Cursor on.
type Stream struct {
	Name   string
	Source Source
	Sink   Sink
	Cursor *Cursor
	// Batch is the most records sent at once (default 500); Poll is how often
	// an idle stream looks for new ones (default 200ms); SendTimeout bounds one
	// batch (default 30s); backoff after a failure doubles from MinBackoff
	// (default 500ms) to MaxBackoff (default 30s).
	Batch                  int
	Poll, SendTimeout      time.Duration
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger

	acked, delivered, failures atomic.Uint64
	up                         atomic.Bool
}

// Stats is what a stream has done since it started, for metrics.
type Stats struct {
	Acked     uint64 // the last sequence number the receiver acknowledged
	Lag       uint64 // records committed and not yet acknowledged
	Delivered uint64 // records acknowledged
	Failures  uint64 // batches that failed
	Up        bool   // the last batch was acknowledged
}

// Stats reads the stream's counters.
func (s *Stream) Stats() Stats {
	acked, head := s.acked.Load(), s.Source.Head().Seq
	st := Stats{Acked: acked, Delivered: s.delivered.Load(), Failures: s.failures.Load(), Up: s.up.Load()}
	if head > acked {
		st.Lag = head - acked
	}
	return st
}

// Run delivers records until ctx ends; it returns an error only when the
// cursor cannot be read or written (a delivery failure is retried forever,
// and shows as lag and failures).
func (s *Stream) Run(ctx context.Context) error {
	defer s.up.Store(false) // a stream that stops is down, whatever its last batch did
	logID := s.Source.LogID()
	acked, err := s.Cursor.Load(logID)
	if err != nil {
		return err
	}
	if head := s.Source.Head().Seq; acked > head {
		// The log was put back from a backup: the records written after it
		// under the same numbers would be skipped.
		return fmt.Errorf("audit stream %s: its cursor (%d) is past the log's head (%d): was audit.db restored? "+
			"Remove %s to send the log again from its first record", s.Name, acked, head, s.Cursor.path)
	}
	s.acked.Store(acked)
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		lines, err := s.Source.Lines(acked, cmp.Or(s.Batch, 500))
		var pruned *audit.PrunedError
		switch {
		case errors.As(err, &pruned) && pruned.Oldest > acked+1:
			// Only a stream added after its records were archived gets here: the
			// retention policy keeps what a configured stream has not delivered.
			s.log().Warn("audit stream: records it never delivered have been archived and left this node; it goes on from the oldest here",
				"stream", s.Name, "from_seq", acked+1, "to_seq", pruned.Oldest-1)
			acked = pruned.Oldest - 1
			s.acked.Store(acked)
			continue
		case err != nil:
			// A file being swapped, a disk error: tried again, shown as a failure.
			s.failures.Add(1)
			s.up.Store(false)
			s.log().Warn("audit stream: reading the log failed; trying again", "stream", s.Name, "after_seq", acked, "error", err.Error())
			wait(ctx, cmp.Or(s.MinBackoff, 500*time.Millisecond))
			continue
		}
		if len(lines) == 0 {
			wait(ctx, cmp.Or(s.Poll, 200*time.Millisecond))
			continue
		}
		if err := s.send(ctx, lines); err != nil {
			if ctx.Err() != nil {
				break
			}
			backoff = min(max(2*backoff, cmp.Or(s.MinBackoff, 500*time.Millisecond)), cmp.Or(s.MaxBackoff, 30*time.Second))
			s.failures.Add(1)
			s.up.Store(false)
			s.log().Warn("audit stream: batch not delivered; it is sent again", "stream", s.Name,
				"from_seq", lines[0].Seq, "records", len(lines), "retry_in", backoff.String(), "error", err.Error())
			wait(ctx, backoff)
			continue
		}
		backoff = 0
		acked = lines[len(lines)-1].Seq
		if err := s.Cursor.Save(logID, acked); err != nil {
			return fmt.Errorf("audit stream %s: %w", s.Name, err)
		}
		s.acked.Store(acked)
		s.delivered.Add(uint64(len(lines)))
		s.up.Store(true)
	}
	return nil
}

func (s *Stream) send(ctx context.Context, lines []audit.Line) error {
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(s.SendTimeout, 30*time.Second))
	defer cancel()
	return s.Sink.Send(ctx, lines)
}

func (s *Stream) log() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
