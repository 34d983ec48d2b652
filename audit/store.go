package audit

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Layout of the file. records maps the big-endian sequence number to the record's
// canonical line (checkpoints included: they are records of the chain). meta holds what
// identifies the log: it is written once, when the file is created.
var (
	bucketRecords = []byte("records")
	bucketMeta    = []byte("meta")

	metaFormat      = []byte("format")
	metaLogID       = []byte("log_id")
	metaNode        = []byte("node")
	metaPublicKey   = []byte("public_key")      // hex of the key's raw bytes
	metaFingerprint = []byte("key_fingerprint") // Fingerprint of it
)

const fileFormat = "consentgate-audit/1"

// lockTimeout is how long Open waits for another process to let go of the file. bbolt
// waits forever by default, which turns a second consentgate on the same data directory
// into a silent hang instead of an error.
const lockTimeout = time.Second

func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq)
}

// meta is the identity of a log file.
type meta struct {
	logID, node string
	pub         key // raw nil: the file names no key
}

// readMeta reads a log's identity; a file without it is not an audit log.
func readMeta(tx *bolt.Tx) (meta, error) {
	b := tx.Bucket(bucketMeta)
	if b == nil || tx.Bucket(bucketRecords) == nil {
		return meta{}, ErrNotLog
	}
	if f := string(b.Get(metaFormat)); f != fileFormat {
		return meta{}, fmt.Errorf("%w: format %q, want %q", ErrNotLog, f, fileFormat)
	}
	m := meta{logID: string(b.Get(metaLogID)), node: string(b.Get(metaNode))}
	if m.logID == "" {
		return meta{}, fmt.Errorf("%w: no log id", ErrNotLog)
	}
	if raw, err := hex.DecodeString(string(b.Get(metaPublicKey))); err == nil {
		m.pub, _ = keyFromRaw(raw)
	}
	return m, nil
}

// openReadOnly opens a log file for export, verification or search. It shares the lock
// with other readers, so it fails while a gateway has the file open for writing: read a
// snapshot instead, or export through the running gateway.
func openReadOnly(path string) (*bolt.DB, error) {
	if err := checkLength(path); err != nil {
		return nil, err
	}
	before, stamped := stampOf(path)
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("opening audit log %s read-only: %w (still locked after %s: a gateway has it open; use a snapshot)", path, ErrLocked, lockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("opening audit log %s read-only: %w", path, err)
	}
	if err := checkedOnce(db, path, before, stamped); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// checked holds the files that passed bbolt's consistency check, by path: a
// sealed segment read again and again (a timeline's pages, a stream catching
// up) is checked once per process, not on every open, which cost ~200 ms for a
// segment of a million records. A file counts as the one checked only while
// its device, inode, size, modification and change times are the same: a copy
// put in its place, or a write with its modification time put back (cp -p,
// touch -r), changes the change time, which no tool can set.
var checked sync.Map // path → fileStamp

type fileStamp struct {
	dev, ino uint64
	size     int64
	mod, chg time.Time
}

func stampOf(path string) (fileStamp, bool) {
	info, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, false
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return fileStamp{}, false
	}
	return fileStamp{dev: uint64(st.Dev), ino: st.Ino, size: info.Size(), mod: info.ModTime(),
		chg: time.Unix(int64(st.Ctim.Sec), int64(st.Ctim.Nsec))}, true
}

// checkedOnce checks db, opened from path, unless the same file passed the
// check before. before is path's stamp taken before db was opened: a file
// swapped in meanwhile is checked and not remembered.
func checkedOnce(db *bolt.DB, path string, before fileStamp, stamped bool) error {
	if v, ok := checked.Load(path); stamped && ok && v.(fileStamp) == before {
		return nil
	}
	if err := checkConsistency(db, path); err != nil {
		return err
	}
	if after, ok := stampOf(path); stamped && ok && after == before {
		checked.Store(path, before)
	}
	return nil
}
