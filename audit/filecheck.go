package audit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"

	bolt "go.etcd.io/bbolt"
)

// A bbolt file cut short makes bbolt read past its end: a crash (SIGSEGV, or a
// bbolt assertion panic), not an error. Every open of an audit log therefore
// first checks that the file holds the pages its own meta page says it has,
// and then runs bbolt's consistency check with panics turned into errors.

// bboltMagic marks a bbolt meta page; the layout read below is bbolt's v2
// file format (page header 16 bytes, then magic, version, page size, flags,
// root bucket, freelist, high-water page id, txid and checksum).
const (
	bboltMagic      = 0xED0CDAED
	bboltHeaderSize = 16
	bboltMetaSize   = 64
)

// checkLength refuses a file shorter than its newest valid meta page says; a
// file that does not exist yet, or is empty, is new and passes.
func checkLength(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return err
	}
	first := make([]byte, bboltHeaderSize+bboltMetaSize)
	if _, err := io.ReadFull(f, first); err != nil {
		return fmt.Errorf("%w: %s is %d bytes, too short for a bbolt file", ErrCorrupt, path, fi.Size())
	}
	best, ok := parseMeta(first)
	if !ok {
		return fmt.Errorf("%w: %s has no valid first meta page: not an audit log, or damaged", ErrCorrupt, path)
	}
	second := make([]byte, len(first))
	if _, err := f.ReadAt(second, int64(best.pageSize)); err == nil {
		if m, ok := parseMeta(second); ok && m.txid > best.txid {
			best = m
		}
	}
	if need := int64(best.pgid) * int64(best.pageSize); fi.Size() < need {
		return fmt.Errorf("%w: %s is %d bytes but its last transaction needs %d: the file was cut short", ErrCorrupt, path, fi.Size(), need)
	}
	return nil
}

type metaPage struct {
	pageSize   uint32
	pgid, txid uint64
}

func parseMeta(b []byte) (metaPage, bool) {
	m := b[bboltHeaderSize:]
	le := binary.LittleEndian
	h := fnv.New64a()
	h.Write(m[:56])
	if le.Uint32(m[0:]) != bboltMagic || le.Uint64(m[56:]) != h.Sum64() || le.Uint32(m[8:]) < 512 {
		return metaPage{}, false
	}
	return metaPage{pageSize: le.Uint32(m[8:]), pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}, true
}

// checkConsistency runs bbolt's own check of every page; a panic on the way
// (a damaged page) is reported like any other inconsistency.
func checkConsistency(db *bolt.DB, path string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %s: bbolt's consistency check stopped on a damaged page: %v", ErrCorrupt, path, p)
		}
	}()
	return db.View(func(tx *bolt.Tx) error {
		var first error
		for cerr := range tx.Check() { // drained whole: the check reads until it is done
			if first == nil {
				first = fmt.Errorf("%w: %s: %v", ErrCorrupt, path, cerr)
			}
		}
		return first
	})
}
