package audit

import (
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// pending is one request to the writer: a record, or a checkpoint.
type pending struct {
	rec        Record
	checkpoint bool
	done       chan error // nil in async mode: nobody waits
	err        error      // why the checkpoint asked for was not signed
}

// writerState is the chain as committed: the writer alone reads and changes it.
type writerState struct {
	seq   uint64
	hash  string
	raw   [32]byte // hash, decoded
	time  time.Time
	since int // records after the last checkpoint
}

// entry is one key/value the batch will put.
type entry struct {
	key, val []byte
	cp       *Record // the checkpoint, if it is one, to log once committed
}

// run is the writer: it takes the first queued request, gathers more (up to batchSize,
// for at most maxDelay), and commits them in one transaction. While it commits, new
// requests queue up, so under load batches fill without waiting at all.
func (l *Log) run() {
	defer close(l.done)
	tick := time.NewTicker(l.cpInterval)
	defer tick.Stop()
	fill := time.NewTimer(time.Hour)
	fill.Stop()
	batch := make([]*pending, 0, l.batchSize)
	for {
		batch = batch[:0]
		select {
		case p, ok := <-l.queue:
			if !ok {
				l.shutdown()
				return
			}
			l.coming.Add(-1)
			batch = append(batch, p)
		case <-tick.C:
			// A rotation due writes its own, sealing, checkpoint.
			if l.rotateDue() {
				l.rotate()
			} else if l.st.since > 0 {
				l.commit(nil, true)
			}
			continue
		}
		open := l.gather(&batch, fill)
		l.commit(batch, false)
		if l.rotateDue() {
			l.rotate()
		}
		if !open {
			l.shutdown()
			return
		}
	}
}

// gather adds queued requests to batch until it is full, maxDelay has passed, or no
// caller is on its way: a lone caller is not kept waiting for company that is not
// coming. It reports false once the queue is closed.
func (l *Log) gather(batch *[]*pending, fill *time.Timer) bool {
	waiting, yielded := false, false
	defer func() {
		if waiting {
			fill.Stop()
		}
	}()
	for len(*batch) < l.batchSize {
		var p *pending
		var ok bool
		select {
		case p, ok = <-l.queue:
		default:
			if l.maxDelay < 0 {
				return true
			}
			if l.coming.Load() == 0 {
				// Callers just released may be runnable but not yet running: let them
				// run once before deciding that nobody is coming.
				if yielded {
					return true
				}
				yielded = true
				runtime.Gosched()
				continue
			}
			if !waiting {
				fill.Reset(l.maxDelay)
				waiting = true
			}
			select {
			case p, ok = <-l.queue:
			case <-fill.C:
				return true
			}
		}
		if !ok {
			return false
		}
		l.coming.Add(-1)
		*batch = append(*batch, p)
	}
	return true
}

// shutdown runs once the queue is closed and drained: the final checkpoint.
func (l *Log) shutdown() {
	if l.st.since > 0 {
		if err := l.commit(nil, true); err != nil {
			l.final = fmt.Errorf("final checkpoint: %w", err)
		}
	}
}

// commit seals the batch (sequence numbers, times, hashes, checkpoints due) and writes
// it in one transaction. Only if that commits does the chain advance; otherwise every
// caller in the batch gets the error and the same sequence numbers are used again.
func (l *Log) commit(batch []*pending, checkpoint bool) error {
	st := l.st
	entries := make([]entry, 0, len(batch)+1)
	var cpErr error // the checkpoint asked for by the caller was not signed
	for _, p := range batch {
		if p.checkpoint {
			if st.since > 0 {
				entries, p.err = l.checkpoint(entries, &st, false)
			}
			continue
		}
		entries = append(entries, l.seal(&p.rec, &st, l.now()))
		st.since++
		if st.since >= l.cpEvery {
			entries, _ = l.checkpoint(entries, &st, true)
		}
	}
	if checkpoint && st.since > 0 {
		entries, cpErr = l.checkpoint(entries, &st, false)
	}
	if len(entries) == 0 {
		release(batch, nil)
		return cpErr
	}
	err := l.activeFile()
	if err == nil {
		err = l.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketRecords)
			// Keys only ever grow: full pages instead of bbolt's half-full default.
			b.FillPercent = 1
			for _, e := range entries {
				if err := b.Put(e.key, e.val); err != nil {
					return err
				}
			}
			l.size = tx.Size()
			return nil
		})
	}
	if err != nil {
		err = fmt.Errorf("%w: writing records %d to %d: %w", ErrUnavailable, l.st.seq+1, st.seq, err)
		l.setFailure(err)
		for _, p := range batch {
			if !p.checkpoint {
				l.failed.Add(1)
			}
		}
		l.log.Error("AUDIT LOG WRITE FAILED: records not stored; their callers are refused",
			"log_id", l.id, "records", len(entries), "first_seq", l.st.seq+1, "error", err)
		for _, e := range entries {
			releaseSealBuffer(e.val)
		}
		release(batch, err)
		return err
	}
	cps := 0
	for _, e := range entries {
		if e.cp != nil {
			cps++
			l.log.Info("audit checkpoint", "log_id", l.id, "seq", e.cp.Seq,
				"head_seq", e.cp.Detail[DetailHeadSeq], "head_hash", e.cp.Detail[DetailHeadHash])
		}
	}
	if l.segStart.IsZero() {
		l.segStart = st.time
	}
	l.lastSealed = false
	l.st = st
	l.publishHead()
	for _, e := range entries {
		l.unreleased += len(e.val)
		releaseSealBuffer(e.val)
	}
	l.batches.Add(1)
	l.checkpoints.Add(uint64(cps))
	l.records.Add(uint64(len(entries) - cps))
	if l.setFailure(nil) != nil {
		l.log.Info("audit log writes again", "log_id", l.id, "head_seq", st.seq)
	}
	release(batch, nil)
	// After the callers are released: they need not wait for it.
	if l.unreleased >= releaseEvery {
		l.unreleased = 0
		if err := l.releaseWritten(); err != nil {
			l.log.Warn("audit log: could not release written pages from memory", "log_id", l.id, "error", err.Error())
		}
	}
	return cpErr
}

