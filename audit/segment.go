package audit

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A log rotates into segments so that its history can leave the machine (archive,
// retention) without breaking the chain. The writer seals the active file with a
// checkpoint, moves it to SegmentDir as <first>-<last>.db, and starts a new active
// file whose first record is that same checkpoint: every file then verifies on its own
// from a statement the key signed, and consecutive files share one record.

// Segment is a sealed file of the log: the records First to Last, Last being the
// checkpoint that sealed it.
type Segment struct {
	Path        string
	First, Last uint64
}

// Name is the segment's file name: both sequence numbers, zero-padded so that names
// sort in log order.
func (s Segment) Name() string { return segmentName(s.First, s.Last) }

func segmentName(first, last uint64) string {
	return fmt.Sprintf("%020d-%020d.db", first, last)
}

// ParseSegmentName reads a segment's sequence numbers from its file name.
func ParseSegmentName(name string) (first, last uint64, ok bool) {
	a, b, found := strings.Cut(strings.TrimSuffix(name, ".db"), "-")
	if !found || !strings.HasSuffix(name, ".db") || len(a) != 20 || len(b) != 20 {
		return 0, 0, false
	}
	first, err1 := strconv.ParseUint(a, 10, 64)
	last, err2 := strconv.ParseUint(b, 10, 64)
	return first, last, err1 == nil && err2 == nil && first <= last
}

// SegmentDir is where the log at path keeps its sealed segments: audit.db's are in
// audit-segments next to it.
func SegmentDir(path string) string {
	return strings.TrimSuffix(path, filepath.Ext(path)) + "-segments"
}

// Segments lists the sealed segments in dir in log order; a missing dir has none.
// Files whose names are not segment names are left out.
func Segments(dir string) ([]Segment, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing audit segments: %w", err)
	}
	var out []Segment
	for _, e := range entries {
		if first, last, ok := ParseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			out = append(out, Segment{Path: filepath.Join(dir, e.Name()), First: first, Last: last})
		}
	}
	slices.SortFunc(out, func(a, b Segment) int { return cmp.Compare(a.First, b.First) })
	return out, nil
}

// Files is the log at path as files in log order: its sealed segments, then the
// active file, for VerifyFiles, ExportFiles and SearchFiles.
func Files(path string) ([]string, error) {
	segs, err := Segments(SegmentDir(path))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range segs {
		out = append(out, s.Path)
	}
	if _, err := os.Stat(path); err != nil && len(out) > 0 {
		// As Open refuses it: leaving it out would lose the newest records unseen.
		return nil, fmt.Errorf("%w: %s is missing but %s holds sealed segments up to record %d: without it the newest records are not verified",
			ErrCorrupt, path, SegmentDir(path), segs[len(segs)-1].Last)
	}
	return append(out, path), nil
}

// nextSuffix names the file a rotation prepares before it moves the active one.
const nextSuffix = ".next"

// recoverRotation finishes or undoes a rotation a crash interrupted, before Open: the
// prepared next file replaces an active file already moved to the segments, and is
// dropped if the active file is still in place (the rotation starts again later).
// A missing active file with sealed segments and nothing prepared is refused: a new
// log there would silently start another chain.
func recoverRotation(path string) error {
	next := path + nextSuffix
	_, errActive := os.Stat(path)
	_, errNext := os.Stat(next)
	if errNext == nil && errActive == nil {
		// The next file goes only if the active one is a log: a rotation that
		// failed after the move may have left an empty file in its place.
		valid, err := isLog(path)
		if err != nil {
			return err
		}
		if valid {
			return os.Remove(next)
		}
		errActive = os.ErrNotExist
	}
	switch {
	case errNext == nil:
		if err := os.Rename(next, path); err != nil {
			return fmt.Errorf("finishing the rotation of %s: %w", path, err)
		}
		return SyncDir(filepath.Dir(path))
	case errors.Is(errActive, os.ErrNotExist):
		segs, err := Segments(SegmentDir(path))
		if err != nil {
			return err
		}
		if len(segs) > 0 {
			last := segs[len(segs)-1]
			return fmt.Errorf("%w: %s is missing but %s holds sealed segments up to record %d: restore the file (a new one would start another chain)",
				ErrCorrupt, path, SegmentDir(path), last.Last)
		}
	}
	return nil
}

