package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// The physical limit of strict audit: a record is durable only after an
// fdatasync, so no strict call can be faster than one. measureFsync times
// n appends of 4 KiB, each followed by fdatasync, in the folder the audit
// log lives in.

type fsyncResult struct {
	dir     string
	fsType  string
	samples int
	hist    *histogram
}

func measureFsync(dir string, n int) (fsyncResult, error) {
	f, err := os.CreateTemp(dir, "fsync-probe-*")
	if err != nil {
		return fsyncResult{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	block := make([]byte, 4096)
	for i := range block {
		block[i] = byte(i)
	}
	h := newHistogram()
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if _, err := f.Write(block); err != nil {
			return fsyncResult{}, fmt.Errorf("fsync probe: %w", err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return fsyncResult{}, fmt.Errorf("fsync probe: fdatasync: %w", err)
		}
		h.record(time.Since(t0))
	}
	abs, _ := filepath.Abs(dir)
	return fsyncResult{dir: abs, fsType: filesystemType(dir), samples: n, hist: h}, nil
}

// filesystemType names the file system holding dir: an audit log on tmpfs
// would make strict mode look free.
func filesystemType(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "unknown"
	}
	switch uint64(st.Type) {
	case 0xEF53:
		return "ext4"
	case 0x01021994:
		return "tmpfs"
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0x794C7630:
		return "overlayfs"
	case 0x2FC12FC1:
		return "zfs"
	default:
		return fmt.Sprintf("0x%x", uint64(st.Type))
	}
}
