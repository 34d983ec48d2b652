package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Line is one record as export and streams carry it: its canonical line.
type Line struct {
	Seq  uint64
	Data []byte
}

// Lines returns up to max records after sequence number after, oldest first,
// as their export lines: what a stream to a SIEM sends. Records in a sealed
// segment come from it, a segment's worth at most per call; records no longer
// on this node are an error wrapping ErrPruned.
func (l *Log) Lines(after uint64, max int) ([]Line, error) {
	var out []Line
	err := l.viewAt(after+1, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRecords).Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < max; k, v = c.Next() {
			out = append(out, Line{Seq: seqOf(k), Data: append([]byte(nil), v...)})
		}
		return nil
	})
	return out, err
}

// Tail writes, as export lines, the records after sequence number after (at most
// max), waiting up to wait for the first one to be committed: a long poll, so
// `consentgate audit tail` follows a running gateway without a standing stream.
// It returns the sequence number of the last record written (after, if none).
func (l *Log) Tail(ctx context.Context, w io.Writer, after uint64, max int, wait time.Duration) (uint64, error) {
	deadline := time.Now().Add(wait)
	for l.Head().Seq <= after && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return after, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	lines, err := l.Lines(after, max)
	if err != nil || len(lines) == 0 {
		return after, err
	}
	var b []byte
	for _, ln := range lines {
		b = append(append(b, ln.Data...), '\n')
	}
	_, err = w.Write(b)
	return lines[len(lines)-1].Seq, err
}

// viewAt runs fn in a read transaction of the file that holds record seq: the
// active one, or a sealed segment.
func (l *Log) viewAt(seq uint64, fn func(*bolt.Tx) error) error {
	l.dbMu.RLock()
	if first := l.segFirst; seq < first {
		l.dbMu.RUnlock()
		return viewSegment(l.segDir, seq, first, fn)
	}
	defer l.dbMu.RUnlock()
	if l.db == nil {
		return fmt.Errorf("%w: no active file", ErrUnavailable)
	}
	err := l.db.View(fn)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// viewSegment runs fn on the sealed segment in dir that holds record seq; active is
// the active file's first record, the oldest on the node when no segment is.
func viewSegment(dir string, seq, active uint64, fn func(*bolt.Tx) error) error {
	segs, err := Segments(dir)
	if err != nil {
		return err
	}
	// A checkpoint that sealed one segment starts the next: read it there, where
	// the records after it are too.
	for i := len(segs) - 1; i >= 0; i-- {
		if s := segs[i]; s.First <= seq && seq <= s.Last {
			db, err := openReadOnly(s.Path)
			if err != nil {
				return err
			}
			defer db.Close()
			return db.View(fn)
		}
	}
	oldest := active
	if len(segs) > 0 {
		oldest = segs[0].First
	}
	return &PrunedError{Seq: seq, Oldest: oldest}
}

// PrunedError says that record Seq has left this node; Oldest is the oldest still on it.
type PrunedError struct{ Seq, Oldest uint64 }

func (e *PrunedError) Error() string {
	return fmt.Sprintf("%s: record %d is in no segment on this node (the oldest here is %d; the archive has it)", ErrPruned, e.Seq, e.Oldest)
}

func (e *PrunedError) Unwrap() error { return ErrPruned }
