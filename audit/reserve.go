package audit

import (
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// reserve keeps the last of the disk for records of disclosures: when anyone
// who can reach a listener can cause records (refused calls, refused
// callbacks), a flood of them must not fill the disk and so stop every vendor
// call, which cannot go ahead unrecorded.
type reserve struct {
	bytes int64 // 0: no reserve
	// free is the file system's free space, for tests; nil: statfs.
	free func(dir string) (int64, error)

	mu      sync.Mutex
	checked time.Time
	within  bool
}

// reserveCheckEvery bounds how stale the answer is: a flood can use at most
// this long's worth of records past the reserve's edge.
const reserveCheckEvery = 250 * time.Millisecond

// InReserve reports whether the free space left on the log's file system is
// within the reserve: callers then leave out records that are not about a
// disclosure (a call refused before any vendor was called) and count them
// instead. A free space that cannot be read counts as within.
func (l *Log) InReserve() bool {
	r := &l.reserve
	if r.bytes == 0 {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) >= reserveCheckEvery {
		free, err := r.freeSpace(filepath.Dir(l.path))
		r.within, r.checked = err != nil || free < r.bytes, now
		if err != nil {
			l.log.Error("audit log: free disk space unreadable; keeping the reserve for disclosures", "error", err.Error())
		}
	}
	return r.within
}

func (r *reserve) freeSpace(dir string) (int64, error) {
	if r.free != nil {
		return r.free(dir)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
