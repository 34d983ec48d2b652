package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/consentgate/consentgate/audit"
)

// Dir is a Store in a directory: a mounted volume, say. It cannot lock: a file is
// made read-only, which keeps out mistakes, not an administrator.
type Dir struct{ Path string }

func (d Dir) String() string { return d.Path }

// Put copies the file in under a temporary name, syncs it and renames it, so that
// a name in the directory is always a complete copy.
func (d Dir) Put(ctx context.Context, name string, src io.Reader, size int64, _ time.Time) error {
	if err := os.MkdirAll(d.Path, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(d.Path, ".incoming-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // once renamed, there is nothing to remove
	n, err := io.Copy(tmp, src)
	if err == nil && n != size {
		err = fmt.Errorf("copied %d bytes of %d", n, size)
	}
	err = errors.Join(err, tmp.Sync(), tmp.Chmod(0o400), tmp.Close())
	if err != nil {
		return fmt.Errorf("archiving %s to %s: %w", name, d.Path, err)
	}
	dst := filepath.Join(d.Path, name)
	os.Chmod(dst, 0o600) // a copy left by an earlier attempt is replaced
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("archiving %s to %s: %w", name, d.Path, err)
	}
	return audit.SyncDir(d.Path)
}

func (d Dir) Open(_ context.Context, name string) (io.ReadCloser, error) {
	if filepath.Base(name) != name {
		return nil, fmt.Errorf("archive object %q: %w", name, os.ErrNotExist)
	}
	return os.Open(filepath.Join(d.Path, name))
}

// List lists the segments in the directory; other files are not the archive's.
func (d Dir) List(context.Context) ([]Object, error) {
	entries, err := os.ReadDir(d.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Object
	for _, e := range entries {
		if !isSegment(e.Name()) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		out = append(out, Object{Name: e.Name(), Size: info.Size(), Stored: info.ModTime()})
	}
	return out, nil
}

func (d Dir) Delete(_ context.Context, name string) error {
	if err := os.Remove(filepath.Join(d.Path, name)); err != nil {
		return err
	}
	return audit.SyncDir(d.Path)
}

func isSegment(name string) bool {
	_, _, ok := audit.ParseSegmentName(name)
	return ok
}
