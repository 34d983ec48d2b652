package audit

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Log is an open audit log. It is safe for concurrent use: Append from any number of
// goroutines; one writer goroutine orders, hashes and commits their records in batches.
type Log struct {
	// dbMu guards db, segFirst against a rotation: readers hold it for reading
	// while they use the file; the writer, the only one to change them, takes it
	// to swap the file.
	dbMu     sync.RWMutex
	db       *bolt.DB
	segFirst uint64 // the active file's first record
	path     string
	segDir   string
	segBytes int64
	segAge   time.Duration
	size     int64     // the active file's size after the last commit (the writer's alone)
	segStart time.Time // the time of the active file's first record (the writer's alone)

	linkRetention time.Duration
	links         *linkKeys // nil: no link keys
	id            string
	node          string
	key           crypto.Signer
	pub           key
	log           *slog.Logger
	now           func() time.Time

	strict     bool
	batchSize  int
	maxDelay   time.Duration
	cpEvery    int
	cpInterval time.Duration

	// mu guards closed and every send on queue: Close takes it to close the queue, so no
	// Append can send on a closed channel (which would panic).
	mu     sync.RWMutex
	closed bool
	queue  chan *pending
	done   chan struct{} // closed when the writer has stopped
	coming atomic.Int64  // requests announced by enqueue and not yet taken by the writer
	st     writerState   // the writer's alone
	// unreleased counts the bytes written since the last releaseWritten (the
	// writer's alone).
	unreleased  int
	final       error     // the final checkpoint's failure; written before done closes
	signAfter   time.Time // no checkpoint falling due is signed before (the writer's alone)
	signTimeout time.Duration
	signing     atomic.Bool // a signature is under way
	sealing     bool        // the next checkpoint seals the active file (the writer's alone)
	lastSealed  bool        // the last record written is a sealing checkpoint (the writer's alone)

	reserve reserve
	head    atomic.Pointer[Head]
	healthy sync.Mutex
	failure error // the last write's failure, nil once a write succeeds again

	records, checkpoints, batches, failed, unsigned atomic.Uint64
}

// Head is the last committed record of a log: its sequence number, hash and time. An
// empty log's head is sequence number 0 and the log's genesis hash.
type Head struct {
	Seq  uint64    `json:"seq"`
	Hash string    `json:"hash"`
	Time time.Time `json:"time,omitzero"`
}

// Stats count what the log has written since Open.
type Stats struct {
	Records     uint64 // records committed (checkpoints not included)
	Checkpoints uint64 // checkpoints committed
	Batches     uint64 // write transactions committed: one fsync'd commit each
	Failed      uint64 // records refused because their batch could not be written
	Unsigned    uint64 // checkpoints not written because the signing key failed
}

// Open opens (creating, mode 0600) the log file at path and starts its writer. A new file
// gets a log id; an existing one must have been created with the same signing key, and
// the records after its last checkpoint must verify (else ErrCorrupt): the next
// checkpoint will vouch for them. Another process holding the file makes Open fail with
// ErrLocked after about a second.
func Open(path string, o Options) (*Log, error) {
	l, err := newLog(o)
	if err != nil {
		return nil, err
	}
	l.path, l.segDir = path, SegmentDir(path)
	if err := recoverRotation(path); err != nil {
		return nil, fmt.Errorf("opening audit log %s: %w", path, err)
	}
	if err := checkLength(path); err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, l.boltOptions())
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("opening audit log %s: %w (still locked after %s; is another consentgate running on it?)", path, ErrLocked, lockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("opening audit log %s: %w", path, err)
	}
	if err := checkConsistency(db, path); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.Update(l.prepare); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening audit log %s: %w", path, err)
	}
	if err := db.View(l.loadTail); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening audit log %s: %w", path, err)
	}
	if l.linkRetention > 0 {
		if l.links, err = openLinkKeys(LinkKeysPath(path), l.id, l.linkRetention); err != nil {
			db.Close()
			return nil, err
		}
	}
	l.db = db
	l.queue = make(chan *pending, l.batchSize)
	l.done = make(chan struct{})
	l.publishHead()
	mode := ModeAsync
	if l.strict {
		mode = ModeStrict
	}
	l.log.Info("audit log opened", "path", path, "log_id", l.id, "head_seq", l.st.seq, "mode", mode)
	if l.st.since > 0 {
		l.log.Warn("audit log was not closed cleanly: records after the last checkpoint will be covered by the next one",
			"log_id", l.id, "unvouched", l.st.since, "head_seq", l.st.seq)
	}
	go l.run()
	return l, nil
}

