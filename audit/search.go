package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Search calls fn, in log order, with every record of the log at dbPath (its sealed
// segments, then the file, each opened read-only) whose SubjectHMAC or one of whose
// Identifiers equals identifierHMAC, as computed by HMAC with the gateway's key. It
// stops at fn's first error and returns it. It does not verify the log: run
// VerifyFiles for that.
func Search(ctx context.Context, dbPath string, identifierHMAC string, fn func(Record) error) error {
	want, err := searchTerm(identifierHMAC)
	if err != nil {
		return err
	}
	paths, err := Files(dbPath)
	if err != nil {
		return err
	}
	for _, p := range paths {
		if err := searchFile(ctx, p, want, fn); err != nil {
			return err
		}
	}
	return nil
}

func searchFile(ctx context.Context, path string, want term, fn func(Record) error) error {
	db, err := openReadOnly(path)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		if _, err := readMeta(tx); err != nil {
			return fmt.Errorf("searching %s: %w", path, err)
		}
		c := tx.Bucket(bucketRecords).Cursor()
		n := 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if err := searchLine(v, want, fn); err != nil {
				return err
			}
		}
		return nil
	})
}

// SearchExport is Search over an export read from r. Elided stubs carry no identifiers
// and never match. It does not verify the export: run Verify for that.
func SearchExport(r io.Reader, identifierHMAC string, fn func(Record) error) error {
	want, err := searchTerm(identifierHMAC)
	if err != nil {
		return err
	}
	lr := newLineReader(r)
	if _, err := lr.next(); err != nil {
		return fmt.Errorf("reading audit export header: %w", err)
	}
	for {
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading audit export: %w", err)
		}
		if err := searchLine(line, want, fn); err != nil {
			return err
		}
	}
}

// searchTerm checks that what is searched for is an HMAC: a raw identifier would find
// nothing, and would have been typed into a tool that may log its arguments.
func searchTerm(h string) (term, error) {
	h = strings.ToLower(strings.TrimSpace(h))
	if !isHMAC(h) {
		return term{}, fmt.Errorf("%w: search term must be an identifier's HMAC (64 hex digits), see audit.HMAC", ErrInvalid)
	}
	return term{s: h, b: []byte(h)}, nil
}

// term is the HMAC searched for, also as bytes to scan stored lines with.
type term struct {
	s string
	b []byte
}

// searchLine decodes only lines that contain the HMAC at all: a 64-digit hex string
// does not occur by chance, so almost every line is skipped undecoded.
func searchLine(line []byte, want term, fn func(Record) error) error {
	if !bytes.Contains(line, want.b) {
		return nil
	}
	r := lenient(line)
	if r.Kind == KindCheckpoint || r.Kind == KindElided {
		return nil
	}
	if r.SubjectHMAC == want.s || slices.Contains(r.Identifiers, want.s) {
		return fn(r)
	}
	return nil
}
