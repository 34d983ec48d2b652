package stream

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/consentgate/consentgate/audit"
)

// Cursor is how far a stream's receiver has acknowledged the log: a file
// holding "<log id> <sequence number>\n", replaced whole (written aside,
// synced, renamed), so a crash leaves the old position or the new one.
type Cursor struct {
	path string
}

// NewCursor keeps a cursor in path; its directory is made when first saved.
func NewCursor(path string) *Cursor { return &Cursor{path: path} }

// Load returns the acknowledged sequence number for the log logID: 0 when the
// file does not exist yet or was kept for another log (a new audit file starts
// from its first record).
func (c *Cursor) Load(logID string) (uint64, error) {
	b, err := os.ReadFile(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("stream cursor %s: %w", c.path, err)
	}
	id, seq, ok := strings.Cut(strings.TrimSpace(string(b)), " ")
	n, perr := strconv.ParseUint(seq, 10, 64)
	if !ok || perr != nil || id == "" {
		return 0, fmt.Errorf("stream cursor %s: %q is not \"<log id> <sequence number>\"", c.path, b)
	}
	if id != logID {
		return 0, nil
	}
	return n, nil
}

// Save records that everything up to seq of logID was acknowledged.
func (c *Cursor) Save(logID string, seq uint64) error {
	dir := filepath.Dir(c.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("stream cursor: %w", err)
	}
	f, err := os.CreateTemp(dir, ".cursor-*")
	if err != nil {
		return fmt.Errorf("stream cursor: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = fmt.Fprintf(f, "%s %d\n", logID, seq)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), c.path)
	}
	if err == nil {
		err = audit.SyncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("stream cursor %s: %w", c.path, err)
	}
	return nil
}