// isLog reports whether the file at path is an audit log; an error means it could
// not tell (another process holds the file).
func isLog(path string) (bool, error) {
	db, err := openReadOnly(path)
	if errors.Is(err, ErrLocked) {
		return false, err
	}
	if err != nil {
		return false, nil
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error { _, err := readMeta(tx); return err }) == nil, nil
}

// checkNotRestart refuses to create a new log beside sealed segments: it would start
// another chain where the old one should continue.
func checkNotRestart(path string) error {
	segs, err := Segments(SegmentDir(path))
	if err != nil || len(segs) == 0 {
		return err
	}
	return fmt.Errorf("%w: %s holds no log but %s holds sealed segments up to record %d: restore the file (a new one would start another chain)",
		ErrCorrupt, path, SegmentDir(path), segs[len(segs)-1].Last)
}

// SyncDir makes a folder's entries durable (a file created, renamed or removed
// in it survives a crash): what every writer of files beside the log needs.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

// rotateDue reports whether the active file is to be sealed: it holds records beyond
// the checkpoint it started with, and has reached the size or the age set.
func (l *Log) rotateDue() bool {
	if l.st.seq <= l.segFirst || l.segBytes <= 0 && l.segAge <= 0 {
		return false
	}
	return l.segBytes > 0 && l.size >= l.segBytes ||
		l.segAge > 0 && !l.segStart.IsZero() && l.now().Sub(l.segStart) >= l.segAge
}

// rotate seals the active file with a checkpoint and moves it into the segments (the
// writer's alone). A failure leaves the active file in place, logged; the next commit
// tries again.
func (l *Log) rotate() {
	// The lock first: while a reader holds the file (a snapshot), every commit
	// would otherwise sign and write another sealing checkpoint in vain.
	if !l.dbMu.TryLock() {
		return // rotating now would stall every Append behind the reader
	}
	defer l.dbMu.Unlock()
	if !l.lastSeals() {
		if err := l.commitSeal(); err != nil {
			l.log.Warn("audit segment not sealed: its checkpoint was not written; trying again later", "log_id", l.id, "error", err.Error())
			return
		}
	}
	seg := Segment{Path: filepath.Join(l.segDir, segmentName(l.segFirst, l.st.seq)), First: l.segFirst, Last: l.st.seq}
	if err := l.moveActive(seg); err != nil {
		l.log.Error("audit segment not sealed; the active file stays in use", "log_id", l.id, "segment", seg.Name(), "error", err.Error())
		return
	}
	l.log.Info("audit segment sealed", "log_id", l.id, "segment", seg.Path, "first_seq", seg.First, "last_seq", seg.Last)
}

// commitSeal writes the checkpoint that seals the active file (even right after
// another checkpoint: only a sealing one may start a segment).
func (l *Log) commitSeal() error {
	l.sealing = true
	defer func() { l.sealing = false }()
	st := l.st
	entries, err := l.checkpoint(nil, &st, false)
	if err != nil {
		return err
	}
	err = l.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRecords).Put(entries[0].key, entries[0].val)
	})
	releaseSealBuffer(entries[0].val)
	if err != nil {
		return fmt.Errorf("%w: writing the sealing checkpoint: %w", ErrUnavailable, err)
	}
	l.st = st
	l.publishHead()
	l.checkpoints.Add(1)
	l.lastSealed = true
	return nil
}

// lastSeals reports whether the last record is a sealing checkpoint (a rotation
// that wrote it and then failed to move the file).
func (l *Log) lastSeals() bool { return l.lastSealed && l.st.since == 0 }

