package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Query selects records for a timeline: newest first, one page at a time, from
// the records on this node (the active file and the sealed segments still here).
type Query struct {
	// Before: only records before this sequence number (the next page's start);
	// 0 starts at the head.
	Before                                           uint64
	From, To                                         time.Time // at or after From, before To
	App, Vendor, Operation, Purpose, Kind, RequestID string
	// Outcome and Refusal match outcome records' details "outcome" (forwarded,
	// refused, denied, failed) and "refusal" (a refusal kind).
	Outcome, Refusal string
	// HasDetail: only records with this detail (policy_input: the decisions a
	// replay can ask again).
	HasDetail string
	// Limit is the records on a page (default 50); MaxScan bounds the records
	// read for it (default 100,000), so a filter that matches little answers
	// in bounded time with a page that says where it stopped.
	Limit, MaxScan int
}

// Page is one page of a timeline.
type Page struct {
	Records []Record
	// Next is the Before of the next, older page; 0 when no older record is on
	// this node.
	Next uint64
	// Scanned is the records read; Partial says MaxScan stopped the page short
	// of Limit: more may match before Next.
	Scanned int
	Partial bool
}

// match is an export Filter's test (time, app, vendor, purpose) and the
// timeline's own.
func (q Query) match(r *Record) bool {
	return Filter{From: q.From, To: q.To, App: q.App, Vendor: q.Vendor, Purpose: q.Purpose}.match(r) &&
		(q.Operation == "" || r.Operation == q.Operation) &&
		(q.Kind == "" || r.Kind == q.Kind) && (q.RequestID == "" || r.RequestID == q.RequestID) &&
		(q.Outcome == "" || r.Kind == KindOutcome && r.Detail["outcome"] == q.Outcome) &&
		(q.Refusal == "" || r.Kind == KindOutcome && r.Detail["refusal"] == q.Refusal) &&
		(q.HasDetail == "" || r.Detail[q.HasDetail] != "")
}

// needles are byte strings every matching record's line contains: a cheap test
// that skips decoding most lines a selective filter leaves out. The canonical
// encoding writes each member as "name":"value", detail members included.
func (q Query) needles() [][]byte {
	var out [][]byte
	for _, m := range []struct{ name, value string }{{"app", q.App}, {"vendor", q.Vendor}, {"operation", q.Operation},
		{"purpose", q.Purpose}, {"kind", q.Kind}, {"request_id", q.RequestID}, {"outcome", q.Outcome}, {"refusal", q.Refusal}} {
		if m.value != "" {
			out = append(out, appendString(append(appendString(nil, m.name), ':'), m.value))
		}
	}
	if q.HasDetail != "" {
		out = append(out, append(appendString(nil, q.HasDetail), ':'))
	}
	return out
}

// Timeline reads one page of q, newest first.
func (l *Log) Timeline(ctx context.Context, q Query) (Page, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	if q.MaxScan <= 0 {
		q.MaxScan = 100_000
	}
	next := l.Head().Seq
	if q.Before > 0 && q.Before-1 < next {
		next = q.Before - 1
	}
	if !q.To.IsZero() {
		next = l.lastBefore(q.To, next)
	}
	var p Page
	needles := q.needles()
	for next > 0 && len(p.Records) < q.Limit && p.Scanned < q.MaxScan {
		if err := ctx.Err(); err != nil {
			return p, err
		}
		err := l.viewAt(next, func(tx *bolt.Tx) error {
			var err error
			next, err = scanBack(tx, next, q, needles, &p)
			return err
		})
		if errors.Is(err, ErrPruned) {
			next = 0
			break
		}
		if err != nil {
			return p, err
		}
	}
	p.Next = next + 1
	if next == 0 {
		p.Next = 0
	}
	p.Partial = p.Next > 0 && len(p.Records) < q.Limit
	return p, nil
}

// scanBack reads one file's records from seq down, adding matches to p until the
// page is full or the scan bound reached; it returns the sequence number to read
// next (0: none older in this chain).
func scanBack(tx *bolt.Tx, seq uint64, q Query, needles [][]byte, p *Page) (uint64, error) {
	c := tx.Bucket(bucketRecords).Cursor()
	k, v := c.Seek(seqKey(seq))
	if k == nil || seqOf(k) > seq {
		k, v = c.Prev()
	}
	for ; k != nil; k, v = c.Prev() {
		if !q.From.IsZero() {
			// Records are stamped in sequence: below a window's start, no
			// older record is in it.
			if t, ok := timeOf(v); ok && t.Before(q.From) {
				return 0, nil
			}
		}
		if len(p.Records) == q.Limit || p.Scanned == q.MaxScan {
			return seqOf(k), nil
		}
		p.Scanned++
		if !containsAll(v, needles) {
			continue
		}
		if t, ok := timeOf(v); ok && !q.inWindow(t) {
			continue
		}
		var r Record
		if err := json.Unmarshal(v, &r); err != nil {
			return 0, fmt.Errorf("record %d does not decode: %w", seqOf(k), err)
		}
		if q.match(&r) {
			p.Records = append(p.Records, r)
		}
	}
	// The file's first record; the one before it is in the previous file.
	first, _ := c.First()
	return seqOf(first) - 1, nil
}

func (q Query) inWindow(t time.Time) bool { return Filter{From: q.From, To: q.To}.inWindow(t) }

// timeOf reads a stored line's time without decoding the rest: the canonical
// encoding writes it third, as "time":"<RFC 3339>".
func timeOf(line []byte) (time.Time, bool) {
	i := bytes.Index(line, []byte(`,"time":"`))
	if i < 0 || i > 40 {
		return time.Time{}, false
	}
	rest := line[i+len(`,"time":"`):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(rest[:j]))
	return t, err == nil
}

// lastBefore is the newest record at or below seq stamped before t, found by
// bisection: the page starts there rather than reading its way down from the
// head. Records are stamped in sequence; one stamped before t after a clock
// step back, above the point found, is not shown. Records no longer on this
// node count as before t (they are older than every record here).
func (l *Log) lastBefore(t time.Time, seq uint64) uint64 {
	lo, hi := uint64(0), seq // lo is before t (0: no record is); hi may not be
	if r, err := l.Record(hi); err == nil && r.Time.Before(t) {
		return hi
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		r, err := l.Record(mid)
		switch {
		case errors.Is(err, ErrPruned):
			lo = mid
		case err != nil:
			return seq // unreadable: read down from seq as usual
		case r.Time.Before(t):
			lo = mid
		default:
			hi = mid
		}
	}
	return lo
}

func containsAll(line []byte, needles [][]byte) bool {
	for _, n := range needles {
		if !bytes.Contains(line, n) {
			return false
		}
	}
	return true
}

// Record is the record with sequence number seq, from the file on this node
// that holds it.
func (l *Log) Record(seq uint64) (Record, error) {
	var r Record
	err := l.viewAt(seq, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRecords).Get(seqKey(seq))
		if v == nil {
			return fmt.Errorf("%w: %d", ErrNoRecord, seq)
		}
		return json.Unmarshal(v, &r)
	})
	return r, err
}
