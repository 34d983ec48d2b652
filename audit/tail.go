package audit

import (
	"context"
	"io"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Line is one record as export and streams carry it: its canonical line.
type Line struct {
	Seq  uint64
	Data []byte
}

// Lines returns up to max records after sequence number after, oldest first,
// as their export lines: what a stream to a SIEM sends.
func (l *Log) Lines(after uint64, max int) ([]Line, error) {
	var out []Line
	err := l.db.View(func(tx *bolt.Tx) error {
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
	last := after
	var lines []byte
	err := l.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRecords).Cursor()
		n := 0
		for k, v := c.Seek(seqKey(after + 1)); k != nil && n < max; k, v = c.Next() {
			lines = append(append(lines, v...), '\n')
			last = seqOf(k)
			n++
		}
		return nil
	})
	if err != nil {
		return after, err
	}
	_, err = w.Write(lines)
	return last, err
}