// moveActive prepares the next file, then moves the active one to seg and the next one
// into its place. Called with dbMu held.
func (l *Log) moveActive(seg Segment) error {
	var last []byte
	if err := l.db.View(func(tx *bolt.Tx) error {
		last = slices.Clone(tx.Bucket(bucketRecords).Get(seqKey(seg.Last)))
		return nil
	}); err != nil || last == nil {
		return fmt.Errorf("reading the sealing checkpoint %d: %v", seg.Last, err)
	}
	next := l.path + nextSuffix
	if err := l.createNext(next, seg.Last, last); err != nil {
		os.Remove(next)
		return err
	}
	if err := os.MkdirAll(l.segDir, 0o700); err != nil {
		os.Remove(next)
		return err
	}
	if err := l.db.Close(); err != nil {
		os.Remove(next)
		return l.reopen(fmt.Errorf("closing the active file: %w", err))
	}
	if err := os.Rename(l.path, seg.Path); err != nil {
		os.Remove(next)
		return l.reopen(fmt.Errorf("moving the active file: %w", err))
	}
	// The move must be on disk before the next file takes the active name: a crash
	// in between leaves the sealed segment and the prepared file (recoverRotation).
	if err := errors.Join(SyncDir(l.segDir), SyncDir(filepath.Dir(l.path))); err != nil {
		l.log.Warn("audit segment: syncing the directories", "error", err.Error())
	}
	if err := os.Rename(next, l.path); err != nil {
		if back := os.Rename(seg.Path, l.path); back != nil {
			err = errors.Join(err, back)
		}
		return l.reopen(fmt.Errorf("putting the next file in place: %w", err))
	}
	if err := SyncDir(filepath.Dir(l.path)); err != nil {
		l.log.Warn("audit segment: syncing the directory", "error", err.Error())
	}
	l.segFirst, l.segStart = seg.Last, l.st.time
	return l.reopen(nil)
}

// createNext writes the next active file: the log's identity and, as its first
// record, the checkpoint that seals the current one.
func (l *Log) createNext(path string, seq uint64, line []byte) error {
	os.Remove(path) // a leftover of an attempt that failed
	db, err := bolt.Open(path, 0o600, l.boltOptions())
	if err != nil {
		return fmt.Errorf("creating the next audit file: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := l.writeIdentity(tx); err != nil {
			return err
		}
		return tx.Bucket(bucketRecords).Put(seqKey(seq), line)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("creating the next audit file: %w", err)
	}
	return nil
}

// reopen opens the file at the active path again after a rotation (why nil) or a
// failed one (why says what failed, and is returned). Without a file every commit
// fails, until a later one opens it.
func (l *Log) reopen(why error) error {
	var db *bolt.DB
	_, err := os.Stat(l.path) // bolt.Open would create a missing file: an empty log
	if err == nil {
		db, err = bolt.Open(l.path, 0o600, l.boltOptions())
	}
	if err != nil {
		l.db = nil
		err = fmt.Errorf("%w: reopening %s: %w", ErrUnavailable, l.path, err)
		l.setFailure(err)
		return errors.Join(why, err)
	}
	l.db = db
	l.size = 0
	db.View(func(tx *bolt.Tx) error { l.size = tx.Size(); return nil })
	return why
}

// Sealed is when the segment was sealed: the time of its last record, the
// checkpoint that sealed it.
func (s Segment) Sealed() (time.Time, error) {
	db, err := openReadOnly(s.Path)
	if err != nil {
		return time.Time{}, err
	}
	defer db.Close()
	var t time.Time
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRecords)
		if b == nil {
			return ErrNotLog
		}
		c := b.Cursor()
		if k, _ := c.First(); k == nil || seqOf(k) != s.First {
			return fmt.Errorf("%w: segment %s does not start at record %d", ErrCorrupt, s.Name(), s.First)
		}
		k, v := c.Last()
		if k == nil || seqOf(k) != s.Last {
			return fmt.Errorf("%w: segment %s does not end at record %d", ErrCorrupt, s.Name(), s.Last)
		}
		t = lenient(v).Time
		return nil
	})
	return t, err
}

// FirstSeq is the sequence number of the first record in the log file at path
// (0: none), opened read-only.
func FirstSeq(path string) (uint64, error) {
	db, err := openReadOnly(path)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var seq uint64
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRecords)
		if b == nil {
			return ErrNotLog
		}
		k, _ := b.Cursor().First()
		seq = seqOf(k)
		return nil
	})
	return seq, err
}

// boltOptions open the active file. With segments, its memory map is made big
// enough for a whole segment at once: bbolt grows the map by doubling, and every
// growth holds up the writer, so each new file would repeat the ten or so stalls
// a log pays once.
func (l *Log) boltOptions() *bolt.Options {
	o := &bolt.Options{Timeout: lockTimeout}
	if l.segBytes > 0 {
		size := 1 << 15
		for size < 1<<30 && int64(size) < l.segBytes+l.segBytes/4 {
			size <<= 1
		}
		o.InitialMmapSize = size
	}
	return o
}
