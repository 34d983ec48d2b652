package archive

import (
	"cmp"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/consentgate/consentgate/audit"
)

// Store is where archived segments are kept, by name (the segment's file name).
type Store interface {
	// Put stores size bytes read from r as name, locked against deletion until
	// retainUntil where the store can lock.
	Put(ctx context.Context, name string, r io.Reader, size int64, retainUntil time.Time) error
	// Open reads the object name; a missing one is an error wrapping os.ErrNotExist.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// List is every object, with when it was stored.
	List(ctx context.Context) ([]Object, error)
	// Delete removes name.
	Delete(ctx context.Context, name string) error
	// String says where the store is, for logs and errors: never a credential.
	String() string
}

// Object is one archived segment.
type Object struct {
	Name   string
	Size   int64
	Stored time.Time
}

// fileSum is the SHA-256 of the file at path.
func fileSum(path string, p *pacer) ([32]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	return readSum(p.reader(f))
}

func readSum(r io.Reader) ([32]byte, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h.Sum(nil)), nil
}

// storedSum is the SHA-256 of what the store holds as name: read back in full, so
// that a copy is trusted only once the bytes came back from the store.
func storedSum(ctx context.Context, s Store, name string, p *pacer) ([32]byte, error) {
	r, err := s.Open(ctx, name)
	if err != nil {
		return [32]byte{}, err
	}
	defer r.Close()
	sum, err := readSum(p.reader(r))
	if err != nil {
		return sum, fmt.Errorf("reading %s back from %s: %w", name, s, err)
	}
	return sum, nil
}

// Files is the log at dbPath with its archived history: the archived segments not
// also on this node, in log order, then audit.Files(dbPath), for VerifyFiles,
// ExportFiles and search across both. Segments in a store that is not a
// directory are copied into tmp first.
func Files(ctx context.Context, s Store, dbPath, tmp string) ([]string, error) {
	local, err := audit.Files(dbPath)
	if err != nil {
		return nil, err
	}
	here, err := audit.Segments(audit.SegmentDir(dbPath))
	if err != nil {
		return nil, err
	}
	// Archived segments before the oldest record here; the rest are on the node.
	firstHere := activeFirst(dbPath, 1<<63)
	if len(here) > 0 {
		firstHere = here[0].First // Segments are in log order
	}
	out, err := Archived(ctx, s, firstHere, tmp)
	if err != nil {
		return nil, err
	}
	return append(out, local...), nil
}

// Archived are the segments in s that begin before record firstHere (the
// oldest on the node), in log order, as files: a directory store's own, or
// copies in tmp. A running gateway's log exports them before its own
// (audit.Log.ExportWithArchived).
func Archived(ctx context.Context, s Store, firstHere uint64, tmp string) ([]string, error) {
	objs, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	var archived []audit.Segment
	for _, o := range objs {
		if first, last, ok := audit.ParseSegmentName(o.Name); ok && first < firstHere {
			archived = append(archived, audit.Segment{Path: o.Name, First: first, Last: last})
		}
	}
	slices.SortFunc(archived, func(a, b audit.Segment) int { return cmp.Compare(a.First, b.First) })
	var out []string
	for _, seg := range archived {
		p, err := fetch(ctx, s, seg.Path, tmp)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// activeFirst is the first record of the active file, or def if it cannot be read.
func activeFirst(dbPath string, def uint64) uint64 {
	if seq, err := audit.FirstSeq(dbPath); err == nil && seq > 0 {
		return seq
	}
	return def
}

// fetch is where the archived segment name can be read as a file.
func fetch(ctx context.Context, s Store, name, tmp string) (string, error) {
	if d, ok := s.(Dir); ok {
		return filepath.Join(d.Path, name), nil
	}
	r, err := s.Open(ctx, name)
	if err != nil {
		return "", err
	}
	defer r.Close()
	p := filepath.Join(tmp, name)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return "", fmt.Errorf("fetching %s from %s: %w", name, s, err)
	}
	return p, f.Close()
}