// activeFile makes sure the writer has a file: a rotation that could not open the
// next one leaves it without, and each commit tries again.
func (l *Log) activeFile() error {
	if l.db != nil {
		return nil
	}
	l.dbMu.Lock()
	defer l.dbMu.Unlock()
	return l.reopen(nil)
}

// release answers the batch's callers: err, else why a checkpoint asked for failed.
func release(batch []*pending, err error) {
	for _, p := range batch {
		if p.done != nil {
			p.done <- cmp.Or(err, p.err)
		}
	}
}

// seal makes r the next record of the chain st, stamped t, and returns its entry.
func (l *Log) seal(r *Record, st *writerState, t time.Time) entry {
	r.Seq = st.seq + 1
	r.Time = t.UTC().Round(0)
	r.Node = l.node
	r.PrevHash = st.hash
	body := recordBody(sealBuffer(sizeHint(r)), r)
	st.raw = chainHash(st.raw, body)
	r.Hash = hex.EncodeToString(st.raw[:])
	st.seq, st.hash, st.time = r.Seq, r.Hash, r.Time
	// The stored line is the body with prev_hash and hash added before its closing brace.
	val := append(body[:len(body)-1], `,"prev_hash":`...)
	val = appendString(val, r.PrevHash)
	val = append(val, `,"hash":`...)
	val = appendString(val, r.Hash)
	val = append(val, '}')
	return entry{key: seqKey(r.Seq), val: val}
}