// prepare creates the buckets and identity of a new file and checks those of an old one.
func (l *Log) prepare(tx *bolt.Tx) error {
	if tx.Bucket(bucketMeta) == nil {
		if k, _ := tx.Cursor().First(); k != nil {
			return fmt.Errorf("%w: the file holds other data", ErrNotLog)
		}
		if err := checkNotRestart(l.path); err != nil {
			return err
		}
		l.id = uuid.NewString()
		if err := l.writeIdentity(tx); err != nil {
			return err
		}
	}
	m, err := readMeta(tx)
	if err != nil {
		return err
	}
	if !bytes.Equal(m.pub.raw, l.pub.raw) {
		return fmt.Errorf("%w (the file's key has fingerprint %s, the signing key's is %s)", ErrWrongKey, m.pub.fingerprint(), l.pub.fingerprint())
	}
	l.id = m.logID
	return nil
}

// writeIdentity creates the buckets of a new file and writes the log's identity:
// a new log's, or the one a rotation continues.
func (l *Log) writeIdentity(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketRecords, bucketMeta} {
		if _, err := tx.CreateBucket(name); err != nil {
			return fmt.Errorf("creating bucket %s: %w", name, err)
		}
	}
	m := tx.Bucket(bucketMeta)
	for k, v := range map[string]string{
		string(metaFormat): fileFormat, string(metaLogID): l.id, string(metaNode): l.node,
		string(metaPublicKey): l.pub.hex(), string(metaFingerprint): l.pub.fingerprint(),
	} {
		if err := m.Put([]byte(k), []byte(v)); err != nil {
			return fmt.Errorf("writing log identity: %w", err)
		}
	}
	return nil
}

// loadTail finds the head and verifies the records from the last checkpoint on, which
// is what the writer continues from.
func (l *Log) loadTail(tx *bolt.Tx) error {
	l.st = writerState{hash: genesis(l.id)}
	l.size = tx.Size()
	c := tx.Bucket(bucketRecords).Cursor()
	l.segFirst = 1
	if k, v := c.First(); k != nil {
		l.segFirst, l.segStart = seqOf(k), lenient(v).Time
	}
	start, prev := uint64(1), l.st.hash
	for k, v := c.Last(); k != nil; k, v = c.Prev() {
		r, _, err := parseLine(v)
		if err != nil {
			return fmt.Errorf("%w: record %d: %w", ErrCorrupt, seqOf(k), err)
		}
		if r.Kind == KindCheckpoint {
			start, prev = r.Seq, r.PrevHash
			break
		}
	}
	ch := newChain(l.pub, l.id, verifyConfig{})
	ch.next, ch.prev = start, prev
	for k, v := c.Seek(seqKey(start)); k != nil; k, v = c.Next() {
		if verr := ch.addStored(k, v); verr != nil {
			return fmt.Errorf("%w: %w (run consentgate audit verify)", ErrCorrupt, verr)
		}
	}
	l.st.seq, l.st.hash, l.st.time = ch.rep.Head.Seq, ch.rep.Head.Hash, ch.rep.Head.Time
	l.st.since = int(l.st.seq - ch.lastCP)
	var ok bool
	if l.st.raw, ok = decodeHash(l.st.hash); !ok {
		return fmt.Errorf("%w: head hash %q", ErrCorrupt, l.st.hash)
	}
	return nil
}

// Append writes r and returns it as stored, with Seq, Time, Node, PrevHash and Hash set
// (whatever the caller put there is replaced). In strict mode it returns only once the
// record is committed and fsync'd together with its batch; in async mode once it is
// queued, and the returned record has none of those fields set.
//
// ctx is deliberately not watched: once Append is called the record is written or
// refused, and the caller learns which, even if the request that caused it was
// cancelled meanwhile (context.WithoutCancel semantics). A record must never be lost
// because a client hung up, and a caller must never wrongly believe it was.
//
// The error wraps ErrInvalid for a record that breaks a rule, and ErrUnavailable when
// the log is closed or the batch could not be written: the caller must not go on with
// what it wanted to record.
func (l *Log) Append(ctx context.Context, r Record) (Record, error) {
	r, err := prepareRecord(r)
	if err != nil {
		return Record{}, err
	}
	if l.links != nil {
		if err := l.links.pseudonymize(&r, l.now()); err != nil {
			return Record{}, err
		}
	}
	p := &pending{rec: r}
	if l.strict {
		p.done = make(chan error, 1)
	}
	if err := l.enqueue(p); err != nil {
		return Record{}, err
	}
	if !l.strict {
		return r, nil
	}
	if err := <-p.done; err != nil {
		return Record{}, err
	}
	return p.rec, nil
}

// Checkpoint writes a signed checkpoint now (in either mode, durably) unless the last
// record already is one. Records appended before the call are covered.
func (l *Log) Checkpoint(ctx context.Context) error {
	p := &pending{checkpoint: true, done: make(chan error, 1)}
	if err := l.enqueue(p); err != nil {
		return err
	}
	return <-p.done
}

