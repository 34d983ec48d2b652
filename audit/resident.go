package audit

import (
	"os"
	"unsafe"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// The writer only appends: a record once written is read again only by
// exports and checks. bbolt reads pages through its memory map, so every page
// a commit read stayed mapped in, and the gateway's resident memory grew with
// the log file (by up to 80 MB in a minute of load) until bbolt remapped it.
// releaseWritten drops all but the last pages from this process's page
// tables after every releaseEvery bytes written: they stay in the file and
// the page cache, and a reader that needs one maps it in again.

// releaseEvery is how many bytes of records are written between releases.
const releaseEvery = 4 << 20

// releaseTail is how much of the file's end stays mapped: the pages the next
// commits read and write.
const releaseTail = 1 << 20

func (l *Log) releaseWritten() error {
	// A read transaction keeps bbolt from remapping the file meanwhile, so the
	// address Info gives stays the mapping's.
	return l.db.View(func(tx *bolt.Tx) error {
		page := int64(os.Getpagesize())
		n := (tx.Size() - releaseTail) / page * page
		if n <= 0 {
			return nil
		}
		// Info gives the map's address as a uintptr. Read as a pointer in
		// place: the map is outside the Go heap and stays where it is while
		// this transaction holds bbolt's map lock, so there is nothing for
		// the collector to move or free (go vet flags only the plain
		// conversion, which it cannot tell from a pointer into the heap).
		data := *(*unsafe.Pointer)(unsafe.Pointer(&tx.DB().Info().Data))
		return unix.Madvise(unsafe.Slice((*byte)(data), n), unix.MADV_DONTNEED)
	})
}