// sizeHint is about the length of r's stored line, so that encoding it
// allocates once instead of growing through every power of two.
func sizeHint(r *Record) int {
	n := 640 // member names, numbers, time and the two hashes
	for _, s := range [...]string{r.RequestID, r.DecisionID, r.PolicyRevision, r.App, r.Vendor, r.Operation,
		r.Method, r.PathTemplate, r.ConsentID, r.Purpose, r.SubjectHMAC, r.Error} {
		n += len(s)
	}
	for _, l := range [...][]string{r.Identifiers, r.Reasons, r.Disclosed, r.Withheld, r.RequestDisclosed, r.RequestWithheld} {
		for _, s := range l {
			n += len(s) + 3
		}
	}
	for k, v := range r.Detail {
		n += len(k) + len(v) + 6
	}
	return n + n/8 // escapes
}

// signRetry is how long checkpoints that fall due pause after one could not be signed
// (an HSM away): trying on every batch would slow every caller.
const signRetry = time.Second

// checkpoint appends a checkpoint covering the chain st so far. If it cannot be signed,
// the records stay unvouched until a later checkpoint covers them, and the writer does
// not try again for signRetry unless asked to (auto false: Checkpoint, the interval,
// Close).
func (l *Log) checkpoint(entries []entry, st *writerState, auto bool) ([]entry, error) {
	t := l.now().UTC().Round(0)
	if auto && t.Before(l.signAfter) {
		return entries, nil
	}
	msg := headMessage(l.id, st.seq, st.hash, t)
	if l.sealing {
		msg = sealMessage(l.id, st.seq, st.hash, t)
	}
	sig, err := l.signHead(msg)
	if err != nil {
		l.unsigned.Add(1)
		l.signAfter = l.now().Add(signRetry) // from when the failure returned
		l.log.Error("audit checkpoint not signed: the records after the last checkpoint stay unvouched until one is",
			"log_id", l.id, "head_seq", st.seq, "error", err.Error())
		return entries, err
	}
	cp := &Record{Kind: KindCheckpoint, Detail: map[string]string{
		DetailHeadSeq:   strconv.FormatUint(st.seq, 10),
		DetailHeadHash:  st.hash,
		DetailLogID:     l.id,
		DetailSignature: sig,
	}}
	if l.sealing {
		cp.Detail[DetailSeals] = "true"
	}
	e := l.seal(cp, st, t)
	st.since = 0
	e.cp = cp
	return append(entries, e), nil
}

// signHead signs msg within signTimeout: a key in an HSM that hangs must not
// hold up the records waiting behind the checkpoint. One signature at most is
// under way; one that returns late is discarded.
func (l *Log) signHead(msg []byte) (string, error) {
	if !l.signing.CompareAndSwap(false, true) {
		return "", errors.New("signing the audit head: the previous signature has not returned")
	}
	type signed struct {
		sig string
		err error
	}
	done := make(chan signed, 1)
	go func() {
		sig, err := sign(l.key, msg)
		// Cleared before the result is handed over: a caller that has the
		// result may sign again at once.
		l.signing.Store(false)
		done <- signed{sig, err}
	}()
	timer := time.NewTimer(l.signTimeout)
	defer timer.Stop()
	select {
	case s := <-done:
		return s.sig, s.err
	case <-timer.C:
		return "", fmt.Errorf("signing the audit head: the key did not answer within %s", l.signTimeout)
	}
}

// Sealed lines are about 2 KB, two per proxied call; bbolt copies them into
// its pages when the transaction commits, so their buffers are reused.
var sealBuffers = sync.Pool{New: func() any { return new([]byte) }}

func sealBuffer(size int) []byte {
	b := *sealBuffers.Get().(*[]byte)
	if cap(b) < size {
		return make([]byte, 0, size)
	}
	return b[:0]
}

// releaseSealBuffer takes back a line once its transaction has ended; the
// caller holds no other reference to it.
func releaseSealBuffer(b []byte) {
	if cap(b) > 64<<10 {
		return
	}
	sealBuffers.Put(&b)
}