func (l *Log) enqueue(p *pending) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return fmt.Errorf("%w: closed", ErrUnavailable)
	}
	l.coming.Add(1)
	l.queue <- p
	return nil
}

func (l *Log) isClosed() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.closed
}

// Healthy is nil while the log can write. It wraps ErrUnavailable after Close, and after
// a failed write until a later one succeeds: a readiness probe should fail meanwhile.
func (l *Log) Healthy() error {
	if l.isClosed() {
		return fmt.Errorf("%w: closed", ErrUnavailable)
	}
	l.healthy.Lock()
	defer l.healthy.Unlock()
	return l.failure
}

// setFailure records the outcome of a write for Healthy and returns the one before.
func (l *Log) setFailure(err error) error {
	l.healthy.Lock()
	defer l.healthy.Unlock()
	was := l.failure
	l.failure = err
	return was
}

// Head is the last committed record.
func (l *Log) Head() Head { return *l.head.Load() }

func (l *Log) publishHead() {
	l.head.Store(&Head{Seq: l.st.seq, Hash: l.st.hash, Time: l.st.time})
}

// CheckpointEvery is how many records a checkpoint follows at most: how far
// a reader looks for the checkpoint that vouches for a record.
func (l *Log) CheckpointEvery() int { return l.cpEvery }

// LogID is the log's identity, chosen when its file was created; record 1 chains to it.
func (l *Log) LogID() string { return l.id }

// PublicKey verifies the log's checkpoints and exports.
func (l *Log) PublicKey() PublicKey { return l.key.Public() }

// Stats counts what the log has written since Open.
func (l *Log) Stats() Stats {
	return Stats{Records: l.records.Load(), Checkpoints: l.checkpoints.Load(),
		Batches: l.batches.Load(), Failed: l.failed.Load(), Unsigned: l.unsigned.Load()}
}

// Snapshot writes a consistent copy of the log file to w while the log runs (bbolt's
// Tx.WriteTo) and returns its size. The copy is a log file of its own, for ExportFile,
// VerifyDB and Search; the records after its last checkpoint are unvouched in it. The
// copy holds one read transaction open, during which the file cannot grow: a writer
// that needs to waits for it.
func (l *Log) Snapshot(w io.Writer) (int64, error) {
	if l.isClosed() {
		return 0, fmt.Errorf("%w: closed", ErrUnavailable)
	}
	var n int64
	l.dbMu.RLock()
	defer l.dbMu.RUnlock()
	if l.db == nil {
		return 0, fmt.Errorf("%w: no active file", ErrUnavailable)
	}
	err := l.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return n, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err != nil {
		return n, fmt.Errorf("snapshot of audit log: %w", err)
	}
	return n, nil
}

// Close writes whatever is queued, then a final checkpoint, stops the writer and closes
// the file. Append afterwards fails with ErrUnavailable. Calling it again does nothing.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.done
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	close(l.queue)
	<-l.done
	err := l.final
	l.dbMu.Lock()
	defer l.dbMu.Unlock()
	if l.db == nil {
		return errors.Join(err, fmt.Errorf("%w: no active file", ErrUnavailable))
	}
	if cerr := l.links.close(); cerr != nil && err == nil {
		err = fmt.Errorf("closing audit link keys: %w", cerr)
	}
	if cerr := l.db.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("closing audit log %s: %w", l.path, cerr)
	}
	l.log.Info("audit log closed", "log_id", l.id, "head_seq", l.st.seq, "error", err)
	return err
}

// ForgetLinkKeys destroys the link keys of the people no record has named for
// LinkRetention, records how many it destroyed, and returns that number. From then
// on their records cannot be tied to them. The gateway runs it every hour.
func (l *Log) ForgetLinkKeys(ctx context.Context) (int, error) {
	if l.links == nil {
		return 0, nil
	}
	n, err := l.links.sweep(l.now())
	if err != nil {
		return 0, fmt.Errorf("destroying audit link keys: %w", err)
	}
	if n > 0 {
		if _, err := l.Append(ctx, Record{Kind: KindSystem, Detail: map[string]string{
			"event": "link keys destroyed", "count": strconv.Itoa(n)}}); err != nil {
			return n, err
		}
	}
	return n, nil
}

// LinkTerms are the search terms for a person's HMACs in this log: see the
// function LinkTerms.
func (l *Log) LinkTerms(hs ...string) ([]string, error) {
	if l.links == nil {
		return uniq(hs), nil
	}
	return termsOf(l.links, hs)
}

// termsOf is every h's terms under k, each once.
func termsOf(k *linkKeys, hs []string) ([]string, error) {
	var out []string
	for _, h := range hs {
		t, err := k.terms(h)
		if err != nil {
			return nil, err
		}
		out = append(out, t...)
	}
	return uniq(out), nil
}

func uniq(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}
